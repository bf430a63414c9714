-- EXECUTE, complete_step, then acquire_step answers SKIPPED with the stored value, also for the next holder.
begin;
select plan(5);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_lease as select * from pgqrs_tests.leased_run();

select is(
    (select a.status from t_lease as l, lateral pgqrs.acquire_step(l.run_id, 'fetch', l.lease_token) as a),
    'EXECUTE', 'first: EXECUTE'
);
select is(
    (select pgqrs.complete_step(run_id, 'fetch', lease_token, '{"files": ["a", "b"]}') from t_lease), true,
    'complete_step records the value'
);
select results_eq(
    $$select a.* from t_lease as l, lateral pgqrs.acquire_step(l.run_id, 'fetch', l.lease_token) as a$$,
    $$values ('SKIPPED'::text, '{"files": ["a", "b"]}'::jsonb, 1, null::timestamptz)$$,
    'then: SKIPPED with the value, attempt unchanged'
);
select results_eq(
    $$select status, attempt from pgqrs.steps where run_id = (select run_id from t_lease)$$,
    $$values ('SUCCESS'::text, 1)$$,
    'the step stays SUCCESS, not executed again'
);
-- the worker dies; the next holder replays
set local "pgqrs.now" = '2030-01-01 00:01:00+00';
create temp table t_lease2 as select * from pgqrs.dequeue('wf', (select worker_id from t_worker), 1, '30 seconds');
select results_eq(
    $$select a.status, a.value from t_lease2 as l, lateral pgqrs.acquire_step(l.run_id, 'fetch', l.lease_token) as a$$,
    $$values ('SKIPPED'::text, '{"files": ["a", "b"]}'::jsonb)$$,
    'the next holder gets SKIPPED with the same value'
);

select * from finish();
rollback;
