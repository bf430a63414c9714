-- pgqrs schema 7 -> 8 (issue 20: partitioned history).
-- Functions, views and grants are re-applied from the schema files after this file: only what re-running those
-- files cannot do is here.

-- runs, steps and messages_archive become partitioned by range of the run id (sql/tables/runs.sql). Each v7
-- table becomes, in place (no copy), the first partition <table>_from_1 of a new partitioned table of its name,
-- for run ids [1, greatest(the highest run id, 1000000) + 1); the schema files then add the default partitions
-- and pgqrs.maintain_history the partitions ahead. A fresh install's first partition has the same bounds.

-- Functions whose signature names a row type of these tables would keep the renamed partition's type.
drop function if exists pgqrs._lock_run(bigint);
drop function if exists pgqrs._next_attempt(pgqrs.steps);
drop function if exists pgqrs._purgeable(pgqrs.runs);
drop function if exists pgqrs._wait_step(bigint, text, text);
drop function if exists pgqrs.run_steps(bigint);
drop function if exists pgqrs.update_step(bigint, text, text, jsonb);

-- No foreign key points at runs: dropping a partition would scan the referencing tables. (Upgrading from
-- before version 5, waits and run_messages do not exist yet: the schema files make them.)
alter table if exists pgqrs.waits drop constraint if exists waits_run_id_fkey;
alter table if exists pgqrs.run_messages drop constraint if exists run_messages_run_id_fkey;
alter table pgqrs.runs drop constraint if exists runs_parent_run_id_fkey;
alter table pgqrs.runs drop constraint if exists runs_forked_from_fkey;

-- No foreign key from runs to workflows either (issue 18: its check cost trigger_batch 3 µs per run; see
-- sql/tables/messages.sql). Workflows are never deleted, and only the engine writes runs.
alter table pgqrs.runs drop constraint if exists runs_workflow_id_fkey;

-- The idempotency keys move to a table of their own (a unique index of a partitioned table must contain run_id).
create table pgqrs.idempotency_keys (
    workflow_id bigint not null,
    idempotency_key text not null,
    run_id bigint not null,
    primary key (workflow_id, idempotency_key)
);
insert into pgqrs.idempotency_keys (workflow_id, idempotency_key, run_id)
select r.workflow_id, r.idempotency_key, r.run_id from pgqrs.runs as r where r.idempotency_key is not null;
alter table pgqrs.runs drop constraint runs_idempotency_key;

do $$
declare
    v_table text;
    v_column text;
    v_sequence text;
    v_partition text;
    v_last bigint;
    v_name text;
    v_new_name text;
begin
    foreach v_table in array array['runs', 'steps', 'messages_archive'] loop
        -- the identity column becomes a sequence's (no identity column on a partitioned table), which goes on
        -- from where the identity was
        v_column := case v_table when 'runs' then 'run_id' when 'steps' then 'step_order' end;
        if v_column is not null then
            v_sequence := v_table || '_' || v_column || '_seq';
            v_last := pg_sequence_last_value(pg_get_serial_sequence('pgqrs.' || v_table, v_column));
            execute format('alter table pgqrs.%I alter column %I drop identity', v_table, v_column);
            execute format('create sequence pgqrs.%I', v_sequence);
            if v_last is not null then
                perform setval(format('pgqrs.%I', v_sequence), v_last);
            end if;
            -- as a partition made by a fresh install: the default of its parent
            execute format('alter table pgqrs.%I alter column %I set default nextval(%L)', v_table, v_column,
                           format('pgqrs.%I', v_sequence));
        end if;
        -- the v7 table and its indexes take the names a fresh install gives the first partition; its comments
        -- stay with the new table (the schema files write them)
        v_partition := v_table || '_from_1';
        execute format('alter table pgqrs.%I rename to %I', v_table, v_partition);
        -- PostgreSQL 18 names NOT NULL constraints, and a new table's would avoid the v7 table's names: these
        -- step aside until the new table has its own, and take their names back before they are attached (below)
        for v_name in
            select c.conname from pg_catalog.pg_constraint as c
            where c.conrelid = format('pgqrs.%I', v_partition)::regclass and c.contype = 'n'
        loop
            v_new_name := 'v7_' || v_name;
            execute format('alter table pgqrs.%I rename constraint %I to %I', v_partition, v_name, v_new_name);
        end loop;
        for v_name in
            select c.relname from pg_catalog.pg_index as i join pg_catalog.pg_class as c on c.oid = i.indexrelid
            where i.indrelid = format('pgqrs.%I', v_partition)::regclass
        loop
            v_new_name := v_partition || substr(v_name, length(v_table) + 1);
            execute format('alter index pgqrs.%I rename to %I', v_name, v_new_name);
        end loop;
        execute format('comment on table pgqrs.%I is null', v_partition);
        for v_column in
            select a.attname from pg_catalog.pg_description as d
            join pg_catalog.pg_attribute as a on a.attrelid = d.objoid and a.attnum = d.objsubid
            where d.objoid = format('pgqrs.%I', v_partition)::regclass and d.objsubid > 0
        loop
            execute format('comment on column pgqrs.%I.%I is null', v_partition, v_column);
        end loop;
    end loop;
end
$$;

-- The partitioned tables, as sql/tables/*.sql make them (those files add the default partitions, the indexes
-- other than the primary keys and the comments).
create table pgqrs.runs (
    run_id bigint not null default nextval('pgqrs.runs_run_id_seq'),
    workflow_id bigint not null,
    status text not null
    constraint runs_status_check
    check (status in ('QUEUED', 'RUNNING', 'PAUSED', 'WAITING', 'SUCCESS', 'ERROR', 'CANCELLED')),
    input jsonb not null,
    output jsonb,
    error jsonb,
    attempt integer not null default 0,
    idempotency_key text,
    created_at timestamptz not null default pgqrs.now(),
    started_at timestamptz,
    finished_at timestamptz,
    updated_at timestamptz not null default pgqrs.now(),
    parent_run_id bigint,
    forked_from bigint,
    trace_context jsonb,
    version text,
    primary key (run_id)
) partition by range (run_id);
alter sequence pgqrs.runs_run_id_seq owned by pgqrs.runs.run_id;

create table pgqrs.steps (
    run_id bigint not null,
    step_id text not null,
    step_order bigint not null default nextval('pgqrs.steps_step_order_seq'),
    status text not null
    constraint steps_status_check check (status in ('RUNNING', 'SUCCESS', 'ERROR', 'PAUSED', 'WAITING')),
    value jsonb,
    error jsonb,
    attempt integer not null default 0,
    retry_at timestamptz,
    paused_until timestamptz,
    started_at timestamptz,
    completed_at timestamptz,
    updated_at timestamptz not null default pgqrs.now(),
    max_attempts integer,
    value_bytes integer,
    kind text constraint steps_kind_check check (kind in ('sleep', 'event', 'message', 'child', 'children')),
    primary key (run_id, step_id)
) partition by range (run_id);
alter sequence pgqrs.steps_step_order_seq owned by pgqrs.steps.step_order;

create table pgqrs.messages_archive (
    message_id bigint primary key,
    queue_id bigint not null,
    outcome text not null
    constraint messages_archive_outcome_check check (outcome in ('SUCCESS', 'DEAD_LETTER', 'CANCELLED')),
    enqueued_at timestamptz not null,
    archived_at timestamptz not null default pgqrs.now(),
    read_count integer not null,
    worker_id bigint
) partition by range (message_id);

do $$
declare
    v_end bigint := greatest((select max(r.run_id) from pgqrs.runs_from_1 as r), 1000000) + 1;
    v_table text;
    v_partition text;
    v_name text;
    v_new_name text;
begin
    foreach v_table in array array['runs', 'steps', 'messages_archive'] loop
        -- a scan of the table checks the bounds; nothing is copied
        v_partition := v_table || '_from_1';
        -- (the NOT NULL constraints of PostgreSQL 18 take back their names, the new table's own now)
        for v_name in
            select c.conname from pg_catalog.pg_constraint as c
            where c.conrelid = format('pgqrs.%I', v_partition)::regclass and c.contype = 'n'
                and c.conname like 'v7\_%'
        loop
            v_new_name := substr(v_name, 4);
            execute format('alter table pgqrs.%I rename constraint %I to %I', v_partition, v_name, v_new_name);
        end loop;
        execute format('alter table pgqrs.%I attach partition pgqrs.%I for values from (1) to (%L)',
                       v_table, v_partition, v_end);
    end loop;
end
$$;
