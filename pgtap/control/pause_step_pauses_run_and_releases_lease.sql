-- pause_step: step and run PAUSED, lease released (the old token is refused), message invisible until the timeout.
begin;
select plan(7);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_lease as select * from pgqrs_tests.run_at_step('approval');

select results_eq(
    $$select p.* from t_lease as l, lateral pgqrs.pause_step(l.run_id, 'approval', l.lease_token, '1 hour') as p$$,
    $$values ('PAUSED'::text, null::jsonb)$$,
    'pause_step returns PAUSED'
);
select results_eq(
    $$select status, paused_until, attempt from pgqrs.steps where run_id = (select run_id from t_lease)$$,
    $$values ('PAUSED'::text, '2030-01-01 01:00:00+00'::timestamptz, 1)$$,
    'the step is PAUSED until the timeout'
);
select is((select status from pgqrs.runs where run_id = (select run_id from t_lease)), 'PAUSED', 'the run is PAUSED');
select results_eq(
    $$select visible_at, lease_token, worker_id from pgqrs.messages where message_id = (select run_id from t_lease)$$,
    $$values ('2030-01-01 01:00:00+00'::timestamptz, null::uuid, null::bigint)$$,
    'the lease is released; the message is invisible until the timeout'
);
select throws_ok(
    format(
        $$select pgqrs.complete_step(%s, 'approval', %L, 'true')$$,
        (select run_id from t_lease), (select lease_token from t_lease)
    ),
    'QR004', null, 'the old token is refused'
);
set local "pgqrs.now" = '2030-01-01 00:59:59+00';
select is(
    (select count(*) from pgqrs.dequeue('wf', (select worker_id from t_worker))), 0::bigint,
    'not delivered before the timeout'
);
select results_eq(
    $$select step_id, paused_until from pgqrs.paused_runs where run_id = (select run_id from t_lease)$$,
    $$values ('approval'::text, '2030-01-01 01:00:00+00'::timestamptz)$$,
    'listed in pgqrs.paused_runs'
);

select * from finish();
rollback;
