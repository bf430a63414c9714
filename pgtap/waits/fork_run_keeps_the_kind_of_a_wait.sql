-- fork_run copies a wait step with its kind: the fork's replay of a finished sleep goes on at once instead of
-- raising QR010 (a sleep recorded as an ordinary step).
begin;
select plan(3);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_lease as select * from pgqrs_tests.leased_run();
select pgqrs.sleep_step(run_id, 'nap', lease_token, '2030-01-01 00:00:00+00') from t_lease;
select pgqrs.acquire_step(run_id, 'after', lease_token) from t_lease;
select pgqrs.fail_step(run_id, 'after', lease_token, '{"message": "bug"}', false) from t_lease;

create temp table t_fork as select pgqrs.fork_run((select run_id from t_lease), 'after') as run_id;
select results_eq(
    $$select step_id, status, kind from pgqrs.steps where run_id = (select run_id from t_fork)$$,
    $$values ('nap'::text, 'SUCCESS'::text, 'sleep'::text)$$,
    'the sleep is copied with its kind'
);
create temp table t_l2 as select * from pgqrs.dequeue('wf', (select worker_id from t_worker));
select is((select run_id from t_l2), (select run_id from t_fork), 'dequeue delivers the fork');
select results_eq(
    $$select p.status from t_l2 as l,
      lateral pgqrs.sleep_step(l.run_id, 'nap', l.lease_token, '2030-01-01 01:00:00+00') as p$$,
    $$values ('SUCCESS'::text)$$,
    'the replay of the sleep in the fork goes on at once'
);

select * from finish();
rollback;
