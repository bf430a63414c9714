-- start_child: the child is a QUEUED run of its workflow with parent_run_id set, recorded with the step (kind
-- child) in one transaction; the same step id again (a replay, or a later delivery after a crash) returns the
-- same child and starts none; run_children and run_status show the family.
begin;
select plan(7);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

select pgqrs_tests.setup_workflow();
select pgqrs.create_workflow('kid');
create temp table t_lease as select * from pgqrs_tests.leased_run();
create temp table t_child as
select pgqrs.start_child(l.run_id, 'spawn', l.lease_token, 'kid', '{"file": "a.png"}') as run_id from t_lease as l;

select results_eq(
    $$select r.status, w.name, r.input, r.parent_run_id = l.run_id from t_child as c
      join pgqrs.runs as r using (run_id) join pgqrs.workflows as w using (workflow_id), t_lease as l$$,
    $$values ('QUEUED'::text, 'kid'::text, '{"file": "a.png"}'::jsonb, true)$$,
    'the child is a QUEUED run of kid with its input and its parent'
);
select results_eq(
    $$select s.status, s.kind, (s.value ->> 'run_id')::bigint = c.run_id, s.value ->> 'workflow'
      from pgqrs.steps as s, t_child as c where s.step_id = 'spawn'$$,
    $$values ('SUCCESS'::text, 'child'::text, true, 'kid'::text)$$,
    'the step is recorded SUCCESS, kind child, naming the child'
);
select is(
    (select pgqrs.start_child(l.run_id, 'spawn', l.lease_token, 'kid', '{"other": 1}') from t_lease as l),
    (select run_id from t_child),
    'the same step id returns the same child'
);
-- the worker dies; the next delivery replays the step
set local "pgqrs.now" = '2030-01-01 00:01:00+00';
create temp table t_again as select * from pgqrs.dequeue('wf', pgqrs_tests.worker_id());
select is(
    (select pgqrs.start_child(a.run_id, 'spawn', a.lease_token, 'kid') from t_again as a),
    (select run_id from t_child),
    'a later delivery gets the same child too'
);
select is((select count(*) from pgqrs.runs where parent_run_id is not null), 1::bigint, 'one child in all');
select results_eq(
    $$select c.run_id = k.run_id, c.workflow, c.status, c.step_id from t_lease as l,
      lateral pgqrs.run_children(l.run_id) as c, t_child as k$$,
    $$values (true, 'kid'::text, 'QUEUED'::text, 'spawn'::text)$$,
    'run_children lists it with the step that started it'
);
select is(
    (select s.parent_run_id from t_child as c, lateral pgqrs.run_status(c.run_id) as s),
    (select run_id from t_lease),
    'run_status names the parent'
);

select * from finish();
rollback;
