-- recv before any message: step and run WAITING (kind message, key = the topic, until the timeout), lease
-- released; a send on another topic wakes nobody; a send on the topic makes the run visible now (QUEUED), the wait
-- row gone, the message unconsumed; the replay's recv takes it (consumed by that step) and a second replay
-- returns the recorded message without taking another.
begin;
select plan(11);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_lease as select * from pgqrs_tests.leased_run();

select results_eq(
    $$select p.* from t_lease as l, lateral pgqrs.recv(l.run_id, 'r', l.lease_token, 'orders', '1 hour') as p$$,
    $$values ('WAITING'::text, null::jsonb)$$,
    'recv with no message returns WAITING'
);
select results_eq(
    $$select r.status, s.status, s.kind, m.visible_at, m.lease_token from t_lease as l
      join pgqrs.runs as r using (run_id) join pgqrs.steps as s on s.run_id = l.run_id
      join pgqrs.messages as m on m.message_id = l.run_id$$,
    $$values ('WAITING'::text, 'WAITING'::text, 'message'::text, '2030-01-01 01:00:00+00'::timestamptz, null::uuid)$$,
    'run and step WAITING, lease released, visible at the timeout'
);
select results_eq(
    $$select kind, key, until, step_id from pgqrs.waiting_runs$$,
    $$values ('message'::text, 'orders'::text, '2030-01-01 01:00:00+00'::timestamptz, 'r'::text)$$,
    'listed in waiting_runs with kind message and the topic'
);
set local "pgqrs.now" = '2030-01-01 00:10:00+00';
select isnt(pgqrs.send((select run_id from t_lease), 'other', '1'), null, 'a send on another topic');
select is((select status from pgqrs.runs where run_id = (select run_id from t_lease)), 'WAITING', 'wakes nobody');
select isnt(pgqrs.send((select run_id from t_lease), 'orders', '{"n": 1}'), null, 'a send on the topic');
select results_eq(
    $$select r.status, m.visible_at, (select count(*) from pgqrs.waits) from t_lease as l
      join pgqrs.runs as r using (run_id) join pgqrs.messages as m on m.message_id = l.run_id$$,
    $$values ('QUEUED'::text, '2030-01-01 00:10:00+00'::timestamptz, 0::bigint)$$,
    'the run is QUEUED and visible now, the wait row gone'
);
create temp table t_again as select * from pgqrs.dequeue('wf', (select worker_id from t_worker));
select results_eq(
    $$select p.* from t_again as a, lateral pgqrs.recv(a.run_id, 'r', a.lease_token, 'orders', '1 hour') as p$$,
    $$values ('MESSAGE'::text, '{"n": 1}'::jsonb)$$,
    'the replay takes the message'
);
select results_eq(
    $$select topic, consumed_by from pgqrs.run_messages order by message_id$$,
    $$values ('other'::text, null::text), ('orders', 'r')$$,
    'consumed by step r; the other topic untouched'
);
select isnt(pgqrs.send((select run_id from t_lease), 'orders', '{"n": 2}'), null, 'another message');
select results_eq(
    $$select p.* from t_again as a, lateral pgqrs.recv(a.run_id, 'r', a.lease_token, 'orders', '1 hour') as p$$,
    $$values ('MESSAGE'::text, '{"n": 1}'::jsonb)$$,
    'a recorded step returns its message and takes no second one'
);

select * from finish();
rollback;
