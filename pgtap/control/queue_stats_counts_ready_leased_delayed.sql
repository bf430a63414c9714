-- pgqrs.queue_stats: ready + leased + delayed = depth; an expired lease counts as ready (dequeue will take it).
begin;
select plan(4);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_wf as select * from pgqrs.create_workflow('wf');
create temp table t_wf2 as select * from pgqrs.create_workflow('empty');
create temp table t_worker as select pgqrs.register_worker('w1', 'host', null, 'wf') as worker_id;
create temp table t_ready as select * from pgqrs.trigger_batch('wf', '[{}, {}]');
create temp table t_delayed as select * from pgqrs.trigger('wf', '{}', p_delay => '1 hour');
set local "pgqrs.now" = '2030-01-01 00:00:10+00';
create temp table t_lease as select * from pgqrs.dequeue('wf', (select worker_id from t_worker), 1, '30 seconds');

select results_eq(
    $$select ready, leased, delayed, depth, oldest_age from pgqrs.queue_stats where queue = 'wf'$$,
    $$values (1::bigint, 1::bigint, 1::bigint, 3::bigint, interval '10 seconds')$$,
    'one ready, one leased, one delayed; the oldest waits 10 s'
);
set local "pgqrs.now" = '2030-01-01 00:00:40+00';
select results_eq(
    $$select ready, leased, delayed, depth from pgqrs.queue_stats where queue = 'wf'$$,
    $$values (2::bigint, 0::bigint, 1::bigint, 3::bigint)$$,
    'after the lease expired, that message is ready again'
);
select is(
    (select ready from pgqrs.queue_stats where queue = 'wf'),
    (select count(*) from pgqrs.dequeue('wf', (select worker_id from t_worker), 10)),
    'ready is what a dequeue gets'
);
select results_eq(
    $$select ready, leased, delayed, depth, oldest_age from pgqrs.queue_stats where queue = 'empty'$$,
    $$values (0::bigint, 0::bigint, 0::bigint, 0::bigint, null::interval)$$,
    'an empty queue is listed with zeros'
);

select * from finish();
rollback;
