-- A step whose failed attempts reached the policy's max_attempts is not executed again: QR007.
-- (Here the operator lowered max_attempts while a retry was pending.)
begin;
select plan(3);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as
select
    pgqrs_tests.setup_workflow('{"max_attempts": 3, "backoff": "fixed", "base_seconds": 10, "jitter": 0}') as worker_id;
create temp table t_lease1 as select * from pgqrs_tests.leased_run();
create temp table t_fail1 as
select f.* from t_lease1 as l, lateral pgqrs.fail_step(l.run_id, 'call', l.lease_token, '{"n": 1}') as f;
set local "pgqrs.now" = '2030-01-01 00:00:10+00';
create temp table t_lease2 as select * from pgqrs.dequeue('wf', (select worker_id from t_worker));
create temp table t_fail2 as
select f.* from t_lease2 as l, lateral pgqrs.fail_step(l.run_id, 'call', l.lease_token, '{"n": 2}') as f;
create temp table t_lower as select * from pgqrs.create_workflow('wf', '{"max_attempts": 2}');
set local "pgqrs.now" = '2030-01-01 00:00:20+00';
create temp table t_lease3 as select * from pgqrs.dequeue('wf', (select worker_id from t_worker));

select throws_ok(
    format(
        $$select * from pgqrs.acquire_step(%s, 'call', %L)$$,
        (select run_id from t_lease3), (select lease_token from t_lease3)
    ),
    'QR007', null, 'acquire_step of a step with its attempts used raises QR007'
);
select results_eq(
    $$select status, attempt, error from pgqrs.steps where run_id = (select run_id from t_lease3)$$,
    $$values ('ERROR'::text, 2, '{"n": 2}'::jsonb)$$,
    'the step is unchanged'
);
select is(
    (select pgqrs.fail_run(run_id, lease_token, '{"msg": "gave up"}') from t_lease3), 'ERROR',
    'the holder can still fail the run'
);

select * from finish();
rollback;
