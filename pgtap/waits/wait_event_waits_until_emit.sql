-- wait_event before the emit: step and run WAITING (kind event, the key, until the timeout), lease released; the
-- first emit returns true, records the payload as the step's outcome, makes the run visible now (QUEUED) and
-- removes the wait; a second emit returns false and changes nothing; the replay returns the payload.
begin;
select plan(11);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_lease as select * from pgqrs_tests.leased_run();

select results_eq(
    $$select p.* from t_lease as l,
      lateral pgqrs.wait_event(l.run_id, 'paid', l.lease_token, 'order-1', '1 hour') as p$$,
    $$values ('WAITING'::text, null::jsonb)$$,
    'wait_event returns WAITING'
);
select results_eq(
    $$select r.status, s.status, s.kind, m.visible_at, m.lease_token from t_lease as l
      join pgqrs.runs as r using (run_id) join pgqrs.steps as s on s.run_id = l.run_id
      join pgqrs.messages as m on m.message_id = l.run_id$$,
    $$values ('WAITING'::text, 'WAITING'::text, 'event'::text, '2030-01-01 01:00:00+00'::timestamptz, null::uuid)$$,
    'run and step WAITING, lease released, visible at the timeout'
);
select results_eq(
    $$select kind, key, until from pgqrs.waiting_runs$$,
    $$values ('event'::text, 'order-1'::text, '2030-01-01 01:00:00+00'::timestamptz)$$,
    'listed in waiting_runs with the key and the timeout'
);
set local "pgqrs.now" = '2030-01-01 00:10:00+00';
select is(pgqrs.emit_event('order-2', '{"n": 0}'), true, 'an emit of another key');
select is((select status from pgqrs.runs where run_id = (select run_id from t_lease)), 'WAITING', 'wakes nobody here');
select is(pgqrs.emit_event('order-1', '{"n": 1}'), true, 'the first emit returns true');
select results_eq(
    $$select r.status, s.status, s.value, m.visible_at from t_lease as l
      join pgqrs.runs as r using (run_id) join pgqrs.steps as s on s.run_id = l.run_id
      join pgqrs.messages as m on m.message_id = l.run_id$$,
    $$values ('QUEUED'::text, 'SUCCESS'::text, '{"payload": {"n": 1}}'::jsonb, '2030-01-01 00:10:00+00'::timestamptz)$$,
    'the waiter: step SUCCESS with the payload, run QUEUED and visible now'
);
select is((select count(*) from pgqrs.waits), 0::bigint, 'the wait row is gone');
select is(pgqrs.emit_event('order-1', '{"n": 2}'), false, 'a second emit returns false');
select results_eq(
    $$select payload from pgqrs.events where key = 'order-1'$$, $$values ('{"n": 1}'::jsonb)$$,
    'the first payload stays'
);
create temp table t_again as select * from pgqrs.dequeue('wf', (select worker_id from t_worker));
select results_eq(
    $$select p.* from t_again as a,
      lateral pgqrs.wait_event(a.run_id, 'paid', a.lease_token, 'order-1', '1 hour') as p$$,
    $$values ('EVENT'::text, '{"n": 1}'::jsonb)$$,
    'the replay returns the payload'
);

select * from finish();
rollback;
