-- pgqrs: what every durable wait shares (pgqrs.sleep_step, pgqrs.wait_event).
--
-- A wait is a step of a kind (steps.kind: sleep, event) recorded in the journal like any step: WAITING while
-- the run waits, SUCCESS with its outcome once the wait is over, so a replay returns the outcome at once. While
-- it waits the run is WAITING, its lease released (no worker slot held), its message visible at the end of the
-- wait (a sleep's wake-up, an event's timeout; never for an event without a timeout, until the emit), and
-- pgqrs.waits says what it waits for.

-- An event key: 1-255 characters.
create or replace function pgqrs._check_event_key(p_key text)
returns void
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_key is null or p_key = '' or length(p_key) > 255 then
        raise exception using
            errcode = '22023',
            message = format('event key must be 1-255 characters, got %s',
                             coalesce(length(p_key) || ' characters', 'NULL'));
    end if;
end
$$;

-- How an error message names a kind of step.
create or replace function pgqrs._step_kind_name(p_kind text)
returns text
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
    select case
        when p_kind is null then 'an ordinary step'
        when p_kind = 'sleep' then 'a sleep'
        when p_kind = 'event' then 'an event wait'
        when p_kind = 'message' then 'a recv'
        when p_kind = 'child' then 'a child workflow start'
        when p_kind = 'children' then 'a wait for child workflows'
        else format('a step of kind %s', p_kind)
    end
$$;

-- The wait step p_step_id of the run, locked (NULL fields when not recorded yet). A step id recorded as
-- another kind of step (an ordinary step, or another kind of wait) raises QR010: a replay must ask for the
-- same steps it recorded. The caller holds the lease (message row, then run row).
create or replace function pgqrs._wait_step(p_run bigint, p_step_id text, p_kind text)
returns pgqrs.steps
language plpgsql
volatile
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_step pgqrs.steps;
begin
    select * into v_step from pgqrs.steps as s where s.run_id = p_run and s.step_id = p_step_id for update;
    if v_step.run_id is not null and v_step.kind is distinct from p_kind then
        raise exception using
            errcode = 'QR010',
            message = format('step %s of run %s is %s, not %s', p_step_id, p_run,
                             pgqrs._step_kind_name(v_step.kind), pgqrs._step_kind_name(p_kind)),
            hint = 'Give each step of a run its own id; a replay must ask for the steps it recorded.';
    end if;
    return v_step;
end
$$;

-- The wait begins: step WAITING with p_value, the run WAITING, what it waits for in pgqrs.waits, the lease
-- released with the message visible at p_until (NULL: never, until an emit wakes it), listeners woken then.
create or replace function pgqrs._begin_wait(
    p_run bigint, p_queue_id bigint, p_step_id text, p_kind text, p_key text, p_until timestamptz, p_value jsonb
)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_now timestamptz := pgqrs.now();
begin
    insert into pgqrs.steps as s (run_id, step_id, status, kind, value, value_bytes, attempt, started_at, updated_at)
    values (p_run, p_step_id, 'WAITING', p_kind, p_value, pg_column_size(p_value), 1, v_now, v_now)
    on conflict (run_id, step_id) do update
        set status = 'WAITING', value = excluded.value, value_bytes = excluded.value_bytes,
            updated_at = excluded.updated_at;
    insert into pgqrs.waits as w (run_id, step_id, kind, key, until, since)
    values (p_run, p_step_id, p_kind, p_key, p_until, v_now)
    on conflict (run_id) do update
        set step_id = excluded.step_id, kind = excluded.kind, key = excluded.key, until = excluded.until,
            since = case when w.step_id = excluded.step_id then w.since else excluded.since end;
    update pgqrs.runs as r set status = 'WAITING', updated_at = v_now where r.run_id = p_run;
    perform pgqrs._release_lease(p_run, p_queue_id, p_until);
end
$$;

-- The wait is over with outcome p_value: step SUCCESS (a replay returns it), the run's wait row gone.
create or replace function pgqrs._end_wait(p_run bigint, p_step_id text, p_kind text, p_value jsonb)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_now timestamptz := pgqrs.now();
begin
    insert into pgqrs.steps as s (
        run_id, step_id, status, kind, value, value_bytes, attempt, started_at, completed_at, updated_at
    )
    values (p_run, p_step_id, 'SUCCESS', p_kind, p_value, pg_column_size(p_value), 1, v_now, v_now, v_now)
    on conflict (run_id, step_id) do update
        set status = 'SUCCESS', value = excluded.value, value_bytes = excluded.value_bytes,
            completed_at = excluded.completed_at, updated_at = excluded.updated_at;
    delete from pgqrs.waits as w where w.run_id = p_run;
end
$$;
