-- A finished (SUCCESS) run takes no step results from outside.
begin;
select plan(2);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

select pgqrs_tests.setup_workflow();
create temp table t_lease as select * from pgqrs_tests.leased_run();
create temp table t_done as select pgqrs.complete_run(run_id, lease_token, '1') from t_lease;

select throws_ok(
    format($$select pgqrs.update_step(%s, 'late', 'SUCCESS', '1')$$, (select run_id from t_lease)),
    'QR003', null, 'update_step on a SUCCESS run raises QR003'
);
select is((select count(*) from pgqrs.steps), 0::bigint, 'no step written');

select * from finish();
rollback;
