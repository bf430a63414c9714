-- pgqrs: defining schedules: create (an upsert by name), enable or disable, drop. docs/schedules.md.

create or replace function pgqrs.create_schedule(
    p_name text,
    p_workflow text,
    p_cron text,
    p_input jsonb default '{}',
    p_timezone text default 'UTC',
    p_catch_up text default 'latest'
)
returns table (schedule_id bigint, next_fire_at timestamptz, created boolean)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
#variable_conflict use_column
declare
    v_now timestamptz := pgqrs.now();
    v_workflow_id bigint;
    v_next timestamptz;
begin
    -- every check before the one write: bad input changes nothing
    perform pgqrs._check_name('schedule name', p_name);
    select q.workflow_id into v_workflow_id from pgqrs.queues as q where q.queue_id = pgqrs._queue_id(p_workflow);
    perform pgqrs._check_input(p_input);
    perform pgqrs._check_timezone(p_timezone);
    if p_catch_up is null or p_catch_up not in ('latest', 'all') then
        raise exception using
            errcode = '22023',
            message = format('catch_up must be latest or all, got %s', coalesce(p_catch_up, 'NULL'));
    end if;
    v_next := pgqrs._cron_tick(p_cron, p_timezone, v_now, true);
    if v_next is null then
        raise exception using
            errcode = '22023',
            message = format('cron expression "%s" never fires', p_cron),
            hint = 'Check the day of month against the months (there is no 30 February).';
    end if;

    -- a change takes effect from now: the next fire is computed afresh (nothing missed is caught up)
    return query
    insert into pgqrs.schedule_defs as d (
        name, workflow_id, cron, timezone, input, catch_up, next_fire_at, created_at, updated_at
    )
    values (p_name, v_workflow_id, p_cron, p_timezone, p_input, p_catch_up, v_next, v_now, v_now)
    on conflict (name) do update set
        workflow_id = excluded.workflow_id, cron = excluded.cron, timezone = excluded.timezone,
        input = excluded.input, catch_up = excluded.catch_up,
        next_fire_at = case when d.enabled then excluded.next_fire_at end,
        updated_at = excluded.updated_at
    returning d.schedule_id, d.next_fire_at, d.xmax::text = '0';  -- xmax 0: inserted, not updated
end
$$;
comment on function pgqrs.create_schedule(text, text, text, jsonb, text, text) is
'Creates or replaces (by name) a schedule: runs of p_workflow with p_input at each tick of cron expression p_cron
in IANA time zone p_timezone; p_catch_up (latest, all) says what fire_schedules starts for ticks missed while
nothing called it. A change keeps the enabled flag and the last fire, and computes the next fire from now.
Returns (schedule_id, next_fire_at, created). Raises QR001 (unknown workflow), 22023 (bad name, cron expression
naming the field, time zone, catch_up or input; an expression that never fires).';

create or replace function pgqrs.set_schedule_enabled(p_name text, p_enabled boolean)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_now timestamptz := pgqrs.now();
    v_found boolean;
begin
    perform pgqrs._check_name('schedule name', p_name);
    if p_enabled is null then
        raise exception using errcode = '22023', message = 'enabled must be true or false, not NULL';
    end if;
    -- enabling starts from now: ticks that passed while disabled are not caught up
    update pgqrs.schedule_defs as d
    set enabled = p_enabled,
        next_fire_at = case when p_enabled
            then coalesce(d.next_fire_at, pgqrs._cron_tick(d.cron, d.timezone, v_now, true)) end,
        updated_at = v_now
    where d.name = p_name;
    v_found := found;
    return v_found;
end
$$;
comment on function pgqrs.set_schedule_enabled(text, boolean) is
'Disables (p_enabled false: no tick fires, next_fire_at is NULL) or enables a schedule (the next fire counts
from now: ticks that passed while it was disabled are not started). Returns false when no schedule has that
name. Raises 22023 (bad name, NULL).';

create or replace function pgqrs.drop_schedule(p_name text)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_found boolean;
begin
    perform pgqrs._check_name('schedule name', p_name);
    -- waits for a fire_schedules that holds the row, so no tick of it starts after this commits
    delete from pgqrs.schedule_defs as d where d.name = p_name;
    v_found := found;
    return v_found;
end
$$;
comment on function pgqrs.drop_schedule(text) is
'Drops a schedule; runs it started stay. Returns false when no schedule has that name. Raises 22023 (bad
name).';
