-- pgqrs: reading a run and its step journal.

create or replace function pgqrs.run_status(p_run bigint)
returns table (
    run_id bigint, workflow text, status text, input jsonb, output jsonb, error jsonb, attempt integer,
    created_at timestamptz, started_at timestamptz, finished_at timestamptz, updated_at timestamptz,
    current_step text, visible_at timestamptz, current_step_status text, current_step_since timestamptz,
    parent_run_id bigint, forked_from bigint, version text
)
language plpgsql
stable
security definer
set search_path = pg_catalog, pgqrs, pg_temp
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
begin
    -- the current step as the operators' view pgqrs.run_overview works it out (its one definition); input and
    -- output are not in that view
    return query
    select o.run_id, o.workflow, o.status, r.input, r.output, o.error, o.attempt,
           o.created_at, o.started_at, o.finished_at, o.updated_at,
           o.current_step, o.visible_at, o.current_step_status, o.current_step_since,
           r.parent_run_id, r.forked_from, r.version
    from pgqrs.run_overview as o
    join pgqrs.runs as r on r.run_id = o.run_id
    where o.run_id = p_run;
    if not found then
        raise exception using errcode = 'QR002', message = format('unknown run: %s', coalesce(p_run::text, 'NULL'));
    end if;
end
$$;
comment on function pgqrs.run_status(bigint) is
'A run (or its message: the ids are equal) with status, input, output, error, attempt (deliveries), timestamps,
current_step (the step running now, once the worker''s heartbeat has reported it; else the step recorded last),
visible_at (next delivery, or lease expiry while RUNNING; NULL once finished, and while PAUSED or WAITING
without a timeout), current_step_status and
current_step_since (when the step started RUNNING, or its last change), parent_run_id (the run that started it
with pgqrs.start_child), forked_from (pgqrs.fork_run) and version (runs.version). Raises QR002 for an unknown id.';

create or replace function pgqrs.run_steps(p_run bigint)
returns setof pgqrs.steps
language plpgsql
stable
security definer
set search_path = pg_catalog, pgqrs, pg_temp
set plan_cache_mode = force_generic_plan
as $$
begin
    perform pgqrs.run_status(p_run);
    return query select * from pgqrs.steps as s where s.run_id = p_run order by s.step_order;
end
$$;
comment on function pgqrs.run_steps(bigint) is
'The step journal of a run in the order steps were first recorded. Raises QR002 for an unknown run.';
