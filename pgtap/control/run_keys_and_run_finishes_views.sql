-- pgqrs.run_keys finds a run by its idempotency key in any workflow; pgqrs.run_finishes lists finished runs
-- only, with their outcome and finish time (the dashboard's runs filter and chart).
begin;
select plan(4);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
select pgqrs.create_workflow('other');
create temp table t_keyed as
select run_id from pgqrs.trigger(p_workflow => 'other', p_input => '{}', p_idempotency_key => 'order-7');
create temp table t_runs as select * from pgqrs.trigger_batch('wf', '[{"n": 1}, {"n": 2}, {"n": 3}]');
create temp table t_leases as select * from pgqrs.dequeue('wf', (select worker_id from t_worker), 2);
create temp table t_ok as
select pgqrs.complete_run(run_id, lease_token, '1') from t_leases where run_id = (select min(run_id) from t_runs);
create temp table t_bad as
select pgqrs.fail_run(run_id, lease_token, '{"msg": "x"}') from t_leases
where run_id = (select min(run_id) + 1 from t_runs);

select results_eq(
    $$select run_id, workflow from pgqrs.run_keys where idempotency_key = 'order-7'$$,
    $$select run_id, 'other'::text from t_keyed$$,
    'a key finds its run, whatever the workflow'
);
select is_empty(
    $$select from pgqrs.run_keys where run_id in (select run_id from t_runs)$$,
    'runs started without a key are not listed'
);
select results_eq(
    $$select run_id, workflow, status, finished_at from pgqrs.run_finishes order by run_id$$,
    $$values ((select min(run_id) from t_runs), 'wf'::text, 'SUCCESS'::text, '2030-01-01 00:00:00+00'::timestamptz),
             ((select min(run_id) + 1 from t_runs), 'wf', 'ERROR', '2030-01-01 00:00:00+00')$$,
    'finished runs only, with outcome and finish time'
);
select ok(
    (select count(*) from pgqrs.run_overview) = 4 and (select count(*) from pgqrs.run_finishes) = 2,
    'queued and running runs are not finished'
);

select * from finish();
rollback;
