-- A finished run stays finished: complete_run or fail_run again raises QR003 and changes nothing.
begin;
select plan(4);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

select pgqrs_tests.setup_workflow();
create temp table t_lease as select * from pgqrs_tests.leased_run();
create temp table t_done as select pgqrs.complete_run(run_id, lease_token, '1') as status from t_lease;

select throws_ok(
    format($$select pgqrs.complete_run(%s, %L, '2')$$, (select run_id from t_lease), (select lease_token from t_lease)),
    'QR003', null, 'complete_run twice raises QR003'
);
select throws_ok(
    format($$select pgqrs.fail_run(%s, %L, '{}')$$, (select run_id from t_lease), (select lease_token from t_lease)),
    'QR003', null, 'fail_run after complete_run raises QR003'
);
select throws_ok(
    format(
        $$select pgqrs.complete_step(%s, 'late', %L, '1')$$,
        (select run_id from t_lease), (select lease_token from t_lease)
    ),
    'QR003', null, 'a step write after complete_run raises QR003'
);
select results_eq(
    $$select status, output, error from pgqrs.runs where run_id = (select run_id from t_lease)$$,
    $$values ('SUCCESS'::text, '1'::jsonb, null::jsonb)$$,
    'the run keeps its first outcome'
);

select * from finish();
rollback;
