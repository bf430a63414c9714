-- fork_run: a new QUEUED run of the same workflow and input, visible now, whose steps are copies of the
-- original's SUCCESS steps recorded before p_from_step (journal order), and none from it on; its worker gets
-- the copies in the journal and executes p_from_step.
begin;
select plan(10);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
-- recorded order s2, s1, s3 (not alphabetical), then s4 RUNNING; the run fails at s4
create temp table t_l as select * from pgqrs_tests.run_at_step('s4', '{s2,s1,s3}', '{"order": 7}');
select pgqrs.fail_step(run_id, 's4', lease_token, '{"message": "bug"}', false) from t_l;
set local "pgqrs.now" = '2030-01-01 00:05:00+00';

create temp table t_fork as select pgqrs.fork_run((select run_id from t_l), 's3') as run_id;
select isnt((select run_id from t_fork), (select run_id from t_l), 'a new run id');
select results_eq(
    $$select w.name, r.status, r.input, r.attempt, r.created_at from pgqrs.runs as r
      join pgqrs.workflows as w using (workflow_id) where r.run_id = (select run_id from t_fork)$$,
    $$values ('wf'::text, 'QUEUED'::text, '{"order": 7}'::jsonb, 0, '2030-01-01 00:05:00+00'::timestamptz)$$,
    'same workflow and input, QUEUED, no delivery yet'
);
select results_eq(
    $$select s.step_id, s.status, s.value, s.attempt from pgqrs.run_steps((select run_id from t_fork)) as s$$,
    $$values ('s2'::text, 'SUCCESS'::text, '"s2"'::jsonb, 1), ('s1', 'SUCCESS', '"s1"', 1)$$,
    'the steps recorded before s3, in their recorded order, copied as SUCCESS; s3 and after are not'
);
select is(
    (select value_bytes from pgqrs.steps where run_id = (select run_id from t_fork) and step_id = 's1'),
    (select value_bytes from pgqrs.steps where run_id = (select run_id from t_l) and step_id = 's1'),
    'value_bytes is copied with the value'
);
select is(
    (select visible_at from pgqrs.messages where message_id = (select run_id from t_fork)),
    '2030-01-01 00:05:00+00'::timestamptz, 'its message is visible now'
);
create temp table t_l2 as select * from pgqrs.dequeue('wf', (select worker_id from t_worker));
select is((select run_id from t_l2), (select run_id from t_fork), 'dequeue delivers the fork');
select is(
    (select jsonb_object_agg(e.key, e.value - 'order') from t_l2, jsonb_each(t_l2.steps) as e),
    '{"s1": {"status": "SUCCESS", "value": "s1", "attempt": 1, "retry_at": null},
      "s2": {"status": "SUCCESS", "value": "s2", "attempt": 1, "retry_at": null}}'::jsonb,
    'the journal hands out the copies'
);
select ok(
    (select (steps -> 's2' ->> 'order')::bigint < (steps -> 's1' ->> 'order')::bigint from t_l2),
    'in the recorded order of the original (s2 before s1), which a replay of the fork is checked against'
);
select results_eq(
    $$select a.status from t_l2 as l, lateral pgqrs.acquire_step(l.run_id, 's3', l.lease_token) as a$$,
    $$values ('EXECUTE'::text)$$,
    'the step forked from executes again'
);
create temp table t_fork2 as select pgqrs.fork_run((select run_id from t_l), 's2') as run_id;
select is(
    (select count(*) from pgqrs.steps where run_id = (select run_id from t_fork2)), 0::bigint,
    'forking from the first recorded step copies nothing'
);

select * from finish();
rollback;
