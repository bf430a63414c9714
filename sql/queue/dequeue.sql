-- pgqrs: dequeue, the delivery of runs to a worker.

-- Leases up to p_batch_size visible messages, the highest priority first and oldest first within one
-- (pgqrs._ready_messages), within the workflow's limits (pgqrs._pick_within_limits: sql/workflows/limits.sql;
-- a workflow without limits pays nothing for them). SKIP LOCKED lets dequeuers pass each other; a
-- message whose lease expired is simply visible again, so a crashed worker's run needs no reclaim step. Such a
-- delivery is settled first (pgqrs._settle_lost_lease): the lost lease counts as a failed attempt, and a run
-- whose deliveries keep dying ends ERROR instead of being handed out again.
-- Each row carries the run's step journal so the worker replays finished steps without a round trip each;
-- values past pgqrs.max_journal_bytes (16 MiB by default, summed in journal order) are left out
-- ("value_omitted": true) and read with acquire_step when needed, so no run's size can make dequeue fail.
-- The planner settings: one statement picks, one takes the leases, for every batch size, each planned once per
-- session (plan_cache_mode). Left to choose, PL/pgSQL would plan them again on every call, and at a queue's depth
-- planning costs more than running: its generic plan is costed as if `limit p_batch_size` kept 10% of the queue, so
-- it never looks cheaper than a custom plan for the usual `limit 1`. A plan made without knowing the batch size
-- may still pick, from estimates, a whole-table read: a sort of the visible messages, or a scan of messages or
-- runs for the rows it leases (on a young table, before its first ANALYZE, or for 10% of a deep queue). Every
-- row dequeue touches is reached through an index (messages_ready_idx in queue order, then primary keys), so
-- sequential and bitmap scans are ruled out (enable_seqscan, enable_bitmapscan); the settings also hold for the
-- functions dequeue calls, whose statements are lookups by key as well. tests/test_dequeue_plan.py checks the
-- plan on a young and on a deep queue.
create or replace function pgqrs.dequeue(
    p_queue text,
    p_worker bigint,
    p_batch_size integer default 1,
    p_visibility interval default '30 seconds',
    p_version text default null
)
returns table (
    message_id bigint, run_id bigint, input jsonb, attempt integer, lease_token uuid, steps jsonb,
    fencing_token bigint, trace_context jsonb
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
set enable_bitmapscan = off
as $$
#variable_conflict use_column
declare
    v_now timestamptz := pgqrs._now();
    v_queue_id bigint;
    v_max_concurrency integer;
    v_max_per_key integer;
    v_rate_limit jsonb;
    v_picked bigint[];
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
    select q.queue_id, w.max_concurrency, w.max_concurrency_per_key, w.rate_limit
    into v_queue_id, v_max_concurrency, v_max_per_key, v_rate_limit
    from pgqrs.queues as q join pgqrs.workflows as w using (workflow_id) where q.name = p_queue;
    if v_queue_id is null then
        perform pgqrs._queue_id(p_queue);  -- raises QR001 (or 22023 for a malformed name)
    end if;
    perform pgqrs._check_worker(p_worker);
    if p_version is not null then
        perform pgqrs._check_name('version', p_version);
    end if;

    -- 1. Pick the messages (locked).
    if num_nonnulls(v_max_concurrency, v_max_per_key, v_rate_limit) = 0 then
        v_picked := array(select r.message_id from pgqrs._ready_messages(v_queue_id, v_now, p_batch_size, p_version) as r);
    else
        v_picked := pgqrs._pick_within_limits(
            v_queue_id, v_max_concurrency, v_max_per_key, v_rate_limit, p_batch_size, v_now, p_version
        );
    end if;
    if cardinality(v_picked) = 0 then
        return;
    end if;

    -- 2. Take the leases, with each run's journal (pgqrs._journal: read after the lease is taken). A
    -- lease_token left on a visible message means its last lease expired (every hand-back clears it): `lost`,
    -- with the time that lease was granted (read before this statement's update: its snapshot).
    open v_leased for
    with picked as (
        select
            m.message_id, m.lease_token is not null as lost, m.leased_at as lost_leased_at,
            m.steps_in_flight as lost_steps
        from pgqrs.messages as m
        where m.message_id = any(v_picked)
    ), leased as (
        update pgqrs.messages as m
        set visible_at = v_now + p_visibility, read_count = m.read_count + 1, lease_token = gen_random_uuid(),
            lease_duration = p_visibility, leased_at = v_now, worker_id = p_worker, steps_in_flight = null,
            version = coalesce(m.version, p_version)
        where m.message_id = any(v_picked)
        returning m.message_id, m.lease_token, m.read_count
    ), started as (
        update pgqrs.runs as r
        set status = 'RUNNING', attempt = r.attempt + 1, started_at = coalesce(r.started_at, v_now),
            updated_at = v_now, version = coalesce(r.version, p_version)
        from leased
        where r.run_id = leased.message_id
        returning r.run_id, r.input, r.attempt, r.trace_context
    )
    select s.run_id, s.input, s.attempt, s.trace_context, l.lease_token, l.read_count, p.lost, p.lost_leased_at,
           p.lost_steps, pgqrs._journal(s.run_id, v_journal_bytes) as journal
    from started as s join leased as l on l.message_id = s.run_id join picked as p on p.message_id = s.run_id
    order by s.run_id;

    -- 3. Hand out the rows, settling first a delivery whose last lease was lost (the run may end instead).
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
            trace_context := v_row.trace_context;
            return next;
        end if;
    end loop;
    close v_leased;
end
$$;
comment on function pgqrs.dequeue(text, bigint, integer, interval, text) is
'Leases up to p_batch_size (1-1000) visible messages of queue p_queue for p_visibility (0 < v <= 1 day), the
highest priority first and oldest first within one, within the workflow''s limits (max_concurrency,
max_concurrency_per_key, rate_limit), and marks their runs RUNNING. Returns (message_id, run_id, input, attempt,
lease_token, steps, fencing_token, trace_context): attempt counts deliveries; steps maps step id -> {status,
value, attempt, retry_at}, with kind for a step of a durable wait or a child workflow, a value left out past
pgqrs.max_journal_bytes marked "value_omitted": true (read it with acquire_step, a wait step with its wait);
fencing_token strictly increases with each delivery of a run; trace_context is the run''s (runs.trace_context).
p_version: the version of the caller''s workflow code (a name, 1-128 characters). It gets the runs of that version
and the never-delivered runs without one, whose version it sets (runs.version); NULL (an unversioned worker) gets
the runs without a version.
A run whose last lease expired is settled first (pgqrs._settle_lost_lease) and may end ERROR instead. Raises QR001, QR008, 22023.';
