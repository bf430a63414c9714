-- pgqrs: messages to a run. pgqrs.send adds a message to a run's topic; pgqrs.recv takes the oldest one.
--
-- Each message is consumed by exactly one recv step: recv marks it consumed in the transaction that records
-- the step SUCCESS with the message as its value, under the lease, so a replay returns the recorded message
-- and a recorded step never takes a second one.
--
-- A send racing a recv on the same run and topic gives exactly one outcome: both take the transaction-level
-- advisory lock of (run, topic) (pgqrs._lock_topic) before they read the messages or the wait, so either recv
-- sees the message, or send sees the run WAITING on the topic and wakes it. Lock order: recv holds the lease
-- (message row, run row), then the topic; send takes the topic, then the message row of the run only when
-- its lease is free (a run whose message is leased is RUNNING, which send passes by without waiting). send
-- takes no run row lock: a send that races the run's end may land just after it, where no recv reads it.

create or replace function pgqrs._lock_topic(p_run bigint, p_topic text)
returns void
language sql
volatile
set search_path = pg_catalog, pg_temp
as $$
    select pg_advisory_xact_lock(hashtextextended('pgqrs.topic:' || p_run || ':' || p_topic, 0))
$$;

-- A topic: 1-255 characters.
create or replace function pgqrs._check_topic(p_topic text)
returns void
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_topic is null or p_topic = '' or length(p_topic) > 255 then
        raise exception using
            errcode = '22023',
            message = format('topic must be 1-255 characters, got %s', coalesce(length(p_topic) || ' characters', 'NULL'));
    end if;
end
$$;

create or replace function pgqrs.send(
    p_run bigint, p_topic text, p_message jsonb, p_idempotency_key text default null
)
returns bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
set plan_cache_mode = force_generic_plan
as $$
declare
    v_message jsonb := coalesce(p_message, 'null'::jsonb);
    v_limit bigint := pgqrs._max_input_bytes();
    v_now timestamptz := pgqrs.now();
    v_status text;
    v_id bigint;
    v_existing pgqrs.run_messages;
    v_queue_id bigint;
begin
    perform pgqrs._check_topic(p_topic);
    if octet_length(v_message::text) > v_limit then
        raise exception using
            errcode = '22023',
            message = format('message is %s bytes; the limit is %s', octet_length(v_message::text), v_limit);
    end if;
    if p_idempotency_key = '' or length(p_idempotency_key) > 255 then
        raise exception using errcode = '22023', message = 'idempotency key must be 1-255 characters';
    end if;
    perform pgqrs._lock_topic(p_run, p_topic);
    select r.status into v_status from pgqrs.runs as r where r.run_id = p_run;
    if v_status is null then
        raise exception using errcode = 'QR002', message = format('unknown run: %s', coalesce(p_run::text, 'NULL'));
    end if;
    if v_status in ('SUCCESS', 'ERROR', 'CANCELLED') then
        raise exception using
            errcode = 'QR003', message = format('run %s has finished (%s): it receives no more messages', p_run, v_status);
    end if;

    insert into pgqrs.run_messages (run_id, topic, payload, idempotency_key, sent_at)
    values (p_run, p_topic, v_message, p_idempotency_key, v_now)
    on conflict (run_id, idempotency_key) where idempotency_key is not null do nothing
    returning message_id into v_id;
    if v_id is null then  -- the key was used: the same message again returns it, another one is an error
        select * into v_existing from pgqrs.run_messages as m
        where m.run_id = p_run and m.idempotency_key = p_idempotency_key;
        if v_existing.topic is distinct from p_topic or v_existing.payload is distinct from v_message then
            raise exception using
                errcode = 'QR006',
                message = format('idempotency key %s already used by message %s to run %s with another topic or message',
                                 p_idempotency_key, v_existing.message_id, p_run),
                hint = 'Use a new key for a new message.';
        end if;
        return v_existing.message_id;
    end if;

    -- Wake the run when it waits on this topic (not timed out): its message visible now, in this transaction.
    update pgqrs.messages as m set visible_at = v_now
    from pgqrs.waits as w
    join pgqrs.runs as r on r.run_id = w.run_id
    where
        w.run_id = p_run and w.kind = 'message' and w.key = p_topic and (w.until is null or w.until > v_now)
        and r.status = 'WAITING' and m.message_id = w.run_id and m.lease_token is null
    returning m.queue_id into v_queue_id;
    if v_queue_id is not null then
        update pgqrs.runs as r set status = 'QUEUED', updated_at = v_now where r.run_id = p_run;
        delete from pgqrs.waits as w where w.run_id = p_run;
        perform pgqrs._notify_queue(v_queue_id, v_now);
    end if;
    return v_id;
end
$$;
comment on function pgqrs.send(bigint, text, jsonb, text) is
'Sends p_message (JSON, NULL = null, at most pgqrs.max_input_bytes) to run p_run on topic p_topic (1-255
characters); returns the message id. Messages of a topic are taken in the order sent by pgqrs.recv. When the run
WAITs on the topic it is visible now (listeners notified), in this transaction. p_idempotency_key (1-255
characters, unique per run): the same key again returns the first message''s id and changes nothing. Raises
QR002 (unknown run), QR003 (finished run), QR006 (the key was used for another topic or message), 22023.';

create or replace function pgqrs.recv(
    p_run bigint, p_step_id text, p_lease_token uuid, p_topic text, p_timeout interval default null
)
returns table (status text, message jsonb)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
declare
    v_now timestamptz := pgqrs.now();
    v_lease pgqrs.messages;
    v_step pgqrs.steps;
    v_until timestamptz;
    v_taken pgqrs.run_messages;
begin
    perform pgqrs._check_step_id(p_step_id);
    perform pgqrs._check_topic(p_topic);
    if p_timeout <= interval '0' or p_timeout > interval '365 days' then
        raise exception using
            errcode = '22023', message = format('recv timeout must be more than 0 and at most 365 days, got %s', p_timeout);
    end if;
    v_lease := pgqrs._lease(p_run, p_lease_token);
    perform pgqrs._lock_run(p_run);
    perform pgqrs._lock_topic(p_run, p_topic);
    v_step := pgqrs._wait_step(p_run, p_step_id, 'message');
    if v_step.status is not null and v_step.value ->> 'topic' is distinct from p_topic then
        raise exception using
            errcode = 'QR010',
            message = format('step %s of run %s receives on topic %s, not %s', p_step_id, p_run,
                             v_step.value ->> 'topic', left(p_topic, 64));
    end if;
    if v_step.status = 'SUCCESS' then  -- the outcome is recorded: a replay returns it, never a second message
        return query select case when v_step.value ? 'message' then 'MESSAGE' else 'TIMEOUT' end,
                            v_step.value -> 'message';
        return;
    end if;
    v_until := case when v_step.status = 'WAITING' then (v_step.value ->> 'until')::timestamptz
                    else v_now + p_timeout end;

    select * into v_taken from pgqrs.run_messages as m
    where m.run_id = p_run and m.topic = p_topic and m.consumed_at is null
    order by m.message_id limit 1
    for update;
    if found then
        update pgqrs.run_messages as m set consumed_by = p_step_id, consumed_at = v_now
        where m.message_id = v_taken.message_id;
        perform pgqrs._end_wait(p_run, p_step_id, 'message',
                                jsonb_build_object('topic', p_topic, 'message', v_taken.payload));
        return query select 'MESSAGE'::text, v_taken.payload;
    elsif v_until <= v_now then  -- the timeout passed before any message came
        perform pgqrs._end_wait(p_run, p_step_id, 'message', jsonb_build_object('topic', p_topic, 'timeout', true));
        return query select 'TIMEOUT'::text, null::jsonb;
    else
        perform pgqrs._begin_wait(p_run, v_lease.queue_id, p_step_id, 'message', p_topic, v_until,
                                  jsonb_build_object('topic', p_topic, 'until', v_until));
        return query select 'WAITING'::text, null::jsonb;
    end if;
end
$$;
comment on function pgqrs.recv(bigint, text, uuid, text, interval) is
'Receives at step p_step_id the oldest unconsumed message of topic p_topic sent to run p_run, waiting at most
p_timeout (0 < t <= 365 days; NULL: no timeout). Returns (MESSAGE, message): the message is consumed by this step
and recorded as its outcome; (TIMEOUT, NULL): the timeout passed first (recorded too: a replay returns the same
outcome and never takes a second message); or (WAITING, NULL): the step and the run WAITING (pgqrs.waiting_runs:
kind message, key = the topic), the lease released, the message visible at the timeout or when pgqrs.send wakes
it; the caller stops. Raises QR004 (lease), QR002/QR003/QR009, QR010 (step id of another kind of step, or
receiving on another topic), 22023 (step id, topic, timeout).';
