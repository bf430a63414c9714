-- Exponential backoff: base, 2 x base, 4 x base ... capped at max_seconds.
begin;
select plan(3);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as
select
    pgqrs_tests.setup_workflow(
        '{"max_attempts": 5, "backoff": "exponential", "base_seconds": 10, "max_seconds": 25, "jitter": 0}'
    ) as worker_id;
create temp table t_run as select * from pgqrs.trigger('wf', '{}');

create temp table t_l1 as select * from pgqrs.dequeue('wf', (select worker_id from t_worker));
select results_eq(
    $$select f.* from t_l1 as l, lateral pgqrs.fail_step(l.run_id, 's', l.lease_token, '{}') as f$$,
    $$values ('QUEUED'::text, 1, '2030-01-01 00:00:10+00'::timestamptz)$$,
    'attempt 1: base (10 s)'
);
set local "pgqrs.now" = '2030-01-01 00:01:00+00';
create temp table t_l2 as select * from pgqrs.dequeue('wf', (select worker_id from t_worker));
select results_eq(
    $$select f.* from t_l2 as l, lateral pgqrs.fail_step(l.run_id, 's', l.lease_token, '{}') as f$$,
    $$values ('QUEUED'::text, 2, '2030-01-01 00:01:20+00'::timestamptz)$$,
    'attempt 2: twice the base (20 s)'
);
set local "pgqrs.now" = '2030-01-01 00:02:00+00';
create temp table t_l3 as select * from pgqrs.dequeue('wf', (select worker_id from t_worker));
select results_eq(
    $$select f.* from t_l3 as l, lateral pgqrs.fail_step(l.run_id, 's', l.lease_token, '{}') as f$$,
    $$values ('QUEUED'::text, 3, '2030-01-01 00:02:25+00'::timestamptz)$$,
    'attempt 3: 40 s capped at max_seconds (25 s)'
);

select * from finish();
rollback;
