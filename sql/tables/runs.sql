-- pgqrs: the runs table.

create table if not exists pgqrs.runs (
    run_id bigint generated always as identity primary key,
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
    parent_run_id bigint references pgqrs.runs (run_id),
    forked_from bigint references pgqrs.runs (run_id),
    -- added in schema version 6
    trace_context jsonb,
    -- added in schema version 7
    version text,
    constraint runs_idempotency_key unique (workflow_id, idempotency_key)
);
comment on table pgqrs.runs is 'Workflow runs. attempt counts deliveries to a worker.';
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
