-- heartbeat extends each lease the worker still holds by its original duration.
begin;
select plan(5);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_runs as select * from pgqrs.trigger_batch('wf', '[{}, {}]');
create temp table t_leases as select * from pgqrs.dequeue('wf', (select worker_id from t_worker), 2, '30 seconds');

set local "pgqrs.now" = '2030-01-01 00:00:20+00';
create temp table t_beat as
select * from pgqrs.heartbeat((select worker_id from t_worker), (select array_agg(lease_token) from t_leases));

select results_eq(
    $$select held, visible_until from t_beat$$,
    $$values (true, '2030-01-01 00:00:50+00'::timestamptz), (true, '2030-01-01 00:00:50+00'::timestamptz)$$,
    'both leases held and extended to now + 30 s'
);
select is(
    (select count(*) from pgqrs.messages where visible_at = '2030-01-01 00:00:50+00'), 2::bigint,
    'the messages stay invisible until then'
);
select is(
    (select heartbeat_at from pgqrs.workers where worker_id = (select worker_id from t_worker)),
    '2030-01-01 00:00:20+00'::timestamptz, 'the worker''s heartbeat is recorded'
);
set local "pgqrs.now" = '2030-01-01 00:00:45+00';
select is(
    (select count(*) from pgqrs.dequeue('wf', (select worker_id from t_worker), 10)), 0::bigint,
    'past the original expiry the runs are still leased'
);
select is(
    (select status from t_leases as l, lateral pgqrs.acquire_step(l.run_id, 's1', l.lease_token) limit 1),
    'EXECUTE', 'and the holder can still write'
);

select * from finish();
rollback;
