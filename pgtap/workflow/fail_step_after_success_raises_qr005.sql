-- A succeeded step cannot fail afterwards.
begin;
select plan(2);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

select pgqrs_tests.setup_workflow();
create temp table t_lease as select * from pgqrs_tests.leased_run();
create temp table t_done as select pgqrs.complete_step(run_id, 's', lease_token, '"ok"') as ok from t_lease;

select throws_ok(
    format(
        $$select * from pgqrs.fail_step(%s, 's', %L, '{}')$$,
        (select run_id from t_lease), (select lease_token from t_lease)
    ),
    'QR005', null, 'fail_step of a SUCCESS step raises QR005'
);
select results_eq(
    $$select s.status, s.value, r.status from pgqrs.steps as s join pgqrs.runs as r using (run_id)
      where s.run_id = (select run_id from t_lease)$$,
    $$values ('SUCCESS'::text, '"ok"'::jsonb, 'RUNNING'::text)$$,
    'step and run unchanged'
);

select * from finish();
rollback;
