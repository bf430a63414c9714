-- pgqrs.run_overview: every run with its current (last recorded) step, lease holder while live.
begin;
select plan(3);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

select pgqrs_tests.setup_workflow();
create temp table t_lease as select * from pgqrs_tests.run_at_step('zip', array['fetch']);
create temp table t_queued as select * from pgqrs.trigger('wf', '{}');

select results_eq(
    $$select workflow, status, current_step, current_step_status, worker, visible_at
      from pgqrs.run_overview where run_id = (select run_id from t_lease)$$,
    $$values ('wf'::text, 'RUNNING'::text, 'zip'::text, 'RUNNING'::text, 'w1'::text,
              '2030-01-01 00:00:30+00'::timestamptz)$$,
    'a running run: current step zip, held by w1 until the lease expiry'
);
select results_eq(
    $$select status, current_step, worker from pgqrs.run_overview
      where run_id = (select run_id from t_queued)$$,
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
