-- pgqrs: starting a run.

-- Runs in the caller's transaction: a rollback leaves neither run nor message nor notification. Concurrent
-- triggers with one idempotency key serialise on pgqrs.idempotency_keys; the loser reads the winner's run.
create or replace function pgqrs.trigger(
    p_workflow text,
    p_input jsonb default '{}',
    p_idempotency_key text default null,
    p_delay interval default null,
    p_run_at timestamptz default null,
    p_priority integer default 0,
    p_concurrency_key text default null,
    p_trace_context jsonb default null,
    p_version text default null
)
returns table (run_id bigint, message_id bigint, created boolean)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
declare
    v_now timestamptz := pgqrs._now();
    v_queue_id bigint;
    v_visible_at timestamptz;
    v_run_id bigint;
    v_existing jsonb;
begin
    -- The hot path of every client: as in complete_step, the checks are inlined and the helpers (which raise
    -- the precise errors) run only when a check fails or applies; each helper call costs a PL/pgSQL function
    -- start per transaction.
    select q.queue_id into v_queue_id from pgqrs.queues as q where q.name = p_workflow;
    if v_queue_id is null then
        perform pgqrs._queue_id(p_workflow);  -- raises QR001 (or 22023 for a malformed name)
    end if;
    if p_input is null or octet_length(p_input::text) > pgqrs._max_input_bytes() then
        perform pgqrs._check_input(p_input);
    end if;
    if p_delay is not null then
        perform pgqrs._check_interval('delay', p_delay, interval '0', interval '365 days');
    end if;
    if p_delay is not null and p_run_at is not null then
        raise exception using errcode = '22023', message = 'give either a delay or a run-at time, not both';
    end if;
    if p_run_at > v_now + interval '365 days' then
        raise exception using errcode = '22023', message = 'run-at time is more than 365 days ahead';
    end if;
    if p_idempotency_key = '' or length(p_idempotency_key) > 255 then
        raise exception using errcode = '22023', message = 'idempotency key must be 1-255 characters';
    end if;
    if p_priority is null or p_priority not between -100 and 100 then
        raise exception using
            errcode = '22023', message = format('priority must be -100 to 100, got %s', coalesce(p_priority::text, 'NULL'));
    end if;
    if p_concurrency_key = '' or length(p_concurrency_key) > 255 then
        raise exception using errcode = '22023', message = 'concurrency key must be 1-255 characters';
    end if;
    if p_trace_context is not null then
        perform pgqrs._check_trace_context(p_trace_context);
    end if;
    if p_version is not null then
        perform pgqrs._check_name('version', p_version);
    end if;
    v_visible_at := greatest(v_now, coalesce(p_run_at, v_now + coalesce(p_delay, interval '0')));

    if p_idempotency_key is not null then
        -- the key first: concurrent triggers with one key serialise on its primary key
        insert into pgqrs.idempotency_keys as k (workflow_id, idempotency_key, run_id)
        select q.workflow_id, p_idempotency_key, nextval('pgqrs.runs_run_id_seq')
        from pgqrs.queues as q where q.queue_id = v_queue_id
        on conflict (workflow_id, idempotency_key) do nothing
        returning k.run_id into v_run_id;
        if v_run_id is null then
            select r.run_id, r.input into v_run_id, v_existing
            from pgqrs.idempotency_keys as k
            join pgqrs.queues as q using (workflow_id)
            join pgqrs.runs as r on r.run_id = k.run_id
            where q.queue_id = v_queue_id and k.idempotency_key = p_idempotency_key;
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
    end if;

    insert into pgqrs.runs (
        run_id, workflow_id, status, input, idempotency_key, created_at, updated_at, trace_context, version
    )
    select coalesce(v_run_id, nextval('pgqrs.runs_run_id_seq')), q.workflow_id, 'QUEUED', p_input,
        p_idempotency_key, v_now, v_now, p_trace_context, p_version
    from pgqrs.queues as q where q.queue_id = v_queue_id
    returning runs.run_id into v_run_id;

    insert into pgqrs.messages (message_id, queue_id, visible_at, enqueued_at, priority, concurrency_key, version)
    values (v_run_id, v_queue_id, v_visible_at, v_now, p_priority, p_concurrency_key, p_version);
    -- pgqrs._notify_queue, inlined (v_now is its clock: statement_timestamp)
    perform pg_notify(
        'pgqrs_q' || v_queue_id, case when v_visible_at <= v_now then '' else extract(epoch from v_visible_at)::text end
    );
    return query select v_run_id, v_run_id, true;
end
$$;
comment on function pgqrs.trigger(text, jsonb, text, interval, timestamptz, integer, text, jsonb, text) is
'Starts a run: run QUEUED plus its message (message_id = run_id), visible after p_delay or at p_run_at, and one
NOTIFY. p_priority (-100..100, default 0): higher is delivered first, FIFO within one priority, kept across
retries. p_concurrency_key (1-255 characters): the key the workflow''s max_concurrency_per_key counts.
p_trace_context: the caller''s trace context (a JSON object of strings, runs.trace_context), kept for the workers''
spans. p_version (a name: 1-128 letters, digits and _ . : -): the version of the workflow code the run must run on
(runs.version); NULL: the first worker that serves a version and takes it sets it. Returns
(run_id, message_id, created). The same idempotency key with the same input returns the existing run with
created = false. Raises QR001 (unknown workflow), QR006 (key reused with other input), 22023 (bad input: not an
object, over pgqrs.max_input_bytes, negative delay, priority out of range...).';
