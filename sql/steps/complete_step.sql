-- pgqrs: recording a step success.

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
set plan_cache_mode = force_generic_plan
as $$
declare
    v_value jsonb := coalesce(p_value, 'null'::jsonb);
    v_step pgqrs.steps;
    v_now timestamptz := pgqrs._now();
    v_token uuid;
    v_visible_at timestamptz;
begin
    -- The hot path of every worker: the checks are inlined here and the helpers (which raise the precise
    -- errors) run only when a check fails; each helper call costs a PL/pgSQL function start per transaction.
    -- The lease predicate is pgqrs._lease_held, which the planner inlines.
    if p_step_id is null or p_step_id = '' or length(p_step_id) > 255 then
        perform pgqrs._check_step_id(p_step_id);
    end if;
    if p_duration is not null then
        perform pgqrs._check_interval('duration', p_duration, interval '0', interval '365 days');
    end if;
    select m.lease_token, m.visible_at into v_token, v_visible_at
    from pgqrs.messages as m where m.message_id = p_run for update;
    if not pgqrs._lease_held(v_token, v_visible_at, p_lease_token, v_now) then
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
        where s.status <> 'SUCCESS' and s.kind is null  -- a wait's step is refused below (steps/kinds.sql)
    returning * into v_step;
    if v_step.run_id is not null then
        return true;
    end if;
    select * into strict v_step from pgqrs.steps as s where s.run_id = p_run and s.step_id = p_step_id;
    if v_step.kind is not null then
        perform pgqrs._refuse_step_kind(p_run, p_step_id, v_step.kind);
    end if;
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
overwritten: another value raises QR005. Raises QR004 (lease), QR002/QR003, QR010 (the step id was recorded by a
durable wait or a child workflow), 22023.';
