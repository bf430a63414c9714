-- wait_event and emit_event refuse bad input and change nothing: an empty or over-long key, a timeout out of
-- range, an oversized payload (22023); a lease not held (QR004); a step id of another kind, or a waiting step
-- asked for with another key (QR010).
begin;
select plan(11);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_lease as select * from pgqrs_tests.run_at_step('body', array['done']);
select pgqrs.sleep_step(run_id, 'nap', lease_token, '2029-01-01 00:00:00+00') from t_lease;  -- a due sleep
create temp table t_before as select * from pgqrs_tests.snapshot((select run_id from t_lease));

create function pg_temp.wait(p_step text, p_key text, p_timeout text default 'null', p_token uuid default null)
returns text language sql as $$
    select format($q$select pgqrs.wait_event(%s, %L, %L, %L, %s)$q$, l.run_id, p_step,
                  coalesce(p_token, l.lease_token), p_key, p_timeout)
    from t_lease as l
$$;

select throws_ok(pg_temp.wait('e', ''), '22023', null, 'empty key');
select throws_ok(pg_temp.wait('e', null), '22023', null, 'NULL key');
select throws_ok(pg_temp.wait('e', repeat('k', 256)), '22023', null, 'key over 255 characters');
select throws_ok(pg_temp.wait('e', 'k', '''0 seconds'''), '22023', null, 'timeout 0');
select throws_ok(pg_temp.wait('e', 'k', '''-1 second'''), '22023', null, 'negative timeout');
select throws_ok(pg_temp.wait('e', 'k', '''366 days'''), '22023', null, 'timeout over 365 days');
select throws_ok(pg_temp.wait('e', 'k', 'null', gen_random_uuid()), 'QR004', null, 'lease not held');
select throws_ok(pg_temp.wait('done', 'k'), 'QR010', null, 'an ordinary step''s id');
select throws_ok(pg_temp.wait('nap', 'k'), 'QR010', null, 'a sleep''s id');
select throws_ok($$select pgqrs.emit_event('', '1')$$, '22023', null, 'emit with an empty key');
select results_eq(
    $$select * from pgqrs_tests.snapshot((select run_id from t_lease))$$, $$select * from t_before$$, 'nothing changed'
);

select * from finish();
rollback;
