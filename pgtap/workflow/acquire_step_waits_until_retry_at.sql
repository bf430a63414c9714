-- A failed step whose retry is not due at current_time answers WAIT; when due, EXECUTE with the next attempt.
begin;
select plan(5);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as
select pgqrs_tests.setup_workflow('{"backoff": "fixed", "base_seconds": 60, "jitter": 0}') as worker_id;
create temp table t_lease1 as select * from pgqrs_tests.leased_run();
create temp table t_fail as
select f.* from t_lease1 as l, lateral pgqrs.fail_step(l.run_id, 'call', l.lease_token, '{"msg": "timeout"}') as f;
set local "pgqrs.now" = '2030-01-01 00:01:00+00';
create temp table t_lease2 as select * from pgqrs.dequeue('wf', (select worker_id from t_worker));

select results_eq(
    $$select a.* from t_lease2 as l,
      lateral pgqrs.acquire_step(l.run_id, 'call', l.lease_token, '2030-01-01 00:00:30+00') as a$$,
    $$values ('WAIT'::text, null::jsonb, 1, '2030-01-01 00:01:00+00'::timestamptz)$$,
    'at a current_time before retry_at: WAIT with retry_at'
);
select results_eq(
    $$select status, attempt from pgqrs.steps where run_id = (select run_id from t_lease2)$$,
    $$values ('ERROR'::text, 1)$$,
    'WAIT changes nothing'
);
select results_eq(
    $$select a.status, a.attempt from t_lease2 as l,
      lateral pgqrs.acquire_step(l.run_id, 'call', l.lease_token, '2030-01-01 00:00:59.999+00') as a$$,
    $$values ('WAIT'::text, 1)$$,
    'still WAIT just before retry_at'
);
select results_eq(
    $$select a.status, a.attempt from t_lease2 as l,
      lateral pgqrs.acquire_step(l.run_id, 'call', l.lease_token, '2030-01-01 00:01:00+00') as a$$,
    $$values ('EXECUTE'::text, 2)$$,
    'at retry_at: EXECUTE, attempt 2'
);
select results_eq(
    $$select status, attempt, retry_at from pgqrs.steps where run_id = (select run_id from t_lease2)$$,
    $$values ('RUNNING'::text, 2, null::timestamptz)$$,
    'the step is RUNNING again'
);

select * from finish();
rollback;
