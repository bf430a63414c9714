-- dequeue hands out the message visible the longest first (visible_at, then id), and marks the run RUNNING.
begin;
select plan(6);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
-- a: lowest id but visible last; b and c visible at the same time, b first by id
create temp table t_a as select * from pgqrs.trigger('wf', '{"n": "a"}', p_delay => '5 minutes');
create temp table t_b as select * from pgqrs.trigger('wf', '{"n": "b"}');
create temp table t_c as select * from pgqrs.trigger('wf', '{"n": "c"}');
set local "pgqrs.now" = '2030-01-01 00:10:00+00';

create temp table t_first as select * from pgqrs.dequeue('wf', (select worker_id from t_worker), 1, '1 hour');
create temp table t_second as select * from pgqrs.dequeue('wf', (select worker_id from t_worker), 1, '1 hour');
create temp table t_third as select * from pgqrs.dequeue('wf', (select worker_id from t_worker), 1, '1 hour');

select is((select run_id from t_first), (select run_id from t_b), 'first: the earliest visible, lowest id');
select is((select run_id from t_second), (select run_id from t_c), 'second: same visibility, next id');
select is((select run_id from t_third), (select run_id from t_a), 'third: the one visible last');
select results_eq(
    $$select message_id = run_id, input, attempt, lease_token is not null, steps from t_first$$,
    $$values (true, '{"n": "b"}'::jsonb, 1, true, '{}'::jsonb)$$,
    'a row carries the input, attempt 1, a lease token and an empty journal'
);
select results_eq(
    $$select r.status, r.attempt, r.started_at, m.visible_at, m.worker_id, m.lease_token
      from pgqrs.runs as r join pgqrs.messages as m on m.message_id = r.run_id
      where r.run_id = (select run_id from t_first)$$,
    $$select 'RUNNING'::text, 1, '2030-01-01 00:10:00+00'::timestamptz, '2030-01-01 01:10:00+00'::timestamptz,
             (select worker_id from t_worker), (select lease_token from t_first)$$,
    'the run is RUNNING; the message is leased to the worker until now + visibility'
);
select is(
    (select count(*) from pgqrs.dequeue('wf', (select worker_id from t_worker), 10, '1 hour')), 0::bigint,
    'nothing left to lease'
);

select * from finish();
rollback;
