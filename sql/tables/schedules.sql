-- pgqrs: schedules (sql/schedules/, docs/schedules.md): a cron expression that starts runs of a workflow.
--
-- next_fire_at is the next tick not yet fired (NULL while disabled): pgqrs.fire_schedules starts the due ones
-- and moves it on. It is computed in the engine, from cron and timezone, by pgqrs._cron_next.

create table if not exists pgqrs.schedule_defs (
    schedule_id bigint generated always as identity primary key,
    name text not null constraint schedule_defs_name_key unique,
    workflow_id bigint not null references pgqrs.workflows (workflow_id),
    cron text not null,
    timezone text not null,
    input jsonb not null,
    catch_up text not null
    constraint schedule_defs_catch_up_check check (catch_up in ('latest', 'all')),
    enabled boolean not null default true,
    next_fire_at timestamptz,
    last_fire_at timestamptz,
    last_run_id bigint,
    created_at timestamptz not null default pgqrs.now(),
    updated_at timestamptz not null default pgqrs.now()
);
comment on table pgqrs.schedule_defs is
'Schedules: a workflow started on a cron expression in a time zone. Read them through the view pgqrs.schedules.';

-- fire_schedules looks for due schedules: only enabled ones have a next fire time
create index if not exists schedule_defs_next_fire_at_idx
on pgqrs.schedule_defs (next_fire_at) where next_fire_at is not null;
