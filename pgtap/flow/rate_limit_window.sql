-- rate_limit: at most limit deliveries in any window of the period, across dequeues; the window slides.
begin;
select plan(6);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
select pgqrs.set_workflow_limits('wf', p_rate_limit => '{"limit": 3, "period": "1 minute"}');
select pgqrs.trigger_batch('wf', '[{}, {}, {}, {}, {}, {}, {}, {}]');
select is(
    (select count(*) from pgqrs.dequeue('wf', (select worker_id from t_worker), 2)), 2::bigint, '2 of 3 at 00:00'
);
set local "pgqrs.now" = '2030-01-01 00:00:30+00';
select is(
    (select count(*) from pgqrs.dequeue('wf', (select worker_id from t_worker), 5)), 1::bigint, '1 more at 00:30'
);
set local "pgqrs.now" = '2030-01-01 00:00:59+00';
select is(
    (select count(*) from pgqrs.dequeue('wf', (select worker_id from t_worker), 5)), 0::bigint,
    'none at 00:59: the window still holds 3'
);
set local "pgqrs.now" = '2030-01-01 00:01:00+00';
select is(
    (select count(*) from pgqrs.dequeue('wf', (select worker_id from t_worker), 5)), 2::bigint,
    'at 01:00 the two of 00:00 have left the window'
);
set local "pgqrs.now" = '2030-01-01 00:03:00.5+00';
select is(
    (select count(*) from pgqrs.dequeue('wf', (select worker_id from t_worker), 5)), 3::bigint,
    'at 03:00.5 the window is empty again'
);
select is(
    (select count(*) from pgqrs.rate_limit_log), 3::bigint,
    'the log dropped what left the window more than a minute ago (the deliveries of 00:00, 00:30, 01:00)'
);

select * from finish();
rollback;
