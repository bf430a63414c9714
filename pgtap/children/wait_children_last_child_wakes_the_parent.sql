-- wait_children: the parent WAITING (kind children, pending = the unfinished ones), lease released, never
-- visible by itself; each child's finish counts down, whichever way it ends (complete_run, fail_step with no
-- attempts left, cancel_run); the last one makes the parent QUEUED and visible in its own transaction; the
-- replay records the outcomes in the order asked, and a second replay returns the same.
begin;
select plan(11);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

select pgqrs_tests.setup_workflow();
select pgqrs.create_workflow('kid', '{"max_attempts": 1}');
create temp table t_kw as select pgqrs.register_worker('kw', 'h', null, 'kid') as worker_id;
create temp table t_lease as select * from pgqrs_tests.leased_run();
create temp table t_kids as
select n, pgqrs.start_child(l.run_id, 'spawn' || n, l.lease_token, 'kid', jsonb_build_object('n', n)) as run_id
from t_lease as l, generate_series(1, 3) as n;

select results_eq(
    $$select p.* from t_lease as l,
      lateral pgqrs.wait_children(l.run_id, 'join', l.lease_token, (select array_agg(run_id order by n) from t_kids)) as p$$,
    $$values ('WAITING'::text, null::jsonb)$$,
    'children unfinished: WAITING'
);
select results_eq(
    $$select r.status, m.visible_at, m.lease_token, w.kind, w.pending from t_lease as l
      join pgqrs.runs as r using (run_id) join pgqrs.messages as m on m.message_id = l.run_id
      join pgqrs.waiting_runs as w on w.run_id = l.run_id$$,
    $$values ('WAITING'::text, 'infinity'::timestamptz, null::uuid, 'children'::text, 3)$$,
    'parent WAITING, no lease, not visible, pending 3'
);

-- child 1 succeeds, child 2 fails for good in fail_step, child 3 is cancelled
create temp table t_kl as select * from pgqrs.dequeue('kid', (select worker_id from t_kw), 3);
select pgqrs.complete_run(l.run_id, l.lease_token, '{"ok": 1}')
from t_kl as l join t_kids as k using (run_id) where k.n = 1;
select is((select pending from pgqrs.waits), 2, 'complete_run counts down');
select is(
    (
        select f.run_status from t_kl as l join t_kids as k using (run_id),
            lateral pgqrs.fail_step(l.run_id, 'c', l.lease_token, '{"message": "bad"}', false) as f
        where k.n = 2
    ),
    'ERROR', 'child 2 fails for good'
);
select is((select pending from pgqrs.waits), 1, 'a fail_step that ends the run counts down');
select is((select status from pgqrs.runs where run_id = (select run_id from t_lease)), 'WAITING', 'still waiting');
set local "pgqrs.now" = '2030-01-01 00:00:05+00';
select pgqrs.cancel_run((select run_id from t_kids where n = 3), 'not needed');
select results_eq(
    $$select r.status, m.visible_at, (select count(*) from pgqrs.waits) from t_lease as l
      join pgqrs.runs as r using (run_id) join pgqrs.messages as m on m.message_id = l.run_id$$,
    $$values ('QUEUED'::text, '2030-01-01 00:00:05+00'::timestamptz, 0::bigint)$$,
    'the last one (a cancel) makes the parent QUEUED and visible now'
);

create temp table t_again as select * from pgqrs.dequeue('wf', pgqrs_tests.worker_id());
create temp table t_done as
select p.* from t_again as a,
    lateral pgqrs.wait_children(a.run_id, 'join', a.lease_token, (select array_agg(run_id order by n) from t_kids))
        as p;
select results_eq(
    $$select status, jsonb_path_query_array(children, '$[*].status'), children -> 0 -> 'output',
             children -> 1 -> 'error' ->> 'message' from t_done$$,
    $$values ('DONE'::text, '["SUCCESS", "ERROR", "CANCELLED"]'::jsonb, '{"ok": 1}'::jsonb, 'bad'::text)$$,
    'the replay returns each outcome in the order asked'
);
select results_eq(
    $$select status, kind from pgqrs.steps where step_id = 'join'$$,
    $$values ('SUCCESS'::text, 'children'::text)$$,
    'recorded SUCCESS, kind children'
);
select results_eq(
    $$select p.status, p.children = d.children from t_again as a, t_done as d,
      lateral pgqrs.wait_children(a.run_id, 'join', a.lease_token, (select array_agg(run_id order by n) from t_kids)) as p$$,
    $$values ('DONE'::text, true)$$,
    'a second replay returns the recorded outcomes'
);
select throws_ok(
    format(
        $$select * from pgqrs.wait_children(%s, 'join', %L, array[%s])$$,
        (select run_id from t_again), (select lease_token from t_again), (select run_id from t_kids where n = 1)
    ),
    'QR010', null, 'a replay asking for other children raises QR010'
);

select * from finish();
rollback;
