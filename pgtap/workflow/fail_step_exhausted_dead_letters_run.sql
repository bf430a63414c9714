-- The last allowed attempt failing: run ERROR, message archived as DEAD_LETTER, visible in pgqrs.dead_letters.
begin;
select plan(7);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as
select
    pgqrs_tests.setup_workflow('{"max_attempts": 2, "backoff": "fixed", "base_seconds": 10, "jitter": 0}') as worker_id;
create temp table t_l1 as select * from pgqrs_tests.leased_run();
create temp table t_f1 as
select f.* from t_l1 as l, lateral pgqrs.fail_step(l.run_id, 's', l.lease_token, '{"n": 1}') as f;
set local "pgqrs.now" = '2030-01-01 00:00:10+00';
create temp table t_l2 as select * from pgqrs.dequeue('wf', (select worker_id from t_worker));
create temp table t_a2 as select a.* from t_l2 as l, lateral pgqrs.acquire_step(l.run_id, 's', l.lease_token) as a;

select is((select run_status from t_f1), 'QUEUED', 'attempt 1 of 2 is retried');
select results_eq(
    $$select f.* from t_l2 as l, lateral pgqrs.fail_step(l.run_id, 's', l.lease_token, '{"n": 2}') as f$$,
    $$values ('ERROR'::text, 2, null::timestamptz)$$,
    'attempt 2 of 2 fails the run'
);
select results_eq(
    $$select status, error, finished_at from pgqrs.runs where run_id = (select run_id from t_l1)$$,
    $$values ('ERROR'::text, '{"n": 2}'::jsonb, '2030-01-01 00:00:10+00'::timestamptz)$$,
    'the run is ERROR with the last error'
);
select results_eq(
    $$select status, attempt from pgqrs.steps where run_id = (select run_id from t_l1)$$,
    $$values ('ERROR'::text, 2)$$,
    'the step is ERROR after 2 attempts'
);
select is(
    (select count(*) from pgqrs.messages where message_id = (select run_id from t_l1)), 0::bigint,
    'the message left the live queue'
);
select results_eq(
    $$select outcome from pgqrs.messages_archive where message_id = (select run_id from t_l1)$$,
    $$values ('DEAD_LETTER'::text)$$,
    'archived as DEAD_LETTER'
);
select results_eq(
    $$select queue, error, attempt from pgqrs.dead_letters where run_id = (select run_id from t_l1)$$,
    $$values ('wf'::text, '{"n": 2}'::jsonb, 2)$$,
    'listed in pgqrs.dead_letters with the error'
);

select * from finish();
rollback;
