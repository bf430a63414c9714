-- pgqrs: recording a step result from outside a worker.

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
set plan_cache_mode = force_generic_plan
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
        where s.status <> 'SUCCESS' and s.kind is null
    returning * into v_step;
    if v_step.run_id is not null then
        return v_step;
    end if;
    select * into strict v_step from pgqrs.steps as s where s.run_id = p_run and s.step_id = p_step_id;
    if v_step.kind is not null then  -- a wait's (or a child's) step: its outcome is the engine's to record
        perform pgqrs._refuse_step_kind(p_run, p_step_id, v_step.kind);
    end if;
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
again is a no-op, anything else raises QR005. Raises QR002, QR003 (run SUCCESS/CANCELLED), QR010 (the step id was
recorded by a durable wait or a child workflow), 22023 (bad status).';
