-- pgqrs.stuck_runs: RUNNING runs whose lease expired (worker crashed or hung) until someone takes them over.
begin;
select plan(3);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_w1 as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_lease as select * from pgqrs_tests.leased_run();

select is((select count(*) from pgqrs.stuck_runs), 0::bigint, 'a valid lease is not stuck');
set local "pgqrs.now" = '2030-01-01 00:01:00+00';
select results_eq(
    $$select run_id, workflow, worker, lease_expired_at, expired_for, attempt from pgqrs.stuck_runs$$,
    $$select (select run_id from t_lease), 'wf'::text, 'w1'::text, '2030-01-01 00:00:30+00'::timestamptz,
             interval '30 seconds', 1$$,
    'an expired lease is listed with its worker and how long ago it expired'
);
create temp table t_lease2 as select * from pgqrs.dequeue('wf', (select worker_id from t_w1), 1, '30 seconds');
select is((select count(*) from pgqrs.stuck_runs), 0::bigint, 'taken over: no longer stuck');

select * from finish();
rollback;
