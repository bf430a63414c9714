-- pgqrs.retrying_runs: runs waiting to retry a failed step, with when (retry_at) and why (last_error).
begin;
select plan(3);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_lease as select * from pgqrs_tests.leased_run();

select is((select count(*) from pgqrs.retrying_runs), 0::bigint, 'a running run is not retrying');
create temp table t_fail as
select f.* from t_lease as l,
    lateral pgqrs.fail_step(l.run_id, 'call', l.lease_token, '{"msg": "503"}', true, '2 minutes') as f;
select results_eq(
    $$select run_id, workflow, step_id, attempt, retry_at, last_error, visible_at from pgqrs.retrying_runs$$,
    $$select (select run_id from t_lease), 'wf'::text, 'call'::text, 1, '2030-01-01 00:02:00+00'::timestamptz,
             '{"msg": "503"}'::jsonb, '2030-01-01 00:02:00+00'::timestamptz$$,
    'the failed step with retry_at and last error'
);
set local "pgqrs.now" = '2030-01-01 00:02:00+00';
create temp table t_lease2 as select * from pgqrs.dequeue('wf', (select worker_id from t_worker));
select is((select count(*) from pgqrs.retrying_runs), 0::bigint, 'once redelivered it is no longer listed');

select * from finish();
rollback;
