-- run_status: status, input, attempt, timestamps, the current (last recorded) step and the lease expiry.
begin;
select plan(2);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_run as select * from pgqrs.trigger('wf', '{"n": 1}');
set local "pgqrs.now" = '2030-01-01 00:00:10+00';
create temp table t_lease as select * from pgqrs.dequeue('wf', (select worker_id from t_worker), 1, '30 seconds');
create temp table t_s1 as select pgqrs.complete_step(run_id, 'one', lease_token, '1') as ok from t_lease;
create temp table t_s2 as select a.* from t_lease as l, lateral pgqrs.acquire_step(l.run_id, 'two', l.lease_token) as a;

select results_eq(
    $$select workflow, status, input, attempt, created_at, started_at, finished_at, current_step, visible_at
      from pgqrs.run_status((select run_id from t_run))$$,
    $$values ('wf'::text, 'RUNNING'::text, '{"n": 1}'::jsonb, 1, '2030-01-01 00:00:00+00'::timestamptz,
              '2030-01-01 00:00:10+00'::timestamptz, null::timestamptz, 'two'::text,
              '2030-01-01 00:00:40+00'::timestamptz)$$,
    'a RUNNING run with its current step and lease expiry'
);
select results_eq(
    $$select step_id, status from pgqrs.run_steps((select run_id from t_run))$$,
    $$values ('one'::text, 'SUCCESS'::text), ('two', 'RUNNING')$$,
    'run_steps lists the journal in order'
);

select * from finish();
rollback;
