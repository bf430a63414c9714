-- pgqrs: retention. pgqrs.purge_runs removes finished runs with everything that is theirs; per workflow a
-- retention (create_workflow p_retention, set_workflow_retention) that workers apply (pgqrs.apply_retention).

-- The statuses a purge may name: finished ones. NULL: all three.
create or replace function pgqrs._purge_statuses(p_statuses text[])
returns text[]
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_wrong text;
begin
    if p_statuses is null then
        return array['SUCCESS', 'ERROR', 'CANCELLED'];
    end if;
    if cardinality(p_statuses) = 0 then
        raise exception using errcode = '22023', message = 'a purge needs at least one status';
    end if;
    select s into v_wrong from unnest(p_statuses) as s
    where s is null or s not in ('SUCCESS', 'ERROR', 'CANCELLED') limit 1;
    if found then
        raise exception using
            errcode = '22023',
            message = format('a purge removes finished runs only (SUCCESS, ERROR, CANCELLED), not %s',
                             coalesce(v_wrong, 'NULL'));
    end if;
    return p_statuses;
end
$$;

-- How long to keep finished runs: more than 0, at most 100 years.
create or replace function pgqrs._check_keep_for(p_what text, p_keep_for interval)
returns void
language plpgsql
immutable
set search_path = pg_catalog, pgqrs, pg_temp
as $$
begin
    if p_keep_for is null or p_keep_for <= interval '0' or p_keep_for > interval '100 years' then
        raise exception using
            errcode = '22023',
            message = format('%s must be more than 0 and at most 100 years, got %s', p_what,
                             coalesce(p_keep_for::text, 'NULL'));
    end if;
end
$$;

-- One batch: up to p_limit runs finished before p_before with one of p_statuses (of one workflow, or of all),
-- oldest first, removed with their steps, archived message, waits and messages sent to them. Never removed:
-- a child whose parent has not finished (it may still wait for it), and a run with children left (they go
-- first; the parent follows in a later batch). Runs locked by another call are skipped, never waited for.
-- p_dry_run: count them (all of them, not only p_limit), remove nothing.
create or replace function pgqrs._purge(
    p_before timestamptz, p_statuses text[], p_limit integer, p_workflow_id bigint, p_dry_run boolean
)
returns bigint
language plpgsql
volatile
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_ids bigint[];
begin
    if p_dry_run then
        return (
            select count(*) from pgqrs.messages_archive as a join pgqrs.runs as r on r.run_id = a.message_id
            where a.archived_at < p_before and r.status = any(p_statuses)
                and (p_workflow_id is null or r.workflow_id = p_workflow_id)
                and pgqrs._purgeable(r)
        );
    end if;
    v_ids := array(
        select r.run_id from pgqrs.messages_archive as a join pgqrs.runs as r on r.run_id = a.message_id
        where a.archived_at < p_before and r.status = any(p_statuses)
            and (p_workflow_id is null or r.workflow_id = p_workflow_id)
            and pgqrs._purgeable(r)
        order by a.archived_at
        limit p_limit
        for update of r skip locked
    );
    if cardinality(v_ids) = 0 then
        return 0;
    end if;
    update pgqrs.runs as r set forked_from = null where r.forked_from = any(v_ids);  -- a fork outlives its origin
    delete from pgqrs.steps as s where s.run_id = any(v_ids);
    delete from pgqrs.waits as w where w.run_id = any(v_ids);
    delete from pgqrs.run_messages as m where m.run_id = any(v_ids);
    delete from pgqrs.idempotency_keys as k where k.run_id = any(v_ids);
    delete from pgqrs.messages_archive as a where a.message_id = any(v_ids);
    delete from pgqrs.runs as r where r.run_id = any(v_ids);
    return cardinality(v_ids);
end
$$;

create or replace function pgqrs._purgeable(p_run pgqrs.runs)
returns boolean
language sql
stable
set search_path = pg_catalog, pgqrs, pg_temp
as $$
    select
        (p_run.parent_run_id is null or exists (
            select from pgqrs.runs as p where p.run_id = p_run.parent_run_id and p.finished_at is not null
        ))
        and not exists (select from pgqrs.runs as c where c.parent_run_id = p_run.run_id)
$$;

create or replace function pgqrs.purge_runs(
    p_older_than interval,
    p_statuses text[] default null,
    p_limit integer default 10000,
    p_dry_run boolean default false
)
returns bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_statuses text[] := pgqrs._purge_statuses(p_statuses);
    v_all boolean;
    v_removed bigint;
begin
    perform pgqrs._check_keep_for('older_than', p_older_than);
    if p_limit is null or p_limit not between 1 and 100000 then
        raise exception using
            errcode = '22023', message = format('limit must be 1-100000, got %s', coalesce(p_limit::text, 'NULL'));
    end if;
    -- every finished status: whole partitions go first; a drop keeps the tables locked until the transaction
    -- ends, so the batches wait for the next call (and a partition the batches emptied is dropped last)
    v_all := not coalesce(p_dry_run, false) and v_statuses @> array['SUCCESS', 'ERROR', 'CANCELLED'];
    if v_all then
        v_removed := pgqrs._drop_partitions(pgqrs.now() - p_older_than, false);
        if v_removed > 0 then
            return v_removed;
        end if;
    end if;
    v_removed := pgqrs._purge(pgqrs.now() - p_older_than, v_statuses, p_limit, null, coalesce(p_dry_run, false));
    if v_all and v_removed = 0 then
        perform pgqrs._drop_partitions(pgqrs.now() - p_older_than, true);
    end if;
    return v_removed;
end
$$;
comment on function pgqrs.purge_runs(interval, text[], integer, boolean) is
'Removes up to p_limit (1-100000) runs that finished more than p_older_than ago (more than 0, at most 100 years)
with one of p_statuses (SUCCESS, ERROR, CANCELLED; NULL: all three), oldest first, with their steps, archived
message, waits and the messages sent to them, in one transaction; returns how many. With all three statuses, a
partition of the history whose runs may all go is dropped whole instead (all its runs, beyond p_limit), under a
lock of at most 100 ms (busy: deleted in batches as the others). Call it again until it returns 0 (pgqrs purge
does). Never removes a run that has not finished, a child whose parent has not finished, or a run
whose children are left (they go first); skips runs another call holds locked. p_dry_run: counts what would go
(all of it), removes nothing. Raises 22023 for a bad interval, status or limit.';

-- The retention of a workflow: its finished runs are purged p_retention after they finished; NULL: kept.
create or replace function pgqrs.set_workflow_retention(p_workflow text, p_retention interval)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_workflow_id bigint := (select q.workflow_id from pgqrs.queues as q where q.queue_id = pgqrs._queue_id(p_workflow));
begin
    if p_retention is null then
        delete from pgqrs.retention as r where r.workflow_id = v_workflow_id;
        return;
    end if;
    perform pgqrs._check_keep_for('retention', p_retention);
    insert into pgqrs.retention as r (workflow_id, keep_for) values (v_workflow_id, p_retention)
    on conflict (workflow_id) do update set keep_for = excluded.keep_for;
end
$$;
comment on function pgqrs.set_workflow_retention(text, interval) is
'Keeps the finished runs of workflow p_workflow for p_retention (more than 0, at most 100 years), after which
workers purge them (pgqrs.apply_retention); NULL: keeps them for good. Raises QR001 and 22023.';

-- What workers call (every few seconds, with pgqrs.fire_schedules): for each workflow with a retention not
-- applied in the last minute, one purge batch of up to 1000 runs. A workflow is claimed by one caller at a
-- time (SKIP LOCKED), so across all workers each is purged at most once a minute, and a busy history is worked
-- off 1000 runs a minute per workflow without any worker stalling on it. When every workflow has a retention,
-- the partitions past the longest one are dropped first (pgqrs._drop_partitions; the batches then wait for
-- the next call, the drop keeping the tables locked until the transaction ends). Returns the runs removed.
create or replace function pgqrs.apply_retention()
returns bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_now timestamptz := pgqrs.now();
    v_due pgqrs.retention[];
    v_one pgqrs.retention;
    v_removed bigint := 0;
    v_all boolean;
    v_before timestamptz;
begin
    with due as (
        select r.workflow_id from pgqrs.retention as r
        where r.applied_at is null or r.applied_at <= v_now - interval '1 minute'
        order by r.workflow_id
        for update skip locked
    )
    , claimed as (
        update pgqrs.retention as r set applied_at = v_now from due where r.workflow_id = due.workflow_id
        returning r.*
    )
    select array_agg(row(c.workflow_id, c.keep_for, c.applied_at)::pgqrs.retention order by c.workflow_id) into v_due from claimed as c;
    if v_due is null then
        return 0;
    end if;
    v_all := not exists (
        select from pgqrs.workflows as w
        where not exists (select from pgqrs.retention as r where r.workflow_id = w.workflow_id)
    );
    v_before := v_now - (select max(r.keep_for) from pgqrs.retention as r);
    if v_all then
        v_removed := pgqrs._drop_partitions(v_before, false);
        if v_removed > 0 then
            return v_removed;
        end if;
    end if;
    foreach v_one in array v_due loop
        v_removed := v_removed
            + pgqrs._purge(v_now - v_one.keep_for, array['SUCCESS', 'ERROR', 'CANCELLED'], 1000, v_one.workflow_id, false);
    end loop;
    if v_all and v_removed = 0 then
        perform pgqrs._drop_partitions(v_before, true);
    end if;
    return v_removed;
end
$$;
comment on function pgqrs.apply_retention() is
'Applies the workflows'' retention (pgqrs.set_workflow_retention): for each one not applied in the last minute
by any caller, removes up to 1000 of its runs finished longer ago than its retention. When every workflow has a
retention, whole partitions of runs past the longest retention are dropped first (that call then removes
nothing else). Workers call it on their own; returns the runs removed.';
