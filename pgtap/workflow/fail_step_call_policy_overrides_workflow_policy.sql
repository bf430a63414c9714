-- A retry policy given to fail_step (the step's policy) wins over the workflow's.
begin;
select plan(2);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as
select
    pgqrs_tests.setup_workflow('{"max_attempts": 5, "backoff": "fixed", "base_seconds": 10, "jitter": 0}') as worker_id;
create temp table t_runs as select * from pgqrs.trigger_batch('wf', '[{}, {}]');
create temp table t_leases as select * from pgqrs.dequeue('wf', (select worker_id from t_worker), 2);

select results_eq(
    $$select f.run_status, f.retry_at from t_leases as l,
      lateral pgqrs.fail_step(l.run_id, 's', l.lease_token, '{}',
                              p_retry_policy => '{"backoff": "fixed", "base_seconds": 99, "jitter": 0}') as f
      where l.run_id = (select min(run_id) from t_leases)$$,
    $$values ('QUEUED'::text, '2030-01-01 00:01:39+00'::timestamptz)$$,
    'the call''s backoff is used'
);
select results_eq(
    $$select f.run_status, f.retry_at from t_leases as l,
      lateral pgqrs.fail_step(l.run_id, 's', l.lease_token, '{}', p_retry_policy => '{"max_attempts": 1}') as f
      where l.run_id = (select max(run_id) from t_leases)$$,
    $$values ('ERROR'::text, null::timestamptz)$$,
    'the call''s max_attempts is used'
);

select * from finish();
rollback;
