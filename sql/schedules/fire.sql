-- pgqrs: firing schedules, and the view of them. docs/schedules.md.

-- At most this many missed ticks of one schedule are started at once under catch_up = all (the newest ones).
create or replace function pgqrs._schedule_catch_up_cap()
returns integer
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$ select 100 $$;

-- The ticks to start for a schedule due since p_next (its next_fire_at, <= p_now), oldest first: the newest tick
-- that is due, and with catch_up = all the missed ones before it back to p_next (at most the cap).
create or replace function pgqrs._due_ticks(
    p_cron text, p_timezone text, p_catch_up text, p_next timestamptz, p_now timestamptz
)
returns timestamptz[]
language plpgsql
stable
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    -- searched backwards from now, not forwards from p_next: a long outage costs no more than a short one
    v_tick timestamptz := greatest(
        pgqrs._cron_tick(p_cron, p_timezone, p_now + interval '1 microsecond', false), p_next
    );
    v_ticks timestamptz[] := array[v_tick];
begin
    while p_catch_up = 'all' and cardinality(v_ticks) < pgqrs._schedule_catch_up_cap() loop
        v_tick := pgqrs._cron_tick(p_cron, p_timezone, v_tick, false);
        exit when v_tick is null or v_tick < p_next;
        v_ticks := v_tick || v_ticks;
    end loop;
    return v_ticks;
end
$$;

-- Each schedule row is taken FOR UPDATE SKIP LOCKED and moved on in the same transaction as the runs of its ticks,
-- so concurrent callers neither wait for each other nor start a tick twice; the idempotency key of each run
-- (schedule id and tick) makes a tick start once even if that ever failed.
create or replace function pgqrs.fire_schedules()
returns table (schedule text, tick timestamptz, run_id bigint)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
declare
    v_now timestamptz := pgqrs.now();
    v_due record;
    v_ticks timestamptz[];
    v_tick timestamptz;
    v_run record;
begin
    for v_due in
        select d.schedule_id, d.name, d.cron, d.timezone, d.input, d.catch_up, d.next_fire_at, w.name as workflow
        from pgqrs.schedule_defs as d join pgqrs.workflows as w using (workflow_id)
        where d.next_fire_at <= v_now
        order by d.next_fire_at
        for update of d skip locked
    loop
        v_ticks := pgqrs._due_ticks(v_due.cron, v_due.timezone, v_due.catch_up, v_due.next_fire_at, v_now);
        foreach v_tick in array v_ticks loop
            select t.run_id, t.created into v_run
            from pgqrs.trigger(v_due.workflow, v_due.input, pgqrs._schedule_tick_key(v_due.schedule_id, v_tick))
                as t;
            if v_run.created then
                return query select v_due.name, v_tick, v_run.run_id;
            end if;
        end loop;
        update pgqrs.schedule_defs as d
        set next_fire_at = pgqrs._cron_tick(d.cron, d.timezone, v_tick, true),
            last_fire_at = v_tick, last_run_id = v_run.run_id, updated_at = v_now
        where d.schedule_id = v_due.schedule_id;
    end loop;
end
$$;
comment on function pgqrs.fire_schedules() is
'Starts a run for every due tick of every enabled schedule, each tick exactly once whoever calls this and however
often (catch_up latest: the newest missed tick only; all: each, at most 100), and moves each schedule on to its
next fire. Returns the runs started: (schedule, tick, run_id). Workers call it on their own; pg_cron can too.';

-- The idempotency key of a tick's run: the schedule's id (a dropped and re-created name gets a new one) and the
-- tick in epoch seconds.
create or replace function pgqrs._schedule_tick_key(p_schedule_id bigint, p_tick timestamptz)
returns text
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$ select format('pgqrs.schedule:%s:%s', p_schedule_id, extract(epoch from p_tick)::bigint) $$;

create or replace view pgqrs.schedules as
select
    d.name,
    w.name as workflow,
    d.cron,
    d.timezone,
    d.catch_up,
    d.enabled,
    d.input,
    d.next_fire_at,
    d.last_fire_at,
    d.last_run_id,
    r.status as last_run_status,
    d.created_at,
    d.updated_at
from pgqrs.schedule_defs as d
join pgqrs.workflows as w using (workflow_id)
left join pgqrs.runs as r on r.run_id = d.last_run_id;
comment on view pgqrs.schedules is
'Schedules: workflow, cron, time zone, catch_up, enabled, the next fire (NULL while disabled), the last fire and
the run it started, with that run''s status.';
