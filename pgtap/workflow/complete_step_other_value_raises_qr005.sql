-- A recorded success is never overwritten: complete_step with another value raises QR005.
begin;
select plan(3);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

select pgqrs_tests.setup_workflow();
create temp table t_lease as select * from pgqrs_tests.leased_run();
create temp table t_done as select pgqrs.complete_step(run_id, 's', lease_token, '{"v": 1}') as ok from t_lease;

select throws_ok(
    format(
        $$select pgqrs.complete_step(%s, 's', %L, '{"v": 2}')$$,
        (select run_id from t_lease), (select lease_token from t_lease)
    ),
    'QR005', null, 'another value raises QR005'
);
select throws_ok(
    format(
        $$select pgqrs.complete_step(%s, 's', %L, null)$$,
        (select run_id from t_lease), (select lease_token from t_lease)
    ),
    'QR005', null, 'NULL (stored as JSON null) is another value too'
);
select is(
    (select value from pgqrs.steps where run_id = (select run_id from t_lease)), '{"v": 1}'::jsonb,
    'the first value stays'
);

select * from finish();
rollback;
