-- current_time decides step retry timing only: the lease is always checked against pgqrs.now().
begin;
select plan(4);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

select pgqrs_tests.setup_workflow();
create temp table t_lease as select * from pgqrs_tests.leased_run();

select is(
    (
        select a.status from t_lease as l,
            lateral pgqrs.acquire_step(l.run_id, 'a', l.lease_token, '2031-06-01 00:00:00+00') as a
    ),
    'EXECUTE', 'a current_time far past the lease expiry does not break a held lease'
);
set local "pgqrs.now" = '2030-01-01 00:00:31+00';
select throws_ok(
    format(
        $$select * from pgqrs.acquire_step(%s, 'b', %L, '2030-01-01 00:00:00+00')$$,
        (select run_id from t_lease), (select lease_token from t_lease)
    ),
    'QR004', null, 'a current_time inside the lease does not revive an expired lease'
);
select throws_ok(
    format(
        $$select * from pgqrs.acquire_step(%s, 'a', %L, '2030-01-01 00:00:00+00')$$,
        (select run_id from t_lease), (select lease_token from t_lease)
    ),
    'QR004', null, 'nor for a step already started'
);
select results_eq(
    $$select step_id, attempt from pgqrs.steps where run_id = (select run_id from t_lease)$$,
    $$values ('a'::text, 1)$$,
    'the refused calls recorded nothing'
);

select * from finish();
rollback;
