-- Without retry_after, the retry time comes from the workflow's policy: fixed backoff waits base_seconds each time.
begin;
select plan(3);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as
select
    pgqrs_tests.setup_workflow('{"max_attempts": 5, "backoff": "fixed", "base_seconds": 10, "jitter": 0}') as worker_id;
create temp table t_run as select * from pgqrs.trigger('wf', '{}');

create temp table t_l1 as select * from pgqrs.dequeue('wf', (select worker_id from t_worker));
select results_eq(
    $$select f.* from t_l1 as l, lateral pgqrs.fail_step(l.run_id, 's', l.lease_token, '{}') as f$$,
    $$values ('QUEUED'::text, 1, '2030-01-01 00:00:10+00'::timestamptz)$$,
    'attempt 1: retry after 10 s'
);
set local "pgqrs.now" = '2030-01-01 00:00:10+00';
create temp table t_l2 as select * from pgqrs.dequeue('wf', (select worker_id from t_worker));
select results_eq(
    $$select f.* from t_l2 as l, lateral pgqrs.fail_step(l.run_id, 's', l.lease_token, '{}') as f$$,
    $$values ('QUEUED'::text, 2, '2030-01-01 00:00:20+00'::timestamptz)$$,
    'attempt 2: again 10 s'
);
select is(
    (select visible_at from pgqrs.messages where message_id = (select run_id from t_run)),
    '2030-01-01 00:00:20+00'::timestamptz, 'the message waits until then'
);

select * from finish();
rollback;
