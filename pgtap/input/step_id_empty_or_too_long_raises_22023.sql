-- A step id must be 1-255 characters: '' and 256 characters are 22023 and nothing is recorded.
begin;
select plan(6);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

select pgqrs_tests.setup_workflow();
create temp table t_lease as select * from pgqrs_tests.leased_run();

select throws_ok(
    format(
        $$select * from pgqrs.acquire_step(%s, '', %L)$$,
        (select run_id from t_lease), (select lease_token from t_lease)
    ),
    '22023', null, 'acquire_step with an empty id'
);
select throws_ok(
    format(
        $$select pgqrs.complete_step(%s, %L, %L, '1')$$,
        (select run_id from t_lease), repeat('s', 256), (select lease_token from t_lease)
    ),
    '22023', null, 'complete_step with a 256-character id'
);
select throws_ok(
    format(
        $$select pgqrs.complete_step(%s, null, %L, '1')$$,
        (select run_id from t_lease), (select lease_token from t_lease)
    ),
    '22023', null, 'complete_step with a NULL id'
);
select throws_ok(
    format($$select pgqrs.update_step(%s, '', 'SUCCESS', '1')$$, (select run_id from t_lease)),
    '22023', null, 'update_step with an empty id'
);
select is(
    (select pgqrs.complete_step(run_id, repeat('s', 255), lease_token, '1') from t_lease), true,
    '255 characters, any characters, are fine'
);
select is((select count(*) from pgqrs.steps), 1::bigint, 'only the valid step was recorded');

select * from finish();
rollback;
