-- pgqrs: leases. Every worker write (the step protocol, run transitions) carries its lease token (fencing).
--
-- Lock order, everywhere: message row, then run row, then step row. Dequeue takes message rows with
-- SKIP LOCKED, so a worker writing under its lease holds the message row and a concurrent dequeue passes it by
-- until the write commits; the next holder then sees that write in its journal.

-- This file: the lease predicate, checking a lease, and handing a leased message back.

-- The lease predicate, the one place it is written: a message's lease (p_message_token, held until
-- p_message_visible_at) is held by a caller presenting p_lease_token at p_now. NULLs (no row, no lease, no token)
-- give false, never NULL, so `if not pgqrs._lease_held(...)` cannot let a missing lease through.
-- LANGUAGE sql, IMMUTABLE, no SET: the planner inlines it into its caller's expression, so the hot paths
-- (complete_step, complete_run) pay no function call for it; a SET clause, a pinned search_path included,
-- would prevent that. It needs no pinned path: its body names its operators by schema and reads no table,
-- and inlined it is part of a caller whose search_path is pinned (docs/security.md).
create or replace function pgqrs._lease_held(
    p_message_token uuid, p_message_visible_at timestamptz, p_lease_token uuid, p_now timestamptz
)
returns boolean
language sql
immutable
as $$
    select coalesce(
        p_lease_token operator(pg_catalog.=) p_message_token
        and p_message_visible_at operator(pg_catalog.>) p_now,
        false
    )
$$;

-- Locks the run's message and checks the lease against pgqrs.now() (never a caller's time).
create or replace function pgqrs._lease(p_run bigint, p_lease_token uuid)
returns pgqrs.messages
language plpgsql
volatile
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_message pgqrs.messages;
    v_status text;
begin
    select * into v_message from pgqrs.messages as m where m.message_id = p_run for update;
    if v_message.message_id is null then
        select r.status into v_status from pgqrs.runs as r where r.run_id = p_run;
        if v_status is null then
            raise exception using errcode = 'QR002', message = format('unknown run: %s', p_run);
        end if;
        if v_status = 'CANCELLED' then
            raise exception using
                errcode = 'QR009',
                message = format('run %s was cancelled', p_run),
                hint = 'Stop working on this run: pgqrs.cancel_run ended it.';
        end if;
        raise exception using
            errcode = 'QR003',
            message = format('run %s is %s', p_run, v_status),
            hint = 'A finished run takes no more writes.';
    end if;
    if not pgqrs._lease_held(v_message.lease_token, v_message.visible_at, p_lease_token, pgqrs.now()) then
        raise exception using
            errcode = 'QR004',
            message = format('lease on run %s is not held', p_run),
            detail = case
                when v_message.lease_token is distinct from p_lease_token
                    then 'The token does not match the current lease (taken over, released, or never issued).'
                else 'The lease expired.' end,
            hint = 'Stop working on this run; another worker may own it now.';
    end if;
    return v_message;
end
$$;

-- Hands a leased message back to its queue: no lease any more, deliverable from p_visible_at (NULL: never, until
-- resume_run moves it), and the queue's listeners woken for then. The one way a worker's lease ends without
-- the run finishing (fail_step's retry, pause_step, release_run). The caller holds the message row.
create or replace function pgqrs._release_lease(p_run bigint, p_queue_id bigint, p_visible_at timestamptz)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pgqrs, pg_temp
as $$
begin
    update pgqrs.messages as m
    set visible_at = coalesce(p_visible_at, 'infinity'), lease_token = null, lease_duration = null, worker_id = null
    where m.message_id = p_run;
    if pgqrs._limits_concurrency(p_queue_id) then  -- a slot is free: wake the workers waiting for one
        perform pgqrs._notify_queue(p_queue_id, pgqrs.now());
    end if;
    if p_visible_at is not null then
        perform pgqrs._notify_queue(p_queue_id, p_visible_at);
    end if;
end
$$;
