-- pgqrs: events. pgqrs.emit_event records an event once (the first emit wins); pgqrs.wait_event waits for one.
--
-- An emit racing a wait on the same key gives exactly one outcome: both take the transaction-level advisory
-- lock of the key (pgqrs._lock_event_key) before they read the event or the waiters, so either the wait sees
-- the event, or the emit sees the waiter. Lock order: wait_event holds the lease (message row, run row), then
-- the key; emit_event takes the key, then the message rows of the waiting runs whose lease is free. Neither
-- can wait on the other's rows: a run whose message is leased is RUNNING, which emit_event passes by.

create or replace function pgqrs._lock_event_key(p_key text)
returns void
language sql
volatile
set search_path = pg_catalog, pg_temp
as $$
    select pg_advisory_xact_lock(hashtextextended('pgqrs.event:' || p_key, 0))
$$;

create or replace function pgqrs.emit_event(p_key text, p_payload jsonb)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
set plan_cache_mode = force_generic_plan
as $$
declare
    v_payload jsonb := coalesce(p_payload, 'null'::jsonb);
    v_limit bigint := pgqrs._max_input_bytes();
    v_now timestamptz := pgqrs.now();
    v_woken bigint[];
    v_queue_id bigint;
begin
    perform pgqrs._check_event_key(p_key);
    if octet_length(v_payload::text) > v_limit then
        raise exception using
            errcode = '22023',
            message = format('event payload is %s bytes; the limit is %s', octet_length(v_payload::text), v_limit);
    end if;
    perform pgqrs._lock_event_key(p_key);
    insert into pgqrs.events (key, payload, emitted_at) values (p_key, v_payload, v_now) on conflict do nothing;
    if not found then
        return false;  -- the first emit won; this one changes nothing
    end if;

    -- Wake the runs that wait on the key and have not timed out: their messages first (lock order), visible now.
    with woken as (
        update pgqrs.messages as m set visible_at = v_now
        from pgqrs.waits as w
        join pgqrs.runs as r on r.run_id = w.run_id
        where
            w.kind = 'event' and w.key = p_key and (w.until is null or w.until > v_now)
            and r.status = 'WAITING' and m.message_id = w.run_id and m.lease_token is null
        returning m.message_id
    )
    select array_agg(message_id order by message_id) into v_woken from woken;
    if v_woken is null then
        return true;
    end if;
    update pgqrs.runs as r set status = 'QUEUED', updated_at = v_now where r.run_id = any(v_woken);
    update pgqrs.steps as s
    set status = 'SUCCESS', value = jsonb_build_object('payload', v_payload),
        value_bytes = pg_column_size(jsonb_build_object('payload', v_payload)), completed_at = v_now, updated_at = v_now
    from pgqrs.waits as w
    where w.run_id = any(v_woken) and s.run_id = w.run_id and s.step_id = w.step_id and s.status = 'WAITING';
    delete from pgqrs.waits as w where w.run_id = any(v_woken);
    for v_queue_id in
        select distinct m.queue_id from pgqrs.messages as m where m.message_id = any(v_woken)
    loop
        perform pgqrs._notify_queue(v_queue_id, v_now);
    end loop;
    return true;
end
$$;
comment on function pgqrs.emit_event(text, jsonb) is
'Emits event p_key (1-255 characters) with p_payload (JSON, NULL = null, at most pgqrs.max_input_bytes). The
first emit of a key wins and returns true: every run WAITING on the key (pgqrs.wait_event) and not timed out
gets the payload as its step''s outcome and is visible now (listeners notified), in this transaction. A later
emit changes nothing and returns false. Raises 22023.';

create or replace function pgqrs.wait_event(
    p_run bigint, p_step_id text, p_lease_token uuid, p_key text, p_timeout interval default null
)
returns table (status text, payload jsonb)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
declare
    v_now timestamptz := pgqrs.now();
    v_message pgqrs.messages;
    v_step pgqrs.steps;
    v_until timestamptz;
    v_payload jsonb;
begin
    perform pgqrs._check_step_id(p_step_id);
    perform pgqrs._check_event_key(p_key);
    if p_timeout <= interval '0' or p_timeout > interval '365 days' then
        raise exception using
            errcode = '22023', message = format('event timeout must be more than 0 and at most 365 days, got %s', p_timeout);
    end if;
    v_message := pgqrs._lease(p_run, p_lease_token);
    perform pgqrs._lock_run(p_run);
    perform pgqrs._lock_event_key(p_key);
    v_step := pgqrs._wait_step(p_run, p_step_id, 'event');
    if v_step.value ->> 'key' is distinct from p_key and v_step.status = 'WAITING' then
        raise exception using
            errcode = 'QR010',
            message = format('step %s of run %s waits for event %s, not %s', p_step_id, p_run,
                             v_step.value ->> 'key', left(p_key, 64));
    end if;
    if v_step.status = 'SUCCESS' then  -- the outcome is recorded: a replay returns it
        return query select case when v_step.value ? 'payload' then 'EVENT' else 'TIMEOUT' end,
                            v_step.value -> 'payload';
        return;
    end if;
    if v_step.status = 'WAITING' then
        v_until := (v_step.value ->> 'until')::timestamptz;
        if v_until <= v_now then  -- timed out before any emit (an emit in time records the payload itself)
            perform pgqrs._end_wait(p_run, p_step_id, 'event', jsonb_build_object('timeout', true));
            return query select 'TIMEOUT'::text, null::jsonb;
            return;
        end if;
    else
        v_until := v_now + p_timeout;
    end if;
    select e.payload into v_payload from pgqrs.events as e where e.key = p_key;
    if found then
        perform pgqrs._end_wait(p_run, p_step_id, 'event', jsonb_build_object('payload', v_payload));
        return query select 'EVENT'::text, v_payload;
        return;
    end if;
    perform pgqrs._begin_wait(p_run, v_message.queue_id, p_step_id, 'event', p_key, v_until,
                              jsonb_build_object('key', p_key, 'until', v_until));
    return query select 'WAITING'::text, null::jsonb;
end
$$;
comment on function pgqrs.wait_event(bigint, text, uuid, text, interval) is
'Waits at step p_step_id for event p_key, at most p_timeout (0 < t <= 365 days; NULL: no timeout). Returns
(EVENT, payload) when it was emitted, (TIMEOUT, NULL) when the timeout passed first (both recorded as the step''s
outcome: a replay returns the same), or (WAITING, NULL): the step and the run WAITING (pgqrs.waiting_runs: kind
event), the lease released, the message visible at the timeout or when pgqrs.emit_event wakes it; the caller
stops. Raises QR004 (lease), QR002/QR003/QR009, QR010 (step id of another kind of step, or waiting for another
key), 22023 (step id, key, timeout).';
