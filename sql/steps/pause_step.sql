-- pgqrs: pausing a run at a step.

create or replace function pgqrs.pause_step(
    p_run bigint, p_step_id text, p_lease_token uuid, p_timeout interval default null
)
returns table (status text, value jsonb)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
set plan_cache_mode = force_generic_plan
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
        where s.status <> 'SUCCESS' and s.kind is null
    returning * into v_step;
    if v_step.run_id is null then
        select * into strict v_step from pgqrs.steps as s where s.run_id = p_run and s.step_id = p_step_id;
        if v_step.kind is not null then  -- a wait's (or a child's) step (steps/kinds.sql)
            perform pgqrs._refuse_step_kind(p_run, p_step_id, v_step.kind);
        end if;
        -- The external event arrived first (update_step recorded the result): nothing to wait for.
        return query select v_step.status, v_step.value;
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
SUCCESS with the value when update_step already recorded the step. Raises QR004, QR002/QR003, QR010 (the step id
was recorded by a durable wait or a child workflow), 22023.';
