-- A step id keeps its kind, also the other way round: the step protocol (acquire_step, complete_step,
-- fail_step, pause_step, update_step) on a step id that a durable wait recorded, WAITING or SUCCESS, raises QR010
-- and changes nothing (the wait itself goes on).
begin;
select plan(17);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_lease as select * from pgqrs_tests.leased_run();
select pgqrs.complete_step(run_id, 'plain', lease_token, '1') from t_lease;
select pgqrs.sleep_step(run_id, 'woke', lease_token, '2029-12-31 23:59:59+00') from t_lease;  -- due: SUCCESS
select pgqrs.emit_event('paid:1', '{"amount": 5}');
select pgqrs.wait_event(run_id, 'paid', lease_token, 'paid:1') from t_lease;  -- emitted: SUCCESS
select pgqrs.sleep_step(run_id, 'nap', lease_token, '2030-01-01 01:00:00+00') from t_lease;  -- WAITING
set local "pgqrs.now" = '2030-01-01 01:00:00+00';
create temp table t_again as select * from pgqrs.dequeue('wf', (select worker_id from t_worker));

create temp table t_before as select pgqrs_tests.snapshot(run_id) as snap from t_lease;
create function pg_temp.write(p_call text, p_step text) returns text language sql as $$
    select format(p_call, a.run_id, p_step, a.lease_token) from t_again as a
$$;

select throws_ok(
    pg_temp.write($$select pgqrs.acquire_step(%s, %L, %L)$$, 'nap'), 'QR010', null,
    'acquire_step of a WAITING sleep'
);
select throws_like(
    pg_temp.write($$select pgqrs.acquire_step(%s, %L, %L)$$, 'nap'),
    'step nap of run % is a sleep, not an ordinary step', 'the message names both kinds'
);
select throws_ok(
    pg_temp.write($$select pgqrs.acquire_step(%s, %L, %L)$$, 'woke'), 'QR010', null,
    'acquire_step of a done sleep (not SKIPPED with its value)'
);
select throws_ok(
    pg_temp.write($$select pgqrs.complete_step(%s, %L, %L, '1')$$, 'nap'), 'QR010', null,
    'complete_step of a WAITING sleep'
);
select throws_ok(
    pg_temp.write($$select pgqrs.complete_step(%s, %L, %L, '1')$$, 'paid'), 'QR010', null,
    'complete_step of a done event wait (not QR005)'
);
select throws_like(
    pg_temp.write($$select pgqrs.complete_step(%s, %L, %L, '1')$$, 'paid'),
    'step paid of run % is an event wait, not an ordinary step', 'complete_step says so'
);
select throws_ok(
    pg_temp.write($$select pgqrs.complete_step(%s, %L, %L, '{"payload": {"amount": 5}}')$$, 'paid'),
    'QR010', null, 'complete_step with the recorded value (not a no-op)'
);
select throws_ok(
    pg_temp.write($$select pgqrs.fail_step(%s, %L, %L, '{}')$$, 'nap'), 'QR010', null,
    'fail_step of a WAITING sleep'
);
select throws_ok(
    pg_temp.write($$select pgqrs.fail_step(%s, %L, %L, '{}')$$, 'woke'), 'QR010', null,
    'fail_step of a done sleep (not QR005)'
);
select throws_ok(
    pg_temp.write($$select pgqrs.pause_step(%s, %L, %L)$$, 'nap'), 'QR010', null,
    'pause_step of a WAITING sleep'
);
select throws_ok(
    pg_temp.write($$select pgqrs.pause_step(%s, %L, %L)$$, 'paid'), 'QR010', null,
    'pause_step of a done event wait (not SUCCESS with its value)'
);
select throws_ok(
    format($$select pgqrs.update_step(%s, 'nap', 'SUCCESS', '1')$$, (select run_id from t_lease)), 'QR010', null,
    'update_step of a WAITING sleep'
);
select throws_ok(
    format(
        $$select pgqrs.update_step(%s, 'paid', 'SUCCESS', '{"payload": {"amount": 5}}')$$,
        (select run_id from t_lease)
    ),
    'QR010', null, 'update_step of a done event wait, even with its value'
);
select is((select pgqrs_tests.snapshot(run_id) from t_lease), (select snap from t_before), 'nothing changed');

-- the ordinary steps and the wait go on as before
select results_eq(
    $$select p.status, p.value from t_again as a, lateral pgqrs.acquire_step(a.run_id, 'plain', a.lease_token) as p$$,
    $$values ('SKIPPED'::text, '1'::jsonb)$$,
    'an ordinary step is SKIPPED as before'
);
select is(
    (select p.status from t_again as a, lateral pgqrs.acquire_step(a.run_id, 'new', a.lease_token) as p),
    'EXECUTE', 'a new step is EXECUTE as before'
);
select results_eq(
    $$select p.* from t_again as a, lateral pgqrs.sleep_step(a.run_id, 'nap', a.lease_token, pgqrs.now()) as p$$,
    $$values ('SUCCESS'::text, '2030-01-01 01:00:00+00'::timestamptz)$$,
    'the sleep wakes as before'
);

select * from finish();
rollback;
