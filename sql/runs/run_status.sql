-- pgqrs: reading a run and its step journal.

create or replace function pgqrs.run_status(p_run bigint)
returns table (
    run_id bigint, workflow text, status text, input jsonb, output jsonb, error jsonb, attempt integer,
    created_at timestamptz, started_at timestamptz, finished_at timestamptz, updated_at timestamptz,
    current_step text, visible_at timestamptz, current_step_status text, current_step_since timestamptz
)
language plpgsql
stable
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
#variable_conflict use_column
begin
    return query
    select r.run_id, w.name, r.status, r.input, r.output, r.error, r.attempt,
           r.created_at, r.started_at, r.finished_at, r.updated_at,
           coalesce(fl.step_id, cur.step_id), m.visible_at, coalesce(fl.status, cur.status),
           coalesce(fl.since, cur.since)
    from pgqrs.runs as r
    join pgqrs.workflows as w using (workflow_id)
    left join pgqrs.messages as m on m.message_id = r.run_id
    left join lateral (
        select s.step_id, s.status, case when s.status = 'RUNNING' then s.started_at else s.updated_at end as since
        from pgqrs.steps as s where s.run_id = r.run_id order by s.step_order desc limit 1
    ) as cur on true
    left join lateral (  -- a step body running now, as the worker's heartbeat reports it
        select f.key as step_id, 'RUNNING'::text as status, f.value::timestamptz as since
        from jsonb_each_text(m.steps_in_flight) as f
        where not exists (  -- recorded since (the report is older than the record)
            select from pgqrs.steps as s
            where s.run_id = r.run_id and s.step_id = f.key and s.updated_at >= f.value::timestamptz
        )
        order by f.value::timestamptz desc limit 1
    ) as fl on r.status = 'RUNNING'
    where r.run_id = p_run;
    if not found then
        raise exception using errcode = 'QR002', message = format('unknown run: %s', coalesce(p_run::text, 'NULL'));
    end if;
end
$$;
comment on function pgqrs.run_status(bigint) is
'A run (or its message: the ids are equal) with status, input, output, error, attempt (deliveries), timestamps,
current_step (the step running now, once the worker''s heartbeat has reported it; else the step recorded last),
visible_at (next delivery, or lease expiry while RUNNING; NULL once finished), current_step_status and
current_step_since (when the step started RUNNING, or its last change). Raises QR002 for an unknown id.';

create or replace function pgqrs.run_steps(p_run bigint)
returns setof pgqrs.steps
language plpgsql
stable
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
begin
    perform pgqrs.run_status(p_run);
    return query select * from pgqrs.steps as s where s.run_id = p_run order by s.step_order;
end
$$;
comment on function pgqrs.run_steps(bigint) is
'The step journal of a run in the order steps were first recorded. Raises QR002 for an unknown run.';
