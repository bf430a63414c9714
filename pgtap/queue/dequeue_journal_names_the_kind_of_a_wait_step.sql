-- The journal of a delivery names the kind of a durable wait's step (steps.kind), WAITING or SUCCESS, so a replay
-- can answer a recorded outcome without a round trip; an ordinary step has no kind key (a small journal on the
-- hot path). A journal past its size bound keeps the kinds of the steps whose values it leaves out.
begin;
select plan(3);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_lease as select * from pgqrs_tests.leased_run();
select pgqrs.complete_step(run_id, 'plain', lease_token, '1') from t_lease;
select pgqrs.sleep_step(run_id, 'woke', lease_token, '2029-12-31 23:59:59+00') from t_lease;  -- due: SUCCESS
select pgqrs.emit_event('paid:1', '{"amount": 5}');
select pgqrs.wait_event(run_id, 'paid', lease_token, 'paid:1') from t_lease;  -- emitted: SUCCESS
select pgqrs.send(run_id, 'orders', '"A"') from t_lease;
select pgqrs.recv(run_id, 'order', lease_token, 'orders') from t_lease;  -- sent: SUCCESS
select pgqrs.sleep_step(run_id, 'nap', lease_token, '2030-01-01 01:00:00+00') from t_lease;  -- WAITING
set local "pgqrs.now" = '2030-01-01 01:00:00+00';
create temp table t_again as select * from pgqrs.dequeue('wf', (select worker_id from t_worker));

select results_eq(
    $$select k, a.steps -> k ->> 'status', a.steps -> k ->> 'kind', a.steps -> k -> 'value' from t_again as a,
      unnest(array['plain', 'woke', 'paid', 'order', 'nap']) as k$$,
    $$values ('plain'::text, 'SUCCESS'::text, null::text, '1'::jsonb),
             ('woke', 'SUCCESS', 'sleep', '"2029-12-31T23:59:59+00:00"'),
             ('paid', 'SUCCESS', 'event', '{"payload": {"amount": 5}}'),
             ('order', 'SUCCESS', 'message', '{"topic": "orders", "message": "A"}'),
             ('nap', 'WAITING', 'sleep', '"2030-01-01T01:00:00+00:00"')$$,
    'the journal names the kind of each wait step, with its recorded outcome'
);
select ok(not ((select steps from t_again) -> 'plain' ? 'kind'), 'an ordinary step has no kind key');
select results_eq(
    $$select k, j -> k ->> 'kind', (j -> k ->> 'value_omitted')::boolean
      from pgqrs._journal((select run_id from t_lease), 0) as j, unnest(array['plain', 'nap']) as k$$,
    $$values ('plain'::text, null::text, true), ('nap', 'sleep', true)$$,
    'a journal past its size bound keeps the kinds'
);

select * from finish();
rollback;
