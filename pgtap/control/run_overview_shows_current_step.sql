-- pgqrs.run_overview: every run with its current (last recorded) step, lease holder while live.
begin;
select plan(3);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_wf as select * from pgqrs.create_workflow('wf');
create temp table t_worker as select pgqrs.register_worker('w1', 'host', null, 'wf') as worker_id;
create temp table t_runs as select * from pgqrs.trigger_batch('wf', '[{}, {}]');
create temp table t_lease as select * from pgqrs.dequeue('wf', (select worker_id from t_worker), 1, '30 seconds');
create temp table t_s1 as select pgqrs.complete_step(run_id, 'fetch', lease_token, '1') as ok from t_lease;
create temp table t_s2 as select a.* from t_lease as l, lateral pgqrs.acquire_step(l.run_id, 'zip', l.lease_token) as a;

select results_eq(
    $$select workflow, status, current_step, current_step_status, worker, visible_at
      from pgqrs.run_overview where run_id = (select run_id from t_lease)$$,
    $$values ('wf'::text, 'RUNNING'::text, 'zip'::text, 'RUNNING'::text, 'w1'::text,
              '2030-01-01 00:00:30+00'::timestamptz)$$,
    'a running run: current step zip, held by w1 until the lease expiry'
);
select results_eq(
    $$select status, current_step, worker from pgqrs.run_overview
      where run_id = (select max(run_id) from t_runs)$$,
    $$values ('QUEUED'::text, null::text, null::text)$$,
    'a queued run: no step yet, no worker'
);
create temp table t_done as select pgqrs.complete_run(run_id, lease_token, '1') from t_lease;
select results_eq(
    $$select status, current_step, visible_at from pgqrs.run_overview where run_id = (select run_id from t_lease)$$,
    $$values ('SUCCESS'::text, 'zip'::text, null::timestamptz)$$,
    'a finished run stays listed with its last step'
);

select * from finish();
rollback;
