-- Each dequeued row carries the run's recorded steps, so a worker can replay them without a round trip each,
-- with the order they were first recorded in (steps.step_order), against which a replay is checked for drift.
begin;
select plan(4);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_lease1 as select * from pgqrs_tests.leased_run();
create temp table t_done as
select pgqrs.complete_step(run_id, 'fetch', lease_token, '{"rows": 42}') as ok from t_lease1;
create temp table t_fail as
select f.* from t_lease1 as l,
    lateral pgqrs.fail_step(l.run_id, 'upload', l.lease_token, '{"msg": "503"}', true, '1 minute') as f;

select is((select steps from t_lease1), '{}'::jsonb, 'the first delivery has an empty journal');
set local "pgqrs.now" = '2030-01-01 00:01:00+00';
create temp table t_lease2 as select * from pgqrs.dequeue('wf', (select worker_id from t_worker), 1, '30 seconds');

select is(
    (select (steps -> 'fetch') - 'order' from t_lease2),
    '{"status": "SUCCESS", "value": {"rows": 42}, "attempt": 1, "retry_at": null}'::jsonb,
    'the redelivery carries the succeeded step with its value'
);
select is(
    (select (steps -> 'upload') - 'order' from t_lease2),
    '{"status": "ERROR", "value": null, "attempt": 1, "retry_at": "2030-01-01T00:01:00+00:00"}'::jsonb,
    'and the failed step with its attempt and retry time'
);
select results_eq(
    $$select (l.steps -> k ->> 'order')::bigint from t_lease2 as l, unnest(array['fetch', 'upload']) as k$$,
    $$select s.step_order from pgqrs.steps as s join t_lease1 using (run_id) order by s.step_order$$,
    'each step carries its recorded order: fetch before upload'
);

select * from finish();
rollback;
