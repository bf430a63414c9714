-- pgqrs: the runs table.

-- Partitioned by range of run_id since schema version 8, with steps and messages_archive on the same bounds,
-- so that a purge drops a whole partition of old finished runs instead of deleting its rows
-- (sql/retention/partitions.sql makes the partitions, sql/retention/drop_partitions.sql drops them). run_id
-- comes from a sequence (a partitioned table has no identity column in PostgreSQL 15). No foreign key points at runs:
-- dropping a partition would scan the referencing tables under an ACCESS EXCLUSIVE lock (tests/fuzz_checks.py
-- checks that no row is without its run). Every engine function whose statements touch the three tables plans
-- them once per session (plan_cache_mode = force_generic_plan, partitions pruned when the statement runs): left
-- to PL/pgSQL's default, a statement on a partitioned table is planned anew on every call (docs/benchmarks.md,
-- "Partitioned history"); pgtap/catalog/history_functions_plan_generically.sql checks it.
create table if not exists pgqrs.runs (
    run_id bigserial,
    workflow_id bigint not null,  -- no foreign key since schema version 8 (sql/tables/messages.sql says why)
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
    -- added in schema version 5: new columns go last, where ALTER TABLE puts them
    parent_run_id bigint,
    forked_from bigint,
    -- added in schema version 6
    trace_context jsonb,
    -- added in schema version 7
    version text,
    primary key (run_id)
) partition by range (run_id);
-- The safety net: a run id past the last ranged partition lands here (pgqrs.maintain_history keeps ranged
-- partitions ahead of the sequence, so it is normally empty). Never dropped: a purge deletes its rows.
create table if not exists pgqrs.runs_default partition of pgqrs.runs default;
comment on table pgqrs.runs is 'Workflow runs. attempt counts deliveries to a worker.';
comment on column pgqrs.runs.idempotency_key is
'The key given to trigger, a readable copy: pgqrs.idempotency_keys keeps it unique per workflow.';
comment on column pgqrs.runs.attempt is 'How many times the run was delivered by dequeue.';
comment on column pgqrs.runs.parent_run_id is
'The run whose pgqrs.start_child step started this run (a child workflow); NULL for a run started otherwise.';
comment on column pgqrs.runs.forked_from is 'The run this run was forked from (pgqrs.fork_run); NULL otherwise.';
comment on column pgqrs.runs.trace_context is
'The trace context of the caller that started the run (W3C trace context: {"traceparent": ..., "tracestate": ...}),
given to trigger; a child run gets its parent''s unless start_child is given another. NULL: none.';
comment on column pgqrs.runs.version is
'The version of the workflow code the run belongs to: given to trigger, else set by the first dequeue of a worker
that serves a version; only workers of that version take it (pgqrs.dequeue p_version). pgqrs.set_run_version
moves a run. NULL: an unversioned run, taken by unversioned workers.';
create index if not exists runs_parent_run_id_idx on pgqrs.runs (parent_run_id) where parent_run_id is not null;
-- the forks of a run (a purge clears their forked_from): few rows, so a small partial index
create index if not exists runs_forked_from_idx on pgqrs.runs (forked_from) where forked_from is not null;

-- The idempotency keys of runs started with one (pgqrs.trigger p_idempotency_key), unique per workflow: a unique
-- index on the partitioned runs would have to contain run_id. Removed with their run by a purge.
create table if not exists pgqrs.idempotency_keys (
    workflow_id bigint not null,
    idempotency_key text not null,
    run_id bigint not null,
    primary key (workflow_id, idempotency_key)
);
comment on table pgqrs.idempotency_keys is
'The idempotency key of each run started with one: unique per workflow (pgqrs.trigger p_idempotency_key).';
create index if not exists idempotency_keys_run_id_idx on pgqrs.idempotency_keys (run_id);
