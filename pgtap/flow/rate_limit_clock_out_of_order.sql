-- rate_limit: a dequeue whose clock is later than another's does not prune deliveries that the other still
-- counts. Two dequeues reach the queue lock out of the order of their clocks (each clock is its statement's
-- start: one waited for the lock); the later one must not make room for the earlier one past the limit.
begin;
select plan(3);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
select pgqrs.set_workflow_limits('wf', p_rate_limit => '{"limit": 2, "period": "1 second"}');
select pgqrs.trigger_batch('wf', '[{}, {}, {}, {}, {}]');
select is(
    (select count(*) from pgqrs.dequeue('wf', (select worker_id from t_worker), 2)), 2::bigint, '2 at 00.0'
);
set local "pgqrs.now" = '2030-01-01 00:00:01.15+00';
select is(
    (select count(*) from pgqrs.dequeue('wf', (select worker_id from t_worker), 1)), 1::bigint,
    '1 at 01.15: the two of 00.0 have left its window'
);
set local "pgqrs.now" = '2030-01-01 00:00:00.95+00';  -- began before the one at 01.15, waited for the lock
select is(
    (select count(*) from pgqrs.dequeue('wf', (select worker_id from t_worker), 1)), 0::bigint,
    'none at 00.95: its window still holds the two of 00.0'
);

select * from finish();
rollback;
