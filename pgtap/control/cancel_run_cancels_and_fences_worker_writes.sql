-- cancel_run stops a run in any live state; the worker holding it gets QR009 on its next write and a lost lease
-- on its next heartbeat; result waiters are notified.
begin;
select plan(8);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_queued as select * from pgqrs.trigger('wf', '{}', null, '1 hour');
create temp table t_running as select * from pgqrs.trigger('wf', '{}');
create temp table t_d as select * from pgqrs.dequeue('wf', (select worker_id from t_worker), 1, '30 seconds');

select is(pgqrs.cancel_run((select run_id from t_queued), 'not needed'), 'CANCELLED', 'a QUEUED run is cancelled');
select is(pgqrs.cancel_run((select run_id from t_d)), 'CANCELLED', 'a RUNNING run is cancelled');
select results_eq(
    $$select r.status, r.error ->> 'kind', r.error ->> 'reason', a.outcome
      from pgqrs.runs as r join pgqrs.messages_archive as a on a.message_id = r.run_id order by r.run_id$$,
    $$values ('CANCELLED'::text, 'cancelled'::text, 'not needed'::text, 'CANCELLED'::text),
             ('CANCELLED', 'cancelled', null, 'CANCELLED')$$,
    'both CANCELLED with the reason, messages archived as CANCELLED'
);
select throws_ok(
    format(
        'select pgqrs.complete_step(%s, %L, %L, %L)', (select run_id from t_d), 'a', (select lease_token from t_d), '1'
    ),
    'QR009', null, 'complete_step by the worker raises QR009'
);
select throws_ok(
    format('select pgqrs.complete_run(%s, %L)', (select run_id from t_d), (select lease_token from t_d)),
    'QR009', null, 'complete_run by the worker raises QR009'
);
select throws_ok(
    format(
        'select * from pgqrs.acquire_step(%s, %L, %L)', (select run_id from t_d), 'a', (select lease_token from t_d)
    ),
    'QR009', null, 'acquire_step by the worker raises QR009'
);
select is(
    (select held from pgqrs.heartbeat((select worker_id from t_worker), array[(select lease_token from t_d)])),
    false, 'its heartbeat reports the lease lost'
);
select is((select count(*) from pgqrs.steps), 0::bigint, 'nothing was written by the refused calls');

select * from finish();
rollback;
