-- pgqrs: leasing one given run to the caller, outside the queue order.

-- pgqrs.dequeue hands out whichever runs are next in a queue; lease_run takes the one run the caller names: a
-- workflow run inline (a test, a request handler) or driven by hand (the pgqrs 0.15 run handle's start()). The
-- lease is the same as dequeue's (token, visibility, read_count as the fencing token, the journal), so every
-- later write is fenced as a worker's is. A caller that presents the lease it holds (p_lease_token) gets it
-- back unchanged, so starting a handle twice is harmless. It takes a QUEUED run whether or not its message is
-- due yet (a delayed start, a retry's backoff: acquire_step still answers WAIT for a step whose retry is not
-- due), and a RUNNING run whose lease expired (settled as dequeue settles it). It refuses a run another caller
-- holds, a PAUSED or WAITING run (resume_run, the event or the timeout makes it QUEUED), a finished one, and a
-- run of a workflow with flow limits, which only dequeue keeps to.
create or replace function pgqrs.lease_run(
    p_run bigint, p_worker bigint default null, p_visibility interval default '30 seconds',
    p_lease_token uuid default null
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
as $$
#variable_conflict use_column
declare
    v_now timestamptz := pgqrs.now();
    v_message pgqrs.messages;
    v_status text;
    v_limited boolean;
    v_run pgqrs.runs;
    v_lost boolean;
    v_lost_leased_at timestamptz;
    v_lost_steps jsonb;
    v_journal_bytes bigint := coalesce(nullif(current_setting('pgqrs.max_journal_bytes', true), '')::bigint, 16777216);
begin
    if p_visibility is null or p_visibility <= interval '0' or p_visibility > interval '1 day' then
        raise exception using
            errcode = '22023',
            message = format('visibility must be more than 0 and at most 1 day, got %s',
                             coalesce(p_visibility::text, 'NULL'));
    end if;
    if p_worker is not null then
        perform pgqrs._check_worker(p_worker);
    end if;
    -- lock order: message row, then run row
    select * into v_message from pgqrs.messages as m where m.message_id = p_run for update;
    select r.status, num_nonnulls(w.max_concurrency, w.max_concurrency_per_key, w.rate_limit) > 0
    into v_status, v_limited
    from pgqrs.runs as r join pgqrs.workflows as w using (workflow_id) where r.run_id = p_run
    for no key update of r;
    if v_status is null then
        raise exception using errcode = 'QR002', message = format('unknown run: %s', coalesce(p_run::text, 'NULL'));
    end if;
    if v_status = 'CANCELLED' then
        raise exception using errcode = 'QR009', message = format('run %s was cancelled', p_run);
    end if;
    if v_message.message_id is null or v_status not in ('QUEUED', 'RUNNING') then
        raise exception using
            errcode = 'QR003',
            message = format('run %s is %s', p_run, v_status),
            hint = case when v_status = 'PAUSED' then 'Resume it first: pgqrs.resume_run.'
                        when v_status = 'WAITING' then 'It is delivered again when its wait ends.'
                        else 'A finished run cannot be leased.' end;
    end if;
    if pgqrs._lease_held(v_message.lease_token, v_message.visible_at, p_lease_token, v_now) then
        -- the caller holds this lease already (a dequeued run's handle started): it stays as it is
        return query
        select p_run, p_run, r.input, r.attempt, v_message.lease_token, pgqrs._journal(p_run, v_journal_bytes),
               v_message.read_count::bigint, r.trace_context
        from pgqrs.runs as r where r.run_id = p_run;
        return;
    end if;
    if v_message.lease_token is not null and v_message.visible_at > v_now then
        raise exception using
            errcode = 'QR003',
            message = format('run %s is leased until %s', p_run, v_message.visible_at),
            hint = 'Another worker holds it; it can be leased once that lease is released or expires.';
    end if;
    if v_limited then
        raise exception using
            errcode = '0A000',
            message = format('run %s belongs to a workflow with flow limits; only pgqrs.dequeue keeps to them', p_run),
            hint = 'Lease its runs with pgqrs.dequeue, or drop the limits (pgqrs.set_workflow_limits).';
    end if;

    -- a token left on a message whose lease is not held means its last lease expired (every hand-back clears it)
    v_lost := v_message.lease_token is not null;
    v_lost_leased_at := v_message.leased_at;
    v_lost_steps := v_message.steps_in_flight;
    update pgqrs.messages as m
    set visible_at = v_now + p_visibility, read_count = m.read_count + 1, lease_token = gen_random_uuid(),
        lease_duration = p_visibility, leased_at = v_now, worker_id = p_worker, steps_in_flight = null
    where m.message_id = p_run
    returning m.* into v_message;
    update pgqrs.runs as r
    set status = 'RUNNING', attempt = r.attempt + 1, started_at = coalesce(r.started_at, v_now), updated_at = v_now
    where r.run_id = p_run
    returning r.* into v_run;
    -- settled as dequeue settles a lost lease: the run may end ERROR instead (lease_expired), and no row comes back
    if v_lost and pgqrs._settle_lost_lease(p_run, v_lost_leased_at, v_lost_steps) then
        return;
    end if;
    return query
    select p_run, p_run, v_run.input, v_run.attempt, v_message.lease_token, pgqrs._journal(p_run, v_journal_bytes),
           v_message.read_count::bigint, v_run.trace_context;
end
$$;
comment on function pgqrs.lease_run(bigint, bigint, interval, uuid) is
'Leases the run p_run to the caller for p_visibility (0 < v <= 1 day), as dequeue leases the runs it picks: the
run RUNNING, a new lease token, fencing token and attempt, the worker p_worker (optional) recorded as its holder;
a caller presenting the lease it holds (p_lease_token) gets it back unchanged.
Takes a QUEUED run even before its message is due, or a RUNNING run whose lease expired (settled first as dequeue
settles it: no row when the run ended ERROR instead). Returns one row shaped as dequeue''s (message_id, run_id,
input, attempt, lease_token, steps, fencing_token, trace_context). Raises QR002 (unknown run), QR003 (held by
another lease, PAUSED, WAITING or finished), QR008 (unknown worker), QR009 (cancelled), 0A000 (a workflow with
flow limits: only dequeue keeps to them), 22023 (visibility).';
