-- acquire_step of a step never seen answers EXECUTE and records it RUNNING with attempt 1.
begin;
select plan(3);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

select pgqrs_tests.setup_workflow();
create temp table t_lease as select * from pgqrs_tests.leased_run();

select results_eq(
    $$select a.* from t_lease as l, lateral pgqrs.acquire_step(l.run_id, 'fetch', l.lease_token) as a$$,
    $$values ('EXECUTE'::text, null::jsonb, 1, null::timestamptz)$$,
    'EXECUTE, no value, attempt 1'
);
select results_eq(
    $$select status, attempt, started_at from pgqrs.steps where run_id = (select run_id from t_lease)$$,
    $$values ('RUNNING'::text, 1, '2030-01-01 00:00:00+00'::timestamptz)$$,
    'the step is RUNNING, attempt counted'
);
select results_eq(
    $$select a.status, a.attempt from t_lease as l, lateral pgqrs.acquire_step(l.run_id, 'fetch', l.lease_token) as a$$,
    $$values ('EXECUTE'::text, 2)$$,
    'asking again for a step that did not finish executes it again (a new attempt)'
);

select * from finish();
rollback;
