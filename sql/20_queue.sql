-- pgqrs: definitions, triggering, workers and the queue (dequeue, heartbeat, archive).

-- A retry policy is a JSON object; missing keys take the defaults below. Returns the complete policy.
create or replace function pgqrs._retry_policy(p_policy jsonb)
returns jsonb
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_policy jsonb := '{"max_attempts": 3, "backoff": "exponential", "base_seconds": 1,
                        "max_seconds": 300, "jitter": 0.1}'::jsonb;
    v_unknown text;
begin
    if p_policy is null then
        return v_policy;
    end if;
    if jsonb_typeof(p_policy) <> 'object' then
        raise exception using errcode = '22023', message = 'retry policy must be a JSON object';
    end if;
    select string_agg(k, ', ') into v_unknown
    from jsonb_object_keys(p_policy) as k
    where k not in ('max_attempts', 'backoff', 'base_seconds', 'max_seconds', 'jitter');
    if v_unknown is not null then
        raise exception using
            errcode = '22023',
            message = format('unknown retry policy keys: %s', v_unknown),
            hint = 'Known keys: max_attempts, backoff, base_seconds, max_seconds, jitter.';
    end if;
    v_policy := v_policy || p_policy;
    if jsonb_typeof(v_policy -> 'max_attempts') <> 'number'
        or (v_policy ->> 'max_attempts')::numeric not between 1 and 1000
        or (v_policy ->> 'max_attempts')::numeric <> trunc((v_policy ->> 'max_attempts')::numeric) then
        raise exception using errcode = '22023', message = 'retry policy max_attempts must be an integer 1-1000';
    end if;
    -- stored as a JSON integer: 3.0 passes the check above, and '3.0'::integer would fail in every reader
    v_policy := jsonb_set(v_policy, '{max_attempts}', to_jsonb((v_policy ->> 'max_attempts')::numeric::integer));
    if v_policy ->> 'backoff' is null or v_policy ->> 'backoff' not in ('fixed', 'exponential') then
        raise exception using errcode = '22023', message = 'retry policy backoff must be "fixed" or "exponential"';
    end if;
    if jsonb_typeof(v_policy -> 'base_seconds') <> 'number'
        or (v_policy ->> 'base_seconds')::numeric not between 0 and 86400 then
        raise exception using errcode = '22023', message = 'retry policy base_seconds must be a number 0-86400';
    end if;
    if jsonb_typeof(v_policy -> 'max_seconds') <> 'number'
        or (v_policy ->> 'max_seconds')::numeric not between (v_policy ->> 'base_seconds')::numeric and 2592000 then
        raise exception using
            errcode = '22023', message = 'retry policy max_seconds must be a number between base_seconds and 2592000';
    end if;
    if jsonb_typeof(v_policy -> 'jitter') <> 'number'
        or (v_policy ->> 'jitter')::numeric not between 0 and 1 then
        raise exception using errcode = '22023', message = 'retry policy jitter must be a number 0-1';
    end if;
    return v_policy;
end
$$;

-- Delay before attempt p_attempt + 1: base, or base * 2^(attempt-1), capped, minus up to `jitter` of itself.
create or replace function pgqrs._retry_delay(p_policy jsonb, p_attempt integer)
returns interval
language sql
volatile
set search_path = pg_catalog, pg_temp
as $$
    select make_interval(secs => d * (1 - (p_policy ->> 'jitter')::float8 * random()))
    from (
        select least(
            (p_policy ->> 'max_seconds')::float8,
            (p_policy ->> 'base_seconds')::float8
            * case when p_policy ->> 'backoff' = 'exponential' then power(2, least(p_attempt - 1, 60)) else 1 end
        ) as d
    ) as delay
$$;

-- Idempotent: the same name always yields the same row. A policy given again replaces the stored one.
create or replace function pgqrs.create_workflow(p_name text, p_retry_policy jsonb default null)
returns pgqrs.workflows
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_workflow pgqrs.workflows;
    v_policy jsonb := pgqrs._retry_policy(p_retry_policy);
begin
    perform pgqrs._check_name('workflow name', p_name);
    insert into pgqrs.workflows as w (name, retry_policy)
    values (p_name, v_policy)
    on conflict (name) do update
        set retry_policy = excluded.retry_policy
        where p_retry_policy is not null and w.retry_policy is distinct from excluded.retry_policy
    returning * into v_workflow;
    if v_workflow.workflow_id is null then
        select * into strict v_workflow from pgqrs.workflows as w where w.name = p_name;
    end if;
    insert into pgqrs.queues (name, workflow_id) values (p_name, v_workflow.workflow_id)
    on conflict do nothing;
    return v_workflow;
end
$$;
comment on function pgqrs.create_workflow(text, jsonb) is
'Creates the workflow definition and its queue (same name); idempotent. p_retry_policy: {max_attempts, backoff
fixed|exponential, base_seconds, max_seconds, jitter}; when given it replaces the stored policy. Returns the row.
Raises 22023 for a bad name or policy.';

-- Resolves a queue name, raising QR001 for an unknown one (22023 for a malformed one).
create or replace function pgqrs._queue_id(p_queue text)
returns bigint
language plpgsql
stable
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_queue_id bigint;
begin
    select q.queue_id into v_queue_id from pgqrs.queues as q where q.name = p_queue;
    if v_queue_id is null then
        perform pgqrs._check_name('workflow name', p_queue);
        raise exception using
            errcode = 'QR001',
            message = format('unknown workflow: %s', p_queue),
            hint = 'Create it first with pgqrs.create_workflow(name).';
    end if;
    return v_queue_id;
end
$$;

create or replace function pgqrs.queue_channel(p_queue text)
returns text
language sql
stable
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
    select 'pgqrs_q' || pgqrs._queue_id(p_queue)
$$;
comment on function pgqrs.queue_channel(text) is
'The NOTIFY channel of a queue. The payload is empty when work is visible now, or the epoch seconds at which
it becomes visible (a delayed start or a retry). Raises QR001 for an unknown queue.';

-- Wakes the queue's listeners: now, or at p_visible_at (sent as epoch seconds so a worker can sleep until then).
create or replace function pgqrs._notify_queue(p_queue_id bigint, p_visible_at timestamptz)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pgqrs, pg_temp
as $$
begin
    perform pg_notify(
        'pgqrs_q' || p_queue_id,
        case when p_visible_at <= pgqrs.now() then '' else extract(epoch from p_visible_at)::text end
    );
end
$$;

-- Runs in the caller's transaction: a rollback leaves neither run nor message nor notification. Concurrent
-- triggers with one idempotency key serialise on the unique index; the loser reads the winner's run.
create or replace function pgqrs.trigger(
    p_workflow text,
    p_input jsonb default '{}',
    p_idempotency_key text default null,
    p_delay interval default null,
    p_run_at timestamptz default null
)
returns table (run_id bigint, message_id bigint, created boolean)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
#variable_conflict use_column
declare
    v_now timestamptz := pgqrs.now();
    v_queue_id bigint := pgqrs._queue_id(p_workflow);
    v_visible_at timestamptz;
    v_run_id bigint;
    v_existing jsonb;
begin
    perform pgqrs._check_input(p_input);
    perform pgqrs._check_interval('delay', p_delay, interval '0', interval '365 days');
    if p_delay is not null and p_run_at is not null then
        raise exception using errcode = '22023', message = 'give either a delay or a run-at time, not both';
    end if;
    if p_run_at > v_now + interval '365 days' then
        raise exception using errcode = '22023', message = 'run-at time is more than 365 days ahead';
    end if;
    if p_idempotency_key = '' or length(p_idempotency_key) > 255 then
        raise exception using errcode = '22023', message = 'idempotency key must be 1-255 characters';
    end if;
    v_visible_at := greatest(v_now, coalesce(p_run_at, v_now + coalesce(p_delay, interval '0')));

    insert into pgqrs.runs (workflow_id, status, input, idempotency_key, created_at, updated_at)
    select q.workflow_id, 'QUEUED', p_input, p_idempotency_key, v_now, v_now
    from pgqrs.queues as q where q.queue_id = v_queue_id
    on conflict (workflow_id, idempotency_key) do nothing
    returning runs.run_id into v_run_id;

    if v_run_id is null then
        select r.run_id, r.input into v_run_id, v_existing
        from pgqrs.runs as r join pgqrs.queues as q using (workflow_id)
        where q.queue_id = v_queue_id and r.idempotency_key = p_idempotency_key;
        if v_existing is distinct from p_input then
            raise exception using
                errcode = 'QR006',
                message = format('idempotency key %s already used by run %s with a different input',
                                 p_idempotency_key, v_run_id),
                hint = 'Use a new key for new input.';
        end if;
        return query select v_run_id, v_run_id, false;
        return;
    end if;

    insert into pgqrs.messages (message_id, queue_id, visible_at, enqueued_at)
    values (v_run_id, v_queue_id, v_visible_at, v_now);
    perform pgqrs._notify_queue(v_queue_id, v_visible_at);
    return query select v_run_id, v_run_id, true;
end
$$;
comment on function pgqrs.trigger(text, jsonb, text, interval, timestamptz) is
'Starts a run: run QUEUED plus its message (message_id = run_id), visible after p_delay or at p_run_at, and one
NOTIFY. Returns (run_id, message_id, created). The same idempotency key with the same input returns the existing
run with created = false. Raises QR001 (unknown workflow), QR006 (key reused with other input), 22023 (bad input:
not an object, over pgqrs.max_input_bytes, negative delay...).';

-- Many runs in one statement and one NOTIFY: for bulk producers.
create or replace function pgqrs.trigger_batch(
    p_workflow text,
    p_inputs jsonb,
    p_delay interval default null
)
returns table (run_id bigint, message_id bigint, created boolean)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
#variable_conflict use_column
declare
    v_now timestamptz := pgqrs.now();
    v_queue_id bigint := pgqrs._queue_id(p_workflow);
    v_visible_at timestamptz;
begin
    if p_inputs is null or jsonb_typeof(p_inputs) <> 'array' or jsonb_array_length(p_inputs) = 0
        or jsonb_array_length(p_inputs) > 10000 then
        raise exception using errcode = '22023', message = 'p_inputs must be a JSON array of 1-10000 objects';
    end if;
    perform pgqrs._check_input(i) from jsonb_array_elements(p_inputs) as i;
    perform pgqrs._check_interval('delay', p_delay, interval '0', interval '365 days');
    v_visible_at := v_now + coalesce(p_delay, interval '0');
    return query
    with new_runs as (
        insert into pgqrs.runs (workflow_id, status, input, created_at, updated_at)
        select q.workflow_id, 'QUEUED', i.value, v_now, v_now
        from pgqrs.queues as q, jsonb_array_elements(p_inputs) with ordinality as i (value, n)
        where q.queue_id = v_queue_id
        order by i.n
        returning runs.run_id
    ), new_messages as (
        insert into pgqrs.messages (message_id, queue_id, visible_at, enqueued_at)
        select nr.run_id, v_queue_id, v_visible_at, v_now from new_runs as nr
        returning messages.message_id
    )
    select nm.message_id, nm.message_id, true from new_messages as nm order by nm.message_id;
    perform pgqrs._notify_queue(v_queue_id, v_visible_at);
end
$$;
comment on function pgqrs.trigger_batch(text, jsonb, interval) is
'Starts one run per element of the JSON array p_inputs (1-10000 objects) with one NOTIFY. Returns a row per run.
Raises QR001 and 22023 like trigger.';

create or replace function pgqrs.register_worker(
    p_name text, p_hostname text default '', p_port integer default null, p_queue text default null
)
returns bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_queue_id bigint;
    v_worker_id bigint;
begin
    perform pgqrs._check_name('worker name', p_name);
    if p_queue is null then
        raise exception using errcode = '22023', message = 'a worker needs a queue';
    end if;
    v_queue_id := pgqrs._queue_id(p_queue);
    if length(coalesce(p_hostname, '')) > 255 or p_port not between 0 and 65535 then
        raise exception using errcode = '22023', message = 'hostname must be at most 255 characters, port 0-65535';
    end if;
    insert into pgqrs.workers as w (name, hostname, port, queue_id, status, started_at, heartbeat_at)
    values (p_name, coalesce(p_hostname, ''), p_port, v_queue_id, 'ACTIVE', pgqrs.now(), pgqrs.now())
    on conflict (name) do update
        set hostname = excluded.hostname, port = excluded.port, queue_id = excluded.queue_id,
            status = 'ACTIVE', started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at
    returning w.worker_id into v_worker_id;
    return v_worker_id;
end
$$;
comment on function pgqrs.register_worker(text, text, integer, text) is
'Registers a worker for a queue and returns its id; an upsert by name, so a restarted worker takes its row
back. The port is informational. Raises QR001 (unknown queue), 22023 (bad name, hostname or port).';

create or replace function pgqrs.stop_worker(p_worker bigint)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
begin
    update pgqrs.workers set status = 'STOPPED', heartbeat_at = pgqrs.now() where worker_id = p_worker;
    if not found then
        raise exception using errcode = 'QR008', message = format('unknown worker: %s', p_worker);
    end if;
end
$$;
comment on function pgqrs.stop_worker(bigint) is
'Marks a worker STOPPED (graceful shutdown). Leases it holds stay until released or expired. Raises QR008.';

create or replace function pgqrs._check_worker(p_worker bigint)
returns void
language plpgsql
stable
set search_path = pg_catalog, pgqrs, pg_temp
as $$
begin
    if p_worker is null or not exists (select from pgqrs.workers as w where w.worker_id = p_worker) then
        raise exception using
            errcode = 'QR008',
            message = format('unknown worker: %s', coalesce(p_worker::text, 'NULL')),
            hint = 'Register it first with pgqrs.register_worker.';
    end if;
end
$$;

-- The step journal handed to a worker with a delivery: step id -> {status, value, attempt, retry_at}. Values past
-- p_bytes (summed in journal order) are left out, marked "value_omitted": true, so no run's size can make
-- dequeue fail (jsonb holds at most 256 MB); the running sum (a window: a sort per run) is only computed for the
-- rare journal a plain sum finds past the bound (on every dequeue it cost 17 %).
-- Volatile on purpose: called by dequeue's lease-taking statement, its query takes a snapshot of its own, after
-- the message row is locked, so it holds every step recorded under the previous lease. Under the statement's
-- snapshot it would miss a write of the old holder that committed after that snapshot but before dequeue locked
-- the row (the write only locks that row, and a lock released by then is no conflict), and the new holder would
-- run a recorded step again (tests/test_dequeue_journal.py).
create or replace function pgqrs._journal(p_run bigint, p_bytes bigint)
returns jsonb
language plpgsql
volatile
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_total bigint;
begin
    select coalesce(sum(coalesce(s.value_bytes, octet_length(s.value::text))), 0) into v_total
    from pgqrs.steps as s where s.run_id = p_run;
    if v_total <= p_bytes then
        return coalesce((
            select jsonb_object_agg(
                s.step_id,
                jsonb_build_object('status', s.status, 'value', s.value, 'attempt', s.attempt, 'retry_at', s.retry_at)
            )
            from pgqrs.steps as s where s.run_id = p_run
        ), '{}'::jsonb);
    end if;
    return (
        select jsonb_object_agg(
            j.step_id,
            jsonb_build_object('status', j.status, 'value', case when j.fits then j.value end,
                               'attempt', j.attempt, 'retry_at', j.retry_at)
            || case when j.fits then '{}'::jsonb else '{"value_omitted": true}'::jsonb end
        )
        from (
            select s.step_id, s.status, s.value, s.attempt, s.retry_at,
                   sum(coalesce(s.value_bytes, octet_length(s.value::text), 0))
                       over (order by s.step_order) <= p_bytes as fits
            from pgqrs.steps as s where s.run_id = p_run
        ) as j
    );
end
$$;

-- Leases up to p_batch_size visible messages, oldest first. SKIP LOCKED lets dequeuers pass each other; a
-- message whose lease expired is simply visible again, so a crashed worker's run needs no reclaim step. Such a
-- delivery is settled first (pgqrs._settle_lost_lease): the lost lease counts as a failed attempt, and a run
-- whose deliveries keep dying ends ERROR instead of being handed out again.
-- Each row carries the run's step journal so the worker replays finished steps without a round trip each;
-- values past pgqrs.max_journal_bytes (16 MiB by default, summed in journal order) are left out
-- ("value_omitted": true) and read with acquire_step when needed, so no run's size can make dequeue fail.
create or replace function pgqrs.dequeue(
    p_queue text,
    p_worker bigint,
    p_batch_size integer default 1,
    p_visibility interval default '30 seconds'
)
returns table (
    message_id bigint, run_id bigint, input jsonb, attempt integer, lease_token uuid, steps jsonb,
    fencing_token bigint
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
#variable_conflict use_column
declare
    v_now timestamptz := pgqrs.now();
    v_queue_id bigint := pgqrs._queue_id(p_queue);
    v_journal_bytes bigint := coalesce(nullif(current_setting('pgqrs.max_journal_bytes', true), '')::bigint, 16777216);
    v_leased refcursor;
    v_row record;
begin
    if p_batch_size is null or p_batch_size not between 1 and 1000 then
        raise exception using
            errcode = '22023', message = format('batch size must be 1-1000, got %s', coalesce(p_batch_size::text, 'NULL'));
    end if;
    if p_visibility is null or p_visibility <= interval '0' or p_visibility > interval '1 day' then
        raise exception using
            errcode = '22023',
            message = format('visibility must be more than 0 and at most 1 day, got %s',
                             coalesce(p_visibility::text, 'NULL'));
    end if;
    perform pgqrs._check_worker(p_worker);

    -- 1. Take the leases, with each run's journal (pgqrs._journal: read after the lease is taken). Batch 1 (the
    -- usual case) has its own copy of the statement with a constant `limit 1`: PL/pgSQL then keeps one generic
    -- plan for it. With `limit p_batch_size` every call is planned again (a generic plan would assume the limit
    -- keeps 10% of the queue and sort it), and planning this statement costs more than running it. A
    -- lease_token left on a visible message means its last lease expired (every hand-back clears it): `lost`,
    -- with the time that lease was granted.
    if p_batch_size = 1 then
        open v_leased for
        with picked as (
            select
                m.message_id, m.lease_token is not null as lost, m.leased_at as lost_leased_at,
                m.steps_in_flight as lost_steps
            from pgqrs.messages as m
            where m.queue_id = v_queue_id and m.visible_at <= v_now
            order by m.visible_at, m.message_id
            limit 1
            for update skip locked
        ), leased as (
            update pgqrs.messages as m
            set visible_at = v_now + p_visibility, read_count = m.read_count + 1, lease_token = gen_random_uuid(),
                lease_duration = p_visibility, leased_at = v_now, worker_id = p_worker, steps_in_flight = null
            from picked
            where m.message_id = picked.message_id
            returning m.message_id, m.lease_token, m.read_count, picked.lost, picked.lost_leased_at, picked.lost_steps
        ), started as (
            update pgqrs.runs as r
            set status = 'RUNNING', attempt = r.attempt + 1, started_at = coalesce(r.started_at, v_now),
                updated_at = v_now
            from leased
            where r.run_id = leased.message_id
            returning r.run_id, r.input, r.attempt
        )
        select s.run_id, s.input, s.attempt, l.lease_token, l.read_count, l.lost, l.lost_leased_at, l.lost_steps,
               pgqrs._journal(s.run_id, v_journal_bytes) as journal
        from started as s join leased as l on l.message_id = s.run_id
        order by s.run_id;
    else
        open v_leased for
        with picked as (
            select
                m.message_id, m.lease_token is not null as lost, m.leased_at as lost_leased_at,
                m.steps_in_flight as lost_steps
            from pgqrs.messages as m
            where m.queue_id = v_queue_id and m.visible_at <= v_now
            order by m.visible_at, m.message_id
            limit p_batch_size
            for update skip locked
        ), leased as (
            update pgqrs.messages as m
            set visible_at = v_now + p_visibility, read_count = m.read_count + 1, lease_token = gen_random_uuid(),
                lease_duration = p_visibility, leased_at = v_now, worker_id = p_worker, steps_in_flight = null
            from picked
            where m.message_id = picked.message_id
            returning m.message_id, m.lease_token, m.read_count, picked.lost, picked.lost_leased_at, picked.lost_steps
        ), started as (
            update pgqrs.runs as r
            set status = 'RUNNING', attempt = r.attempt + 1, started_at = coalesce(r.started_at, v_now),
                updated_at = v_now
            from leased
            where r.run_id = leased.message_id
            returning r.run_id, r.input, r.attempt
        )
        select s.run_id, s.input, s.attempt, l.lease_token, l.read_count, l.lost, l.lost_leased_at, l.lost_steps,
               pgqrs._journal(s.run_id, v_journal_bytes) as journal
        from started as s join leased as l on l.message_id = s.run_id
        order by s.run_id;
    end if;

    -- 2. Hand out the rows, settling first a delivery whose last lease was lost (the run may end instead).
    loop
        fetch v_leased into v_row;
        exit when not found;
        if not (v_row.lost and pgqrs._settle_lost_lease(v_row.run_id, v_row.lost_leased_at, v_row.lost_steps)) then
            message_id := v_row.run_id;
            run_id := v_row.run_id;
            input := v_row.input;
            attempt := v_row.attempt;
            lease_token := v_row.lease_token;
            steps := v_row.journal;
            fencing_token := v_row.read_count;
            return next;
        end if;
    end loop;
    close v_leased;
end
$$;
comment on function pgqrs.dequeue(text, bigint, integer, interval) is
'Leases up to p_batch_size (1-1000) visible messages of queue p_queue for p_visibility (0 < v <= 1 day), oldest
first, and marks their runs RUNNING. Returns (message_id, run_id, input, attempt, lease_token, steps,
fencing_token): attempt counts deliveries; steps maps step id -> {status, value, attempt, retry_at}, a value
left out past pgqrs.max_journal_bytes marked "value_omitted": true (read it with acquire_step); fencing_token
strictly increases with each delivery of a run. A run whose last lease expired is settled first
(pgqrs._settle_lost_lease) and may end ERROR instead. Raises QR001, QR008, 22023.';

-- A delivery found its run's previous lease expired: the worker died, hung or was cut off. That counts as a
-- failed attempt, so that a step body which kills its process (os._exit, the OOM killer) cannot be delivered
-- forever:
-- - the steps in flight during the lost delivery (p_lost_steps, as the worker's heartbeat last reported them,
--   and RUNNING rows started since p_lost_leased_at by acquire_step) become ERROR (kind lease_expired), each a
--   failed attempt under its retry policy; the lease timeout already served as the backoff, so the run is
--   delivered at once;
-- - otherwise (a step shorter than one heartbeat interval), the run's failed_deliveries grows, or starts again
--   at 1 when the lost delivery recorded a step (progress), bounded by the workflow's max_attempts.
-- When a bound is reached the run ends ERROR (kind lease_expired) as a dead letter; returns true then.
create or replace function pgqrs._settle_lost_lease(
    p_run bigint, p_lost_leased_at timestamptz, p_lost_steps jsonb
)
returns boolean
language plpgsql
volatile
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_now timestamptz := pgqrs.now();
    v_policy jsonb;
    v_steps text;
    v_exhausted boolean;
    v_count integer;
    v_error jsonb;
begin
    select w.retry_policy into strict v_policy
    from pgqrs.runs as r join pgqrs.workflows as w using (workflow_id) where r.run_id = p_run;
    v_error := jsonb_build_object('kind', 'lease_expired', 'type', 'LeaseExpired');
    -- a step that died is a failed attempt: the same attempt rule as the step calls (pgqrs._next_attempt)
    with in_flight as (
        select distinct on (f.step_id) f.step_id, f.started_at
        from (
            select k.key as step_id, k.value::timestamptz as started_at
            from jsonb_each_text(coalesce(p_lost_steps, '{}')) as k
            union all
            select s.step_id, s.started_at from pgqrs.steps as s
            where s.run_id = p_run and s.status = 'RUNNING' and s.started_at >= p_lost_leased_at
        ) as f
        order by f.step_id, f.started_at
    ), blamed as (
        insert into pgqrs.steps as s (run_id, step_id, status, error, attempt, started_at, updated_at)
        select p_run, f.step_id, 'ERROR',
               v_error || jsonb_build_object('message', format('the worker''s lease expired while step %s ran', f.step_id)),
               1, f.started_at, v_now
        from in_flight as f
        on conflict (run_id, step_id) do update
            set status = 'ERROR', error = excluded.error, attempt = pgqrs._next_attempt(s), retry_at = null,
                paused_until = null, started_at = excluded.started_at, updated_at = excluded.updated_at
            where s.status <> 'SUCCESS'
        returning s.step_id, s.attempt, coalesce(s.max_attempts, (v_policy ->> 'max_attempts')::integer) as bound
    )
    select string_agg(b.step_id, ', '), bool_or(b.attempt >= b.bound) into v_steps, v_exhausted from blamed as b;

    if v_steps is not null then
        v_error := v_error || jsonb_build_object(
            'step', v_steps,
            'message', format('the worker''s lease expired while step %s ran, and its attempts are used up', v_steps));
    else
        update pgqrs.messages as m
        set failed_deliveries = pgqrs._count_failed_delivery(p_run, p_lost_leased_at, m.failed_deliveries)
        where m.message_id = p_run
        returning m.failed_deliveries into v_count;
        v_exhausted := v_count >= (v_policy ->> 'max_attempts')::integer;
        v_error := v_error || jsonb_build_object(
            'deliveries', v_count,
            'message', format('the worker''s lease expired in %s deliveries in a row without a step recorded', v_count));
    end if;
    if not v_exhausted then
        return false;
    end if;
    perform pgqrs._end_run_failed(p_run, v_error);
    return true;
end
$$;

-- The count of failed deliveries in a row after one more (leased at p_leased_at) ended without finishing its
-- run: 1 when that delivery recorded a step (progress: a long run whose worker dies now and then is not failed
-- for it, unless max_attempts is 1), else one more than p_count.
create or replace function pgqrs._count_failed_delivery(p_run bigint, p_leased_at timestamptz, p_count integer)
returns integer
language plpgsql
stable
set search_path = pg_catalog, pgqrs, pg_temp
as $$
begin
    if exists (select from pgqrs.steps as s where s.run_id = p_run and s.completed_at >= p_leased_at) then
        return 1;
    end if;
    return p_count + 1;
end
$$;

-- Ends a run ERROR with p_error, its message archived as a dead letter, when the engine gives up on it.
create or replace function pgqrs._end_run_failed(p_run bigint, p_error jsonb)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_queue_id bigint;
begin
    update pgqrs.runs as r
    set status = 'ERROR', error = p_error, finished_at = pgqrs.now(), updated_at = pgqrs.now()
    where r.run_id = p_run;
    select m.queue_id into v_queue_id from pgqrs.messages as m where m.message_id = p_run;
    perform pgqrs._archive_message(p_run, 'DEAD_LETTER');
    perform pgqrs._notify_run_finished(p_run);
    perform pgqrs._notify_queue(v_queue_id, pgqrs.now());  -- a worker may be waiting for the slot this took
end
$$;

-- Extends the leases still held (valid and not taken over) by their original duration, and records on each
-- message the step bodies running under it that the worker reports (p_steps: [{"lease_token", "step_id",
-- "running_for" seconds}]): operators see which step a run is in and since when, and a lost lease is blamed on
-- the right steps. It never waits: a message row locked by one of the run's own calls (which may be stuck, or
-- wait on a lock of its own) is skipped, and reported as held = NULL (not known this time), so that one stuck
-- run cannot keep the worker's other leases from being extended. It writes nothing but the message rows.
create or replace function pgqrs.heartbeat(
    p_worker bigint, p_lease_tokens uuid[] default '{}', p_steps jsonb default null
)
returns table (lease_token uuid, held boolean, visible_until timestamptz)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
#variable_conflict use_column
declare
    v_now timestamptz := pgqrs.now();
begin
    if p_steps is not null and jsonb_typeof(p_steps) <> 'array' then
        raise exception using errcode = '22023', message = 'p_steps must be a JSON array';
    end if;
    if exists (
        select from jsonb_to_recordset(coalesce(p_steps, '[]')) as f (lease_token uuid, step_id text, running_for float8)
        where f.lease_token is null or f.step_id is null or f.step_id = '' or length(f.step_id) > 255
            or f.running_for is null or not f.running_for between 0 and 31622400
    ) then
        raise exception using
            errcode = '22023',
            message = 'each step in flight needs a lease_token, a step_id of 1-255 characters and running_for '
                || '0-31622400 seconds';
    end if;
    update pgqrs.workers as w set heartbeat_at = v_now, status = 'ACTIVE' where w.worker_id = p_worker;
    if not found then
        perform pgqrs._check_worker(p_worker);
    end if;
    return query
    with held as (
        select m.message_id
        from pgqrs.messages as m
        where m.lease_token = any(p_lease_tokens) and m.worker_id = p_worker and m.visible_at > v_now
        for update skip locked
    ), extended as (
        update pgqrs.messages as m
        set visible_at = v_now + m.lease_duration,
            steps_in_flight = (
                select jsonb_object_agg(f.step_id, v_now - make_interval(secs => f.running_for))
                from jsonb_to_recordset(coalesce(p_steps, '[]')) as f (lease_token uuid, step_id text, running_for float8)
                where f.lease_token = m.lease_token
            )
        from held
        where m.message_id = held.message_id
        returning m.lease_token, m.visible_at
    )
    select t.token,
           case
               when e.lease_token is not null then true
               when exists (
                   select from pgqrs.messages as b
                   where b.lease_token = t.token and b.worker_id = p_worker and b.visible_at > v_now
               ) then null  -- its row is busy: the lease stands until it expires
           else false end,
           e.visible_at
    from unnest(coalesce(p_lease_tokens, '{}')) as t (token)
    left join extended as e on e.lease_token = t.token;
end
$$;
comment on function pgqrs.heartbeat(bigint, uuid[], jsonb) is
'Records that the worker is alive and extends each lease it still holds (issued to it, not expired) by its
original duration. p_steps: the steps in flight, [{"lease_token", "step_id", "running_for": seconds}], kept on
the message (steps_in_flight). Never waits for a lock: returns a row per token with held = true (extended),
false (expired, taken over, or the run was cancelled or finished: stop working on that run) or NULL (its row is
busy with one of the run''s own calls: not extended this time). Raises QR008, 22023.';

-- Moves a message to the archive. Called with the message row already locked by the caller.
create or replace function pgqrs._archive_message(p_message_id bigint, p_outcome text)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pgqrs, pg_temp
as $$
begin
    with retired as (
        delete from pgqrs.messages as m where m.message_id = p_message_id returning m.*
    )
    insert into pgqrs.messages_archive (message_id, queue_id, outcome, enqueued_at, archived_at, read_count, worker_id)
    select r.message_id, r.queue_id, p_outcome, r.enqueued_at, pgqrs.now(), r.read_count, r.worker_id
    from retired as r;
end
$$;

-- Finishing a run (complete_run / fail_run) already retires its message, so for the seeds'
-- `run.complete(...)` then `consumer.archive(msg.id)` this is a no-op. Archiving the message of a run that is
-- still live would lose the run, so that is refused.
create or replace function pgqrs.archive(p_message_id bigint, p_worker bigint default null)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_status text;
begin
    if p_worker is not null then
        perform pgqrs._check_worker(p_worker);
    end if;
    select r.status into v_status from pgqrs.runs as r where r.run_id = p_message_id;
    if v_status is null then
        raise exception using errcode = 'QR002', message = format('unknown message: %s', p_message_id);
    end if;
    if exists (select from pgqrs.messages_archive as a where a.message_id = p_message_id) then
        return false;
    end if;
    raise exception using
        errcode = 'QR003',
        message = format('message %s belongs to run %s, which is %s', p_message_id, p_message_id, v_status),
        hint = 'Finish the run with pgqrs.complete_run or pgqrs.fail_run; that archives its message.';
end
$$;
comment on function pgqrs.archive(bigint, bigint) is
'Retires a message; idempotent: returns false when it is already archived (finishing a run archives its
message). Raises QR002 (unknown message), QR003 (the run is still live), QR008 (unknown worker).';
