-- pgqrs.dead_letters lists runs that failed for good, never successes or live runs.
begin;
select plan(2);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_runs as select * from pgqrs.trigger_batch('wf', '[{"n": 1}, {"n": 2}, {"n": 3}]');
create temp table t_leases as select * from pgqrs.dequeue('wf', (select worker_id from t_worker), 2);
create temp table t_ok as
select pgqrs.complete_run(run_id, lease_token, '1') from t_leases where run_id = (select min(run_id) from t_runs);
create temp table t_bad as
select pgqrs.fail_run(run_id, lease_token, '{"msg": "x"}') from t_leases
where run_id = (select min(run_id) + 1 from t_runs);

select results_eq(
    $$select run_id, queue, error, read_count from pgqrs.dead_letters$$,
    $$select (select min(run_id) + 1 from t_runs), 'wf'::text, '{"msg": "x"}'::jsonb, 1$$,
    'only the failed run is a dead letter'
);
select results_eq(
    $$select outcome, count(*) from pgqrs.messages_archive group by outcome order by outcome$$,
    $$values ('DEAD_LETTER'::text, 1::bigint), ('SUCCESS', 1)$$,
    'the archive tells the two outcomes apart'
);

select * from finish();
rollback;
