-- pgqrs: the worker heartbeat, which extends its leases.

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
    -- each entry checked as JSON before anything casts it (a cast would fail with another code, or not at all)
    if exists (
        select from jsonb_array_elements(coalesce(p_steps, '[]')) as e (step)
        where case
            when jsonb_typeof(e.step) <> 'object'
                or jsonb_typeof(e.step -> 'lease_token') is distinct from 'string'
                or jsonb_typeof(e.step -> 'step_id') is distinct from 'string'
                or jsonb_typeof(e.step -> 'running_for') is distinct from 'number' then true
            else
                e.step ->> 'lease_token' !~ '^[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}$'
                or e.step ->> 'step_id' = '' or length(e.step ->> 'step_id') > 255
                or not (e.step ->> 'running_for')::numeric between 0 and 31622400
        end
    ) then
        raise exception using
            errcode = '22023',
            message = 'each step in flight needs a lease_token (a uuid), a step_id of 1-255 characters and '
                || 'running_for 0-31622400 seconds';
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
