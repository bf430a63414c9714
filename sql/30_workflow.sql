-- pgqrs: the step protocol and run transitions. Every worker write carries its lease token (fencing).
--
-- Lock order, everywhere: message row, then run row, then step row. Dequeue takes message rows with
-- SKIP LOCKED, so a worker writing under its lease holds the message row and a concurrent dequeue passes it by
-- until the write commits; the next holder then sees that write in its journal.

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
    if p_lease_token is null or v_message.lease_token is distinct from p_lease_token
        or v_message.visible_at <= pgqrs.now() then
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

-- Locks and returns the run row, raising QR002 for an unknown run.
create or replace function pgqrs._lock_run(p_run bigint)
returns pgqrs.runs
language plpgsql
volatile
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_run pgqrs.runs;
begin
    -- no key update: the foreign-key checks of step inserts (key share on the run) must not wait for it, or
    -- update_step (run, then step) and complete_step (step insert, then the run's key) deadlock.
    select * into v_run from pgqrs.runs as r where r.run_id = p_run for no key update;
    if v_run.run_id is null then
        raise exception using errcode = 'QR002', message = format('unknown run: %s', coalesce(p_run::text, 'NULL'));
    end if;
    return v_run;
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
    if p_visible_at is not null then
        perform pgqrs._notify_queue(p_queue_id, p_visible_at);
    end if;
end
$$;

-- Announces a finished run on pgqrs_runs without telling a non-member which one, nor how it ended: any login
-- can LISTEN there. The payload is a token, the first 16 hex digits of sha256(key || run id as text), with the
-- per-database key of pgqrs.channel_key that only members read (runs_channel_key); result() waiters compute
-- the tokens of their runs and read the outcome with run_status.
-- (A secret prefix, not an HMAC: length extension forges longer messages, it does not reveal the run id.)
create or replace function pgqrs._notify_run_finished(p_run bigint)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pgqrs, pg_temp
as $$
begin
    perform pg_notify(
        'pgqrs_runs',
        (select left(encode(sha256(k.secret || convert_to(p_run::text, 'UTF8')), 'hex'), 16) from pgqrs.channel_key as k)
    );
end
$$;

create or replace function pgqrs.runs_channel_key()
returns bytea
language plpgsql
stable
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
begin
    return (select k.secret from pgqrs.channel_key as k);
end
$$;
comment on function pgqrs.runs_channel_key() is
'The key of the pgqrs_runs channel: a run that finishes is announced there by the token
left(encode(sha256(key || run_id::text), ''hex''), 16), so only callers of this function can tell which run.';

-- An attempt is counted once: by acquire_step (status RUNNING), or by the write that ends an attempt the
-- worker did not acquire (the Python ctx.step skips acquire for steps absent from the journal). A pause is not
-- a failure: running a paused step again after its timeout does not count another attempt, so a step that
-- polls by pausing keeps its retry budget.
create or replace function pgqrs._next_attempt(p_step pgqrs.steps)
returns integer
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_step.status in ('RUNNING', 'PAUSED') then
        return p_step.attempt;
    end if;
    return coalesce(p_step.attempt, 0) + 1;
end
$$;

create or replace function pgqrs.acquire_step(
    p_run bigint, p_step_id text, p_lease_token uuid, p_current_time timestamptz default null
)
returns table (status text, value jsonb, attempt integer, retry_at timestamptz)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
#variable_conflict use_column
declare
    v_time timestamptz := coalesce(p_current_time, pgqrs.now());
    v_step pgqrs.steps;
    v_max_attempts integer;
begin
    perform pgqrs._check_step_id(p_step_id);
    perform pgqrs._lease(p_run, p_lease_token);
    select * into v_step from pgqrs.steps as s where s.run_id = p_run and s.step_id = p_step_id for update;
    if v_step.status = 'SUCCESS' then
        return query select 'SKIPPED'::text, v_step.value, v_step.attempt, null::timestamptz;
        return;
    end if;
    if v_step.status = 'ERROR' then
        if v_step.retry_at > v_time then
            return query select 'WAIT'::text, null::jsonb, v_step.attempt, v_step.retry_at;
            return;
        end if;
        v_max_attempts := v_step.max_attempts;
        if v_max_attempts is null then  -- no step policy was given: the workflow's current policy applies
            select (w.retry_policy ->> 'max_attempts')::numeric::integer into v_max_attempts
            from pgqrs.runs as r join pgqrs.workflows as w using (workflow_id) where r.run_id = p_run;
        end if;
        if v_step.attempt >= v_max_attempts then
            raise exception using
                errcode = 'QR007',
                message = format('step %s of run %s has used all %s attempts', p_step_id, p_run, v_max_attempts),
                hint = 'Fail the run, or reset it with pgqrs.retry_run once it is ERROR.';
        end if;
    end if;
    insert into pgqrs.steps as s (run_id, step_id, status, attempt, started_at, updated_at)
    values (p_run, p_step_id, 'RUNNING', 1, pgqrs.now(), pgqrs.now())
    on conflict (run_id, step_id) do update
        -- a new attempt, except when a paused step runs again after its timeout (see _next_attempt)
        set status = 'RUNNING', attempt = case when s.status = 'PAUSED' then s.attempt else s.attempt + 1 end,
            retry_at = null, paused_until = null,
            started_at = excluded.started_at, updated_at = excluded.updated_at
    returning * into v_step;
    return query select 'EXECUTE'::text, null::jsonb, v_step.attempt, null::timestamptz;
end
$$;
comment on function pgqrs.acquire_step(bigint, text, uuid, timestamptz) is
'Asks whether a step should run. Returns (status, value, attempt, retry_at): SKIPPED with the stored value when
it succeeded before; WAIT with retry_at when its retry is not due at p_current_time (default pgqrs.now(); it
affects retry timing only, never the lease); otherwise EXECUTE: the step is RUNNING and the attempt counted.
Raises QR004 (lease not held), QR002/QR003 (unknown or finished run), QR007 (attempts exhausted), 22023.';

-- p_duration is how long the body ran, measured by the worker: ctx.step does not call acquire_step for a new
-- step (one round trip less), so the start time is derived here from the engine clock and that duration.
create or replace function pgqrs.complete_step(
    p_run bigint, p_step_id text, p_lease_token uuid, p_value jsonb default 'null', p_duration interval default null
)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_value jsonb := coalesce(p_value, 'null'::jsonb);
    v_step pgqrs.steps;
    v_now timestamptz := pgqrs.now();
    v_token uuid;
    v_visible_at timestamptz;
begin
    -- The hot path of every worker: the checks are inlined here and the helpers (which raise the precise
    -- errors) run only when a check fails; each helper call costs a PL/pgSQL function start per transaction.
    if p_step_id is null or p_step_id = '' or length(p_step_id) > 255 then
        perform pgqrs._check_step_id(p_step_id);
    end if;
    if p_duration is not null then
        perform pgqrs._check_interval('duration', p_duration, interval '0', interval '365 days');
    end if;
    select m.lease_token, m.visible_at into v_token, v_visible_at
    from pgqrs.messages as m where m.message_id = p_run for update;
    if not found or p_lease_token is null or v_token is distinct from p_lease_token or v_visible_at <= v_now then
        perform pgqrs._lease(p_run, p_lease_token);
    end if;
    insert into pgqrs.steps as s (
        run_id, step_id, status, value, value_bytes, attempt, started_at, completed_at, updated_at
    )
    values (
        p_run, p_step_id, 'SUCCESS', v_value, pg_column_size(v_value), 1, v_now - coalesce(p_duration, interval '0'),
        v_now, v_now
    )
    on conflict (run_id, step_id) do update
        set status = 'SUCCESS', value = excluded.value, value_bytes = excluded.value_bytes, error = null,
            retry_at = null, paused_until = null,
            attempt = pgqrs._next_attempt(s), completed_at = excluded.completed_at,
            started_at = case when s.status = 'RUNNING' then s.started_at else excluded.started_at end,
            updated_at = excluded.updated_at
        where s.status <> 'SUCCESS'
    returning * into v_step;
    if v_step.run_id is not null then
        return true;
    end if;
    select * into strict v_step from pgqrs.steps as s where s.run_id = p_run and s.step_id = p_step_id;
    if v_step.value = v_value then
        return false;
    end if;
    raise exception using
        errcode = 'QR005',
        message = format('step %s of run %s already succeeded with another value', p_step_id, p_run),
        hint = 'A recorded success is final; read it with pgqrs.acquire_step.';
end
$$;
comment on function pgqrs.complete_step(bigint, text, uuid, jsonb, interval) is
'Records a step SUCCESS with its JSON value (p_duration: how long the body ran, when acquire_step was not
called). Returns true when recorded, false when the same value was already recorded. A success is never
overwritten: another value raises QR005. Raises QR004 (lease), QR002/QR003, 22023.';

create or replace function pgqrs.fail_step(
    p_run bigint,
    p_step_id text,
    p_lease_token uuid,
    p_error jsonb,
    p_transient boolean default true,
    p_retry_after interval default null,
    p_retry_policy jsonb default null,
    p_duration interval default null
)
returns table (run_status text, attempt integer, retry_at timestamptz)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
#variable_conflict use_column
declare
    v_message pgqrs.messages;
    v_policy jsonb;
    v_step pgqrs.steps;
    v_now timestamptz := pgqrs.now();
    v_retry_at timestamptz;
    v_error jsonb := coalesce(p_error, '{}'::jsonb);
begin
    perform pgqrs._check_step_id(p_step_id);
    perform pgqrs._check_interval('retry_after', p_retry_after, interval '0', interval '30 days');
    perform pgqrs._check_interval('duration', p_duration, interval '0', interval '365 days');
    v_message := pgqrs._lease(p_run, p_lease_token);
    -- _retry_policy(NULL) returns the defaults, not NULL: the workflow's policy applies unless the call gives one.
    select case when p_retry_policy is null then w.retry_policy else pgqrs._retry_policy(p_retry_policy) end
    into v_policy
    from pgqrs.runs as r join pgqrs.workflows as w using (workflow_id)
    where r.run_id = p_run
    for no key update of r;

    insert into pgqrs.steps as s (run_id, step_id, status, error, attempt, max_attempts, started_at, updated_at)
    values (
        p_run, p_step_id, 'ERROR', v_error, 1,
        case when p_retry_policy is not null then (v_policy ->> 'max_attempts')::numeric::integer end,
        v_now - coalesce(p_duration, interval '0'), v_now
    )
    on conflict (run_id, step_id) do update
        set status = 'ERROR', error = excluded.error, attempt = pgqrs._next_attempt(s), paused_until = null,
            max_attempts = excluded.max_attempts,
            started_at = case when s.status = 'RUNNING' then s.started_at else excluded.started_at end,
            updated_at = excluded.updated_at
        where s.status <> 'SUCCESS'
    returning * into v_step;
    if v_step.run_id is null then
        raise exception using
            errcode = 'QR005',
            message = format('step %s of run %s already succeeded; it cannot fail', p_step_id, p_run);
    end if;

    if coalesce(p_transient, true) and v_step.attempt < (v_policy ->> 'max_attempts')::numeric::integer then
        v_retry_at := v_now + coalesce(p_retry_after, pgqrs._retry_delay(v_policy, v_step.attempt));
        update pgqrs.steps as s set retry_at = v_retry_at where s.run_id = p_run and s.step_id = p_step_id;
        update pgqrs.runs as r set status = 'QUEUED', error = v_error, updated_at = v_now where r.run_id = p_run;
        perform pgqrs._release_lease(p_run, v_message.queue_id, v_retry_at);
        return query select 'QUEUED'::text, v_step.attempt, v_retry_at;
        return;
    end if;

    update pgqrs.runs as r
    set status = 'ERROR', error = v_error, finished_at = v_now, updated_at = v_now
    where r.run_id = p_run;
    perform pgqrs._archive_message(p_run, 'DEAD_LETTER');
    perform pgqrs._notify_run_finished(p_run);
    return query select 'ERROR'::text, v_step.attempt, null::timestamptz;
end
$$;
comment on function pgqrs.fail_step(bigint, text, uuid, jsonb, boolean, interval, jsonb, interval) is
'Records a failed step attempt. Transient with attempts left (policy: p_retry_policy, else the workflow''s): step
ERROR, run QUEUED, message visible at retry_at = now + p_retry_after (0-30 days) or the backoff, lease released.
Otherwise: run ERROR and its message archived as DEAD_LETTER, in the same transaction. Returns (run_status,
attempt, retry_at). Raises QR004 (lease), QR005 (step already succeeded), QR002/QR003, 22023.';

create or replace function pgqrs.pause_step(
    p_run bigint, p_step_id text, p_lease_token uuid, p_timeout interval default null
)
returns table (status text, value jsonb)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
#variable_conflict use_column
declare
    v_now timestamptz := pgqrs.now();
    v_until timestamptz;
    v_step pgqrs.steps;
    v_message pgqrs.messages;
begin
    perform pgqrs._check_step_id(p_step_id);
    if p_timeout <= interval '0' or p_timeout > interval '365 days' then
        raise exception using
            errcode = '22023', message = format('pause timeout must be more than 0 and at most 365 days, got %s', p_timeout);
    end if;
    v_message := pgqrs._lease(p_run, p_lease_token);
    perform pgqrs._lock_run(p_run);
    v_until := v_now + p_timeout;

    insert into pgqrs.steps as s (run_id, step_id, status, attempt, paused_until, started_at, updated_at)
    values (p_run, p_step_id, 'PAUSED', 1, v_until, v_now, v_now)
    on conflict (run_id, step_id) do update
        set status = 'PAUSED', attempt = pgqrs._next_attempt(s), paused_until = excluded.paused_until,
            retry_at = null, updated_at = excluded.updated_at
        where s.status <> 'SUCCESS'
    returning * into v_step;
    if v_step.run_id is null then
        -- The external event arrived first (update_step recorded the result): nothing to wait for.
        return query select s.status, s.value from pgqrs.steps as s where s.run_id = p_run and s.step_id = p_step_id;
        return;
    end if;

    update pgqrs.runs as r set status = 'PAUSED', updated_at = v_now where r.run_id = p_run;
    perform pgqrs._release_lease(p_run, v_message.queue_id, v_until);  -- NULL: until resume_run
    return query select 'PAUSED'::text, null::jsonb;
end
$$;
comment on function pgqrs.pause_step(bigint, text, uuid, interval) is
'Pauses the run at this step until pgqrs.resume_run or p_timeout (NULL = no timeout): step and run PAUSED, lease
released. After a timeout the run is delivered again and the step runs again. Returns (status, value): PAUSED, or
SUCCESS with the value when update_step already recorded the step. Raises QR004, QR002/QR003, 22023.';

-- For events from outside a worker (the guide's webhook). Takes the run lock, so it serialises with
-- resume_run and retry_run; it needs no lease.
create or replace function pgqrs.update_step(
    p_run bigint, p_step_id text, p_status text, p_value jsonb default 'null'
)
returns pgqrs.steps
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_run pgqrs.runs;
    v_step pgqrs.steps;
    v_now timestamptz := pgqrs.now();
    v_value jsonb := coalesce(p_value, 'null'::jsonb);
begin
    perform pgqrs._check_step_id(p_step_id);
    if p_status is null or p_status not in ('RUNNING', 'SUCCESS', 'ERROR', 'PAUSED') then
        raise exception using
            errcode = '22023',
            message = format('unknown step status: %s', coalesce(p_status, 'NULL')),
            hint = 'Use RUNNING, SUCCESS, ERROR or PAUSED.';
    end if;
    v_run := pgqrs._lock_run(p_run);
    if v_run.status in ('SUCCESS', 'CANCELLED') then
        raise exception using errcode = 'QR003', message = format('run %s is %s', p_run, v_run.status);
    end if;
    insert into pgqrs.steps as s (run_id, step_id, status, value, value_bytes, error, attempt, completed_at, updated_at)
    values (
        p_run, p_step_id, p_status,
        case when p_status = 'SUCCESS' then v_value end,
        case when p_status = 'SUCCESS' then pg_column_size(v_value) end,
        case when p_status = 'ERROR' then v_value end,
        0,
        case when p_status = 'SUCCESS' then v_now end,
        v_now
    )
    on conflict (run_id, step_id) do update
        set status = excluded.status, value = excluded.value, value_bytes = excluded.value_bytes,
            error = excluded.error, completed_at = excluded.completed_at, retry_at = null, paused_until = null,
            updated_at = excluded.updated_at
        where s.status <> 'SUCCESS'
    returning * into v_step;
    if v_step.run_id is not null then
        return v_step;
    end if;
    select * into strict v_step from pgqrs.steps as s where s.run_id = p_run and s.step_id = p_step_id;
    if p_status = 'SUCCESS' and v_step.value = v_value then
        return v_step;
    end if;
    raise exception using
        errcode = 'QR005',
        message = format('step %s of run %s already succeeded; its result is final', p_step_id, p_run);
end
$$;
comment on function pgqrs.update_step(bigint, text, text, jsonb) is
'Records a step result from outside a worker (a webhook, an operator): p_status RUNNING, SUCCESS, ERROR or PAUSED;
p_value is the result (SUCCESS) or the error (ERROR). Returns the step row. A SUCCESS is final: the same value
again is a no-op, anything else raises QR005. Raises QR002, QR003 (run SUCCESS/CANCELLED), 22023 (bad status).';

create or replace function pgqrs.resume_run(p_run bigint)
returns text
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_message pgqrs.messages;
    v_run pgqrs.runs;
begin
    select * into v_message from pgqrs.messages as m where m.message_id = p_run for update;
    v_run := pgqrs._lock_run(p_run);
    if v_run.status <> 'PAUSED' then
        raise exception using
            errcode = 'QR003',
            message = format('run %s is %s, not PAUSED', p_run, v_run.status),
            hint = 'Only a paused run can be resumed.';
    end if;
    update pgqrs.runs as r set status = 'QUEUED', updated_at = pgqrs.now() where r.run_id = p_run;
    update pgqrs.messages as m set visible_at = pgqrs.now() where m.message_id = p_run;
    perform pgqrs._notify_queue(v_message.queue_id, pgqrs.now());
    return 'QUEUED';
end
$$;
comment on function pgqrs.resume_run(bigint) is
'Resumes a PAUSED run: QUEUED and visible now, with a NOTIFY. Returns the new status. Raises QR002 (unknown run),
QR003 (not PAUSED: racing a pause timeout, exactly one of resume and re-delivery wins).';

create or replace function pgqrs._finish_run(
    p_run bigint, p_lease_token uuid, p_status text, p_output jsonb, p_error jsonb
)
returns text
language plpgsql
volatile
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_now timestamptz := pgqrs.now();
    v_token uuid;
    v_visible_at timestamptz;
begin
    -- the lease check of _lease, inlined as in complete_step; _lease raises the precise error
    select m.lease_token, m.visible_at into v_token, v_visible_at
    from pgqrs.messages as m where m.message_id = p_run for update;
    if not found or p_lease_token is null or v_token is distinct from p_lease_token or v_visible_at <= v_now then
        perform pgqrs._lease(p_run, p_lease_token);
    end if;
    update pgqrs.runs as r
    set status = p_status, output = p_output, error = p_error, finished_at = v_now, updated_at = v_now
    where r.run_id = p_run and r.status = 'RUNNING';
    if not found then
        raise exception using errcode = 'QR003', message = format('run %s is not RUNNING', p_run);
    end if;
    perform pgqrs._archive_message(p_run, case when p_status = 'SUCCESS' then 'SUCCESS' else 'DEAD_LETTER' end);
    perform pgqrs._notify_run_finished(p_run);
    return p_status;
end
$$;

create or replace function pgqrs.complete_run(p_run bigint, p_lease_token uuid, p_output jsonb default 'null')
returns text
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
begin
    return pgqrs._finish_run(p_run, p_lease_token, 'SUCCESS', coalesce(p_output, 'null'::jsonb), null);
end
$$;
comment on function pgqrs.complete_run(bigint, uuid, jsonb) is
'Finishes a RUNNING run as SUCCESS with its JSON output and archives its message, in one transaction; NOTIFY
pgqrs_runs with the run''s token (runs_channel_key). Returns the status. Raises QR004 (lease), QR003 (already finished), QR002.';

create or replace function pgqrs.fail_run(p_run bigint, p_lease_token uuid, p_error jsonb default '{}')
returns text
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
begin
    return pgqrs._finish_run(p_run, p_lease_token, 'ERROR', null, coalesce(p_error, '{}'::jsonb));
end
$$;
comment on function pgqrs.fail_run(bigint, uuid, jsonb) is
'Finishes a RUNNING run as ERROR and archives its message as DEAD_LETTER, in one transaction; NOTIFY
pgqrs_runs with the run''s token (runs_channel_key). Returns the status. Raises QR004 (lease), QR003 (already finished), QR002.';

-- Ops: brings a failed run back. Steps that succeeded stay; the failed and unfinished ones are forgotten, so
-- their attempts start again from zero.
create or replace function pgqrs.retry_run(p_run bigint)
returns text
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_run pgqrs.runs;
    v_now timestamptz := pgqrs.now();
    v_queue_id bigint;
begin
    v_run := pgqrs._lock_run(p_run);
    if v_run.status <> 'ERROR' then
        raise exception using
            errcode = 'QR003',
            message = format('run %s is %s, not ERROR', p_run, v_run.status),
            hint = 'Only a failed run can be retried.';
    end if;
    delete from pgqrs.steps as s where s.run_id = p_run and s.status <> 'SUCCESS';
    update pgqrs.runs as r set status = 'QUEUED', error = null, finished_at = null, updated_at = v_now
    where r.run_id = p_run;
    with revived as (
        delete from pgqrs.messages_archive as a where a.message_id = p_run returning a.*
    )
    insert into pgqrs.messages (message_id, queue_id, visible_at, enqueued_at, read_count)
    select rv.message_id, rv.queue_id, v_now, rv.enqueued_at, rv.read_count from revived as rv
    returning queue_id into v_queue_id;
    perform pgqrs._notify_queue(v_queue_id, v_now);
    return 'QUEUED';
end
$$;
comment on function pgqrs.retry_run(bigint) is
'Ops: puts an ERROR run back in its queue (QUEUED, visible now, NOTIFY), keeping its successful steps and
forgetting failed ones. Returns the new status. Raises QR002 (unknown run), QR003 (not ERROR).';

create or replace function pgqrs.run_status(p_run bigint)
returns table (
    run_id bigint, workflow text, status text, input jsonb, output jsonb, error jsonb, attempt integer,
    created_at timestamptz, started_at timestamptz, finished_at timestamptz, updated_at timestamptz,
    current_step text, visible_at timestamptz, current_step_status text, current_step_since timestamptz
)
language plpgsql
stable
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
#variable_conflict use_column
begin
    return query
    select r.run_id, w.name, r.status, r.input, r.output, r.error, r.attempt,
           r.created_at, r.started_at, r.finished_at, r.updated_at,
           coalesce(fl.step_id, cur.step_id), m.visible_at, coalesce(fl.status, cur.status),
           coalesce(fl.since, cur.since)
    from pgqrs.runs as r
    join pgqrs.workflows as w using (workflow_id)
    left join pgqrs.messages as m on m.message_id = r.run_id
    left join lateral (
        select s.step_id, s.status, case when s.status = 'RUNNING' then s.started_at else s.updated_at end as since
        from pgqrs.steps as s where s.run_id = r.run_id order by s.step_order desc limit 1
    ) as cur on true
    left join lateral (  -- a step body running now, as the worker's heartbeat reports it
        select f.key as step_id, 'RUNNING'::text as status, f.value::timestamptz as since
        from jsonb_each_text(m.steps_in_flight) as f
        where not exists (  -- recorded since (the report is older than the record)
            select from pgqrs.steps as s
            where s.run_id = r.run_id and s.step_id = f.key and s.updated_at >= f.value::timestamptz
        )
        order by f.value::timestamptz desc limit 1
    ) as fl on r.status = 'RUNNING'
    where r.run_id = p_run;
    if not found then
        raise exception using errcode = 'QR002', message = format('unknown run: %s', coalesce(p_run::text, 'NULL'));
    end if;
end
$$;
comment on function pgqrs.run_status(bigint) is
'A run (or its message: the ids are equal) with status, input, output, error, attempt (deliveries), timestamps,
current_step (the step running now, once the worker''s heartbeat has reported it; else the step recorded last),
visible_at (next delivery, or lease expiry while RUNNING; NULL once finished), current_step_status and
current_step_since (when the step started RUNNING, or its last change). Raises QR002 for an unknown id.';

create or replace function pgqrs.run_steps(p_run bigint)
returns setof pgqrs.steps
language plpgsql
stable
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
begin
    perform pgqrs.run_status(p_run);
    return query select * from pgqrs.steps as s where s.run_id = p_run order by s.step_order;
end
$$;
comment on function pgqrs.run_steps(bigint) is
'The step journal of a run in the order steps were first recorded. Raises QR002 for an unknown run.';

-- A worker hands a run back at once instead of letting the lease run out: when it shuts down (p_error NULL:
-- no failure, the run is visible now), or when one of its engine calls failed on a live connection (a statement
-- timeout, a value the server refuses...). The second is a failed delivery: counted like a lost lease (see
-- _settle_lost_lease; a delivery that recorded a step starts the count again), delayed by the workflow's
-- backoff, and once the count reaches max_attempts the run ends ERROR (kind engine_call_failed, the cause
-- kept), so an engine call that fails the same way every time cannot loop.
create or replace function pgqrs.release_run(p_run bigint, p_lease_token uuid, p_error jsonb default null)
returns text
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_message pgqrs.messages;
    v_now timestamptz := pgqrs.now();
    v_policy jsonb;
    v_count integer;
    v_visible_at timestamptz := pgqrs.now();
    v_error jsonb;
begin
    if jsonb_typeof(p_error) <> 'object' then
        raise exception using errcode = '22023', message = 'the error of a release must be a JSON object';
    end if;
    v_message := pgqrs._lease(p_run, p_lease_token);
    if p_error is not null then
        select w.retry_policy into strict v_policy
        from pgqrs.runs as r join pgqrs.workflows as w using (workflow_id) where r.run_id = p_run
        for no key update of r;
        v_count := pgqrs._count_failed_delivery(p_run, v_message.leased_at, v_message.failed_deliveries);
        v_error := jsonb_build_object(
            'kind', 'engine_call_failed', 'type', 'EngineCallFailed', 'deliveries', v_count, 'cause', p_error,
            'message', format('an engine call failed in %s deliveries in a row: %s', v_count,
                              coalesce(p_error ->> 'message', p_error::text)));
        if v_count >= (v_policy ->> 'max_attempts')::integer then
            perform pgqrs._end_run_failed(p_run, v_error);
            return 'ERROR';
        end if;
        v_visible_at := v_now + pgqrs._retry_delay(v_policy, v_count);
    end if;
    update pgqrs.runs as r set status = 'QUEUED', error = coalesce(v_error, r.error), updated_at = v_now
    where r.run_id = p_run;
    if v_count is not null then
        update pgqrs.messages as m set failed_deliveries = v_count where m.message_id = p_run;
    end if;
    perform pgqrs._release_lease(p_run, v_message.queue_id, v_visible_at);
    return 'QUEUED';
end
$$;
comment on function pgqrs.release_run(bigint, uuid, jsonb) is
'Gives a leased run back to its queue without recording a step failure. p_error NULL (a worker shutting down):
QUEUED, visible now, NOTIFY. p_error given (the cause of a failed engine call): a failed delivery, visible after
the workflow''s backoff; after max_attempts such deliveries in a row without a step recorded, the run ends ERROR
(kind engine_call_failed) as a dead letter. Returns the new status. Raises QR004 (lease), QR009 (cancelled),
QR002/QR003, 22023.';

-- Ops and clients: stop a run for good, whatever it is doing. A worker holding it finds out at its next write
-- (QR009) or heartbeat (the lease is reported lost) and stops the handler.
create or replace function pgqrs.cancel_run(p_run bigint, p_reason text default null)
returns text
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_run pgqrs.runs;
    v_now timestamptz := pgqrs.now();
begin
    if length(p_reason) > 1000 then
        raise exception using errcode = '22023', message = 'the reason must be at most 1000 characters';
    end if;
    perform from pgqrs.messages as m where m.message_id = p_run for update;  -- lock order: message, run
    v_run := pgqrs._lock_run(p_run);
    if v_run.status not in ('QUEUED', 'RUNNING', 'PAUSED', 'WAITING') then
        raise exception using
            errcode = 'QR003',
            message = format('run %s is %s and cannot be cancelled', p_run, v_run.status),
            hint = 'Only a run that has not finished can be cancelled.';
    end if;
    update pgqrs.runs as r
    set status = 'CANCELLED', finished_at = v_now, updated_at = v_now,
        error = jsonb_build_object('kind', 'cancelled', 'type', 'RunCancelled', 'reason', p_reason,
                                   'message', 'cancelled' || coalesce(': ' || p_reason, ''))
    where r.run_id = p_run;
    perform pgqrs._archive_message(p_run, 'CANCELLED');
    perform pgqrs._notify_run_finished(p_run);
    return 'CANCELLED';
end
$$;
comment on function pgqrs.cancel_run(bigint, text) is
'Cancels a run that has not finished (QUEUED, RUNNING or PAUSED): CANCELLED with error {kind: cancelled,
reason}, its message archived as CANCELLED, result waiters notified. A worker''s later write on it raises QR009.
Returns the new status. Raises QR002 (unknown run), QR003 (already finished), 22023 (reason over 1000
characters).';
