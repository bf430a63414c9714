-- pgqrs: a purge drops whole partitions of old finished runs (sql/retention/partitions.sql made them): a
-- catalog change instead of deleting their rows. What is left (a partition with a run that must stay, the
-- default partition) is deleted in batches by pgqrs._purge.

-- Whether every run with an id in [p_first, p_end) may go: finished (pgqrs.messages holds every run that has
-- not), archived before p_before, no child outside the range (a purge never removes a run with children left),
-- and no run whose parent outside the range has not finished (it may still wait for it).
create or replace function pgqrs._partition_droppable(p_first bigint, p_end bigint, p_before timestamptz)
returns boolean
language sql
stable
set search_path = pg_catalog, pgqrs, pg_temp
as $$
    select
        not exists (select from pgqrs.messages as m where m.message_id >= p_first and m.message_id < p_end)
        and coalesce((
            select max(a.archived_at) from pgqrs.messages_archive as a
            where a.message_id >= p_first and a.message_id < p_end
        ) < p_before, true)
        and not exists (
            select from pgqrs.runs as c
            where c.parent_run_id >= p_first and c.parent_run_id < p_end and c.run_id >= p_end
        )
        and not exists (
            select from pgqrs.runs as r join pgqrs.messages as m on m.message_id = r.parent_run_id
            where r.run_id >= p_first and r.run_id < p_end and r.parent_run_id < p_first
        )
$$;

-- Drops the oldest partition whose run ids have all been issued and whose runs may all go
-- (pgqrs._partition_droppable), after removing what other tables hold for those runs; returns its runs (0: none
-- dropped, or an emptied one). p_emptied: only a partition left without runs (by the batched purge), else only
-- one with runs. The newest partitions (ids still to issue) and the default partition are never dropped. A drop
-- locks the three tables (ACCESS EXCLUSIVE) until the transaction ends, so one partition per call, and the
-- caller ends the transaction at once (purge_runs and apply_retention return); the work that needs no lock
-- (counting, removing the other tables' rows) comes before it. A drop that would wait over 100 ms for the lock is
-- skipped, never waited for (the next call tries again; the batches delete meanwhile).
create or replace function pgqrs._drop_partitions(p_before timestamptz, p_emptied boolean)
returns bigint
language plpgsql
volatile
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_part record;
    v_names text[];
    v_runs bigint;
    v_lock_timeout text := current_setting('lock_timeout');
begin
    for v_part in
        select p.first_id, p.end_id from pgqrs._history_partitions() as p
        where p.end_id <= pgqrs._next_run_id()
        order by p.first_id
    loop
        continue when not pgqrs._partition_droppable(v_part.first_id, v_part.end_id, p_before);
        v_runs := (select count(*) from pgqrs.runs as r where r.run_id >= v_part.first_id and r.run_id < v_part.end_id);
        continue when (v_runs = 0) <> p_emptied;
        begin
            perform pgqrs._forget_runs(v_part.first_id, v_part.end_id);
            perform set_config('lock_timeout', '100ms', true);
            lock table only pgqrs.runs, pgqrs.steps, pgqrs.messages_archive in access exclusive mode;
            -- again under the lock: a run of the range may have been retried meanwhile
            if not pgqrs._partition_droppable(v_part.first_id, v_part.end_id, p_before) then
                raise exception using errcode = '55P03', message = 'a run of the partition changed';
            end if;
            v_names := array[
                'runs_from_' || v_part.first_id, 'steps_from_' || v_part.first_id,
                'messages_archive_from_' || v_part.first_id
            ];
            execute format('drop table pgqrs.%I, pgqrs.%I, pgqrs.%I', v_names[1], v_names[2], v_names[3]);
        exception when lock_not_available then
            return 0;  -- busy: rolled back (its locks released), tried again by the next call
        end;
        perform set_config('lock_timeout', v_lock_timeout, true);
        return v_runs;
    end loop;
    return 0;
end
$$;

-- What other tables hold for the runs of ids [p_first, p_end), removed before their partition is dropped: their
-- waits, the messages sent to them and their idempotency keys; forks outlive their origin.
create or replace function pgqrs._forget_runs(p_first bigint, p_end bigint)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pgqrs, pg_temp
as $$
begin
    update pgqrs.runs as r set forked_from = null
    where r.forked_from >= p_first and r.forked_from < p_end and r.run_id >= p_end;
    delete from pgqrs.waits as w where w.run_id >= p_first and w.run_id < p_end;
    delete from pgqrs.run_messages as m where m.run_id >= p_first and m.run_id < p_end;
    delete from pgqrs.idempotency_keys as k where k.run_id >= p_first and k.run_id < p_end;
end
$$;
