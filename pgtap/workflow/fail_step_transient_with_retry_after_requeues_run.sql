-- fail_step transient with retry_after: step ERROR, run QUEUED, lease released, message visible at retry_at.
begin;
select plan(7);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_lease as select * from pgqrs_tests.run_at_step('call');

select results_eq(
    $$select f.* from t_lease as l,
      lateral pgqrs.fail_step(l.run_id, 'call', l.lease_token, '{"msg": "503"}', true, '5 minutes') as f$$,
    $$values ('QUEUED'::text, 1, '2030-01-01 00:05:00+00'::timestamptz)$$,
    'returns QUEUED, attempt 1, retry_at = now + retry_after'
);
select results_eq(
    $$select status, error, attempt, retry_at from pgqrs.steps where run_id = (select run_id from t_lease)$$,
    $$values ('ERROR'::text, '{"msg": "503"}'::jsonb, 1, '2030-01-01 00:05:00+00'::timestamptz)$$,
    'the step is ERROR with the error and retry_at'
);
select results_eq(
    $$select status, error from pgqrs.runs where run_id = (select run_id from t_lease)$$,
    $$values ('QUEUED'::text, '{"msg": "503"}'::jsonb)$$,
    'the run is QUEUED with the last error'
);
select results_eq(
    $$select visible_at, lease_token from pgqrs.messages where message_id = (select run_id from t_lease)$$,
    $$values ('2030-01-01 00:05:00+00'::timestamptz, null::uuid)$$,
    'the message is visible at retry_at, lease token released'
);
set local "pgqrs.now" = '2030-01-01 00:04:59+00';
select is(
    (select count(*) from pgqrs.dequeue('wf', (select worker_id from t_worker))), 0::bigint,
    'not delivered before retry_at'
);
set local "pgqrs.now" = '2030-01-01 00:05:00+00';
create temp table t_lease2 as select * from pgqrs.dequeue('wf', (select worker_id from t_worker));
select is((select attempt from t_lease2), 2, 'delivered again at retry_at (second delivery)');
select results_eq(
    $$select a.status, a.attempt from t_lease2 as l, lateral pgqrs.acquire_step(l.run_id, 'call', l.lease_token) as a$$,
    $$values ('EXECUTE'::text, 2)$$,
    'the step executes again as attempt 2'
);

select * from finish();
rollback;
