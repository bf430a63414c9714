-- pgqrs: asking whether a step should run.

create or replace function pgqrs.acquire_step(
    p_run bigint, p_step_id text, p_lease_token uuid, p_current_time timestamptz default null
)
returns table (status text, value jsonb, attempt integer, retry_at timestamptz)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
set plan_cache_mode = force_generic_plan
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
    if v_step.kind is not null then  -- a wait's (or a child's) step: not this protocol's (steps/kinds.sql)
        perform pgqrs._refuse_step_kind(p_run, p_step_id, v_step.kind);
    end if;
    if v_step.status = 'SUCCESS' then
        return query select 'SKIPPED'::text, v_step.value, v_step.attempt, null::timestamptz;
        return;
    end if;
    if v_step.status = 'ERROR' then
        if v_step.retry_at > v_time then
            return query select 'WAIT'::text, null::jsonb, v_step.attempt, v_step.retry_at;
            return;
        end if;
        -- the step's own limit, else the workflow's current policy's
        select pgqrs._max_attempts(w.retry_policy, v_step.max_attempts) into v_max_attempts
        from pgqrs.runs as r join pgqrs.workflows as w using (workflow_id) where r.run_id = p_run;
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
Raises QR004 (lease not held), QR002/QR003 (unknown or finished run), QR007 (attempts exhausted), QR010 (the step
id was recorded by a durable wait or a child workflow), 22023.';
