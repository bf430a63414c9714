-- archive refuses a live run's message (it would lose the run) and an unknown id.
begin;
select plan(4);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_run as select * from pgqrs.trigger('wf', '{}');

select throws_ok(
    format('select pgqrs.archive(%s)', (select run_id from t_run)),
    'QR003', null, 'archiving a QUEUED run''s message raises QR003'
);
create temp table t_lease as select * from pgqrs.dequeue('wf', (select worker_id from t_worker));
select throws_ok(
    format('select pgqrs.archive(%s)', (select run_id from t_run)),
    'QR003', null, 'archiving a RUNNING run''s message raises QR003'
);
select is(
    (select count(*) from pgqrs.messages where message_id = (select run_id from t_run)), 1::bigint,
    'the message is still live'
);
select throws_ok('select pgqrs.archive(-1)', 'QR002', null, 'an unknown message raises QR002');

select * from finish();
rollback;
