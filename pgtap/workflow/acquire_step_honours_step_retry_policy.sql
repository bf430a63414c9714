-- A step's own retry policy (fail_step p_retry_policy) bounds its attempts, not the workflow's:
-- a step allowed 4 attempts by its policy runs a third time although the workflow allows 2.
begin;
select plan(3);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow('{"max_attempts": 2}') as worker_id;
create temp table t_lease1 as select * from pgqrs_tests.leased_run();
create temp table t_fail1 as
select f.* from t_lease1 as l,
    lateral pgqrs.fail_step(
        l.run_id, 'call', l.lease_token, '{"n": 1}', true, interval '1 second',
        '{"max_attempts": 4}'
    ) as f;
set local "pgqrs.now" = '2030-01-01 00:00:05+00';
create temp table t_lease2 as select * from pgqrs.dequeue('wf', (select worker_id from t_worker));
create temp table t_fail2 as
select f.* from t_lease2 as l,
    lateral pgqrs.fail_step(
        l.run_id, 'call', l.lease_token, '{"n": 2}', true, interval '1 second',
        '{"max_attempts": 4}'
    ) as f;

select is((select run_status from t_fail2), 'QUEUED', 'the second failure still schedules a retry (step policy: 4)');
set local "pgqrs.now" = '2030-01-01 00:00:10+00';
create temp table t_lease3 as select * from pgqrs.dequeue('wf', (select worker_id from t_worker));
select results_eq(
    format(
        $$select status, attempt from pgqrs.acquire_step(%s, 'call', %L)$$,
        (select run_id from t_lease3), (select lease_token from t_lease3)
    ),
    $$values ('EXECUTE'::text, 3)$$,
    'the third attempt executes'
);
select is(
    (select max_attempts from pgqrs.steps where run_id = (select run_id from t_lease3)), 4,
    'the step keeps its own limit'
);

select * from finish();
rollback;
