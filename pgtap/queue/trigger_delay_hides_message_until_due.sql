-- A delayed trigger's message is invisible to dequeue until now + delay.
begin;
select plan(5);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_run as select * from pgqrs.trigger('wf', '{}', p_delay => '10 minutes');

select is(
    (select visible_at from pgqrs.messages where message_id = (select run_id from t_run)),
    '2030-01-01 00:10:00+00'::timestamptz, 'the message is visible from now + delay'
);
select is(
    (select status from pgqrs.runs where run_id = (select run_id from t_run)), 'QUEUED',
    'a delayed run is QUEUED'
);
select is(
    (select count(*) from pgqrs.dequeue('wf', (select worker_id from t_worker), 10)), 0::bigint,
    'not delivered at once'
);
set local "pgqrs.now" = '2030-01-01 00:09:59+00';
select is(
    (select count(*) from pgqrs.dequeue('wf', (select worker_id from t_worker), 10)), 0::bigint,
    'not delivered a second before it is due'
);
set local "pgqrs.now" = '2030-01-01 00:10:00+00';
select is(
    (select run_id from pgqrs.dequeue('wf', (select worker_id from t_worker), 10)), (select run_id from t_run),
    'delivered when due'
);

select * from finish();
rollback;
