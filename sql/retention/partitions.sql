-- pgqrs: the partitions of the history. runs, steps and messages_archive are partitioned by range of the run id
-- on the same bounds (sql/tables/runs.sql): partition <table>_from_<first id> holds the ids from its first id up
-- to the next partition's. pgqrs.maintain_history makes them ahead of the run id sequence, so that triggering
-- never waits for DDL; sql/retention/drop_partitions.sql drops old ones.

-- The ranged partitions of runs (the bounds of steps and messages_archive are the same), oldest first.
create or replace function pgqrs._history_partitions()
returns table (first_id bigint, end_id bigint)
language sql
stable
set search_path = pg_catalog, pgqrs, pg_temp
as $$
    select b[1]::bigint, b[2]::bigint
    from pg_catalog.pg_inherits as i
    join pg_catalog.pg_class as c on c.oid = i.inhrelid
    cross join lateral regexp_match(
        pg_catalog.pg_get_expr(c.relpartbound, c.oid), 'FROM \(''?(\d+)''?\) TO \(''?(\d+)''?\)'
    ) as b
    where i.inhparent = 'pgqrs.runs'::regclass and b is not null  -- not the default partition
    order by 1
$$;

-- The first run id not issued yet.
create or replace function pgqrs._next_run_id()
returns bigint
language sql
volatile
set search_path = pg_catalog, pgqrs, pg_temp
as $$
    select case when s.is_called then s.last_value + 1 else s.last_value end from pgqrs.runs_run_id_seq as s
$$;

-- About the runs created in a day: the rate over the last million run ids (two lookups by key), at least
-- 1,000,000 (a quiet database gets few partitions) and at most 100,000,000 (a burst is not a day's rate).
create or replace function pgqrs._history_width()
returns bigint
language plpgsql
stable
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_last pgqrs.runs;
    v_first pgqrs.runs;
    v_span double precision;
begin
    select * into v_last from pgqrs.runs as r order by r.run_id desc limit 1;
    select * into v_first from pgqrs.runs as r where r.run_id >= v_last.run_id - 1000000 order by r.run_id limit 1;
    v_span := extract(epoch from v_last.created_at - v_first.created_at);
    if v_span is null or v_span <= 0 then
        return 1000000;
    end if;
    return least(greatest(1000000, ((v_last.run_id - v_first.run_id) * 86400 / v_span)::bigint), 100000000);
end
$$;

-- One partition of each of the three tables for run ids [p_first, p_end).
create or replace function pgqrs._create_history_partition(p_first bigint, p_end bigint)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_table text;
    v_partition text;
begin
    -- (the roles read the history through the partitioned tables, which security/privileges.sql grants)
    foreach v_table in array array['runs', 'steps', 'messages_archive'] loop
        v_partition := v_table || '_from_' || p_first;
        execute format('create table pgqrs.%I partition of pgqrs.%I for values from (%L) to (%L)',
                       v_partition, v_table, p_first, p_end);
    end loop;
end
$$;

create or replace function pgqrs.maintain_history(p_width bigint default null)
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_next bigint := pgqrs._next_run_id();
    v_width bigint := p_width;
    v_first bigint;
    v_made integer := 0;
    v_lock_timeout text := current_setting('lock_timeout');
begin
    if p_width is not null and p_width not between 1 and 10000000000 then
        raise exception using
            errcode = '22023', message = format('width must be 1-10000000000 run ids, got %s', p_width);
    end if;
    -- one caller at a time; the others find the work done (or leave it to the next tick)
    if not pg_try_advisory_xact_lock(hashtext('pgqrs.maintain_history')) then
        return 0;
    end if;
    while (select count(*) from pgqrs._history_partitions() as p where p.end_id > v_next) < 2 loop
        v_width := coalesce(v_width, pgqrs._history_width());
        -- above every id issued and every id in the default partition: creating it moves no row
        v_first := greatest(
            v_next, (select max(p.end_id) from pgqrs._history_partitions() as p),
            (select max(d.run_id) + 1 from pgqrs.runs_default as d), 1
        );
        begin
            -- creating a partition locks the tables: never make the workers wait for it
            perform set_config('lock_timeout', '100ms', true);
            perform pgqrs._create_history_partition(v_first, v_first + v_width);
        exception when lock_not_available then
            return v_made;  -- the tables are busy: the next call makes it
        end;
        perform set_config('lock_timeout', v_lock_timeout, true);
        v_made := v_made + 1;
    end loop;
    return v_made;
end
$$;
comment on function pgqrs.maintain_history(bigint) is
'Keeps at least two ranged partitions of the history (runs, steps, messages_archive) that hold run ids not
issued yet, so that new runs never land in the default partition. A new partition takes p_width run ids
(1-10000000000); NULL: about the runs of a day at the recent rate, at least 1,000,000. Workers call it with
pgqrs.apply_retention; a call that would wait for a table lock (over 100 ms) leaves the work to the next call.
Returns the partitions made. Raises 22023 for a bad width.';

-- A fresh install and an upgrade make the first partitions here (a fresh database: run ids from 1).
do $$
begin
    perform pgqrs.maintain_history();
end
$$;
