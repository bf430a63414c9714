-- A trigger with run-at is delivered from that time; a run-at in the past means now.
begin;
select plan(5);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_later as select * from pgqrs.trigger('wf', '{"n": 1}', p_run_at => '2030-01-01 01:00:00+00');
create temp table t_past as select * from pgqrs.trigger('wf', '{"n": 2}', p_run_at => '2029-12-31 00:00:00+00');

select is(
    (select visible_at from pgqrs.messages where message_id = (select run_id from t_later)),
    '2030-01-01 01:00:00+00'::timestamptz, 'visible at the run-at time'
);
select is(
    (select visible_at from pgqrs.messages where message_id = (select run_id from t_past)),
    '2030-01-01 00:00:00+00'::timestamptz, 'a run-at in the past is visible now'
);
select results_eq(
    $$select run_id from pgqrs.dequeue('wf', (select worker_id from t_worker), 10, '1 day')$$,
    $$select run_id from t_past$$,
    'only the due run is delivered'
);
set local "pgqrs.now" = '2030-01-01 00:59:59+00';
select is(
    (select count(*) from pgqrs.dequeue('wf', (select worker_id from t_worker), 10)), 0::bigint,
    'the later run is not delivered before its time'
);
set local "pgqrs.now" = '2030-01-01 01:00:00+00';
select results_eq(
    $$select run_id from pgqrs.dequeue('wf', (select worker_id from t_worker), 10)$$,
    $$select run_id from t_later$$,
    'the later run is delivered at its time'
);

select * from finish();
rollback;
