-- send and recv refuse bad input and change nothing: an unknown run (QR002), a finished run (QR003), an empty or
-- over-long topic, an oversized message, an empty idempotency key, a timeout out of range (22023); a key used for
-- another message (QR006); a lease not held (QR004); a step id of another kind, or a recv step asked for with
-- another topic (QR010).
begin;
select plan(17);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';
set local "pgqrs.max_input_bytes" = '100';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_runs as select * from pgqrs_tests.queued_running_succeeded_runs();
create temp table t_lease as select * from pgqrs_tests.run_at_step('body', array['done']);
select pgqrs.send(run_id, 't', '1', 'k') from t_lease;
select pgqrs.recv(run_id, 'got', lease_token, 't') from t_lease;  -- consumes it
create temp table t_before as select * from pgqrs_tests.snapshot((select run_id from t_lease));
create temp table t_messages as select * from pgqrs.run_messages;

create function pg_temp.recv(p_step text, p_topic text, p_timeout text default 'null', p_token uuid default null)
returns text language sql as $$
    select format($q$select pgqrs.recv(%s, %L, %L, %L, %s)$q$, l.run_id, p_step,
                  coalesce(p_token, l.lease_token), p_topic, p_timeout)
    from t_lease as l
$$;
create function pg_temp.send(p_topic text, p_message text default '1', p_key text default null)
returns text language sql as $$
    select format($q$select pgqrs.send(%s, %L, %L, %L)$q$, l.run_id, p_topic, p_message, p_key) from t_lease as l
$$;

select throws_ok($$select pgqrs.send(-1, 't', '1')$$, 'QR002', null, 'send to an unknown run');
select throws_ok(
    format($$select pgqrs.send(%s, 't', '1')$$, (select succeeded from t_runs)), 'QR003',
    format('run %s has finished (SUCCESS): it receives no more messages', (select succeeded from t_runs)),
    'send to a finished run'
);
select throws_ok(pg_temp.send(''), '22023', null, 'empty topic');
select throws_ok(pg_temp.send(null), '22023', null, 'NULL topic');
select throws_ok(pg_temp.send(repeat('t', 256)), '22023', null, 'topic over 255 characters');
select throws_ok(pg_temp.send('t', to_jsonb(repeat('x', 200))::text), '22023', null, 'message over max_input_bytes');
select throws_ok(pg_temp.send('t', '1', ''), '22023', null, 'empty idempotency key');
select throws_ok(pg_temp.send('t', '2', 'k'), 'QR006', null, 'a key used for another message');
select throws_ok(pg_temp.send('u', '1', 'k'), 'QR006', null, 'a key used on another topic');
select throws_ok(pg_temp.recv('r', ''), '22023', null, 'recv on an empty topic');
select throws_ok(pg_temp.recv('r', 't', '''0 seconds'''), '22023', null, 'timeout 0');
select throws_ok(pg_temp.recv('r', 't', '''366 days'''), '22023', null, 'timeout over 365 days');
select throws_ok(pg_temp.recv('r', 't', 'null', gen_random_uuid()), 'QR004', null, 'lease not held');
select throws_ok(pg_temp.recv('done', 't'), 'QR010', null, 'an ordinary step''s id');
select throws_ok(pg_temp.recv('got', 'u'), 'QR010', null, 'a recv step asked for with another topic');
select results_eq(
    $$select * from pgqrs_tests.snapshot((select run_id from t_lease))$$, $$select * from t_before$$, 'nothing changed'
);
select results_eq($$select * from pgqrs.run_messages$$, $$select * from t_messages$$, 'no message sent or consumed');

select * from finish();
rollback;
