-- pgqrs: the queue (live messages, the hot path) and the archive of retired messages.

-- message_id = run_id: a run has exactly one message for its whole life.
-- visible_at is both "deliverable from" and, while leased, the lease expiry.
-- No foreign keys on the hot tables (messages, messages_archive, steps since schema version 6; runs.workflow_id
-- since version 8): only the engine's functions write them, always for a run they have just made or locked (a
-- run for a workflow they have just read, and workflows are never deleted), and the row-level checks cost each
-- run more than anything else on its path but the commits (docs/benchmarks.md, "Foreign keys").
-- tests/fuzz_checks.py checks after every fuzzed call that no message or step is without its run and no run
-- without its workflow.
create table if not exists pgqrs.messages (
    message_id bigint primary key,
    queue_id bigint not null,
    visible_at timestamptz not null,
    enqueued_at timestamptz not null default pgqrs.now(),
    read_count integer not null default 0,
    lease_token uuid,
    lease_duration interval,
    leased_at timestamptz,
    worker_id bigint,
    -- added in schema version 3 (sql/migrations/2--3.sql)
    failed_deliveries integer not null default 0,
    steps_in_flight jsonb,
    -- added in schema version 5: flow control (trigger p_priority, p_concurrency_key)
    priority smallint not null default 0,
    concurrency_key text,
    -- added in schema version 7: the run's version (runs.version), here for dequeue's filter
    version text
);
comment on table pgqrs.messages is
'Live queue entries (the hot path). A lease is (lease_token, visible_at): valid while visible_at > pgqrs.now().';
comment on column pgqrs.messages.read_count is
'Deliveries so far; dequeue returns it as the fencing token (strictly increasing per run).';
comment on column pgqrs.messages.failed_deliveries is
'Deliveries in a row that ended without progress (no step recorded): the lease expired, or the worker handed
the run back after an engine call failed. Bounded by the retry policy: see pgqrs._settle_lost_lease.';
comment on column pgqrs.messages.priority is
'Higher is delivered first (-100..100, trigger p_priority); FIFO (visible_at, message_id) within a priority.';
comment on column pgqrs.messages.concurrency_key is
'The run''s key for its workflow''s max_concurrency_per_key (trigger p_concurrency_key); NULL: none.';
comment on column pgqrs.messages.version is
'A copy of runs.version, kept with it by the engine, so that dequeue picks a worker''s versions from the queue
alone.';
comment on column pgqrs.messages.steps_in_flight is
'The step bodies running under the current lease, as the worker''s last heartbeat reported them: step id ->
start time. A lost lease is a failed attempt of these steps (pgqrs._settle_lost_lease).';

-- Matches the dequeue order exactly: equality on queue_id and on one priority (dequeue takes the priorities
-- present from the highest down), then visible_at, message_id. No sort needed.
create index if not exists messages_ready_idx on pgqrs.messages (queue_id, priority desc, visible_at, message_id);
-- The leases a limited workflow holds, counted by dequeue (sql/workflows/limits.sql), per concurrency key too.
create index if not exists messages_leased_idx on pgqrs.messages (queue_id, concurrency_key)
where lease_token is not null;
create unique index if not exists messages_lease_token_idx on pgqrs.messages (lease_token)
where lease_token is not null;

create table if not exists pgqrs.messages_archive (
    message_id bigint primary key,
    queue_id bigint not null,
    outcome text not null
    constraint messages_archive_outcome_check check (outcome in ('SUCCESS', 'DEAD_LETTER', 'CANCELLED')),
    enqueued_at timestamptz not null,
    archived_at timestamptz not null default pgqrs.now(),
    read_count integer not null,
    worker_id bigint
) partition by range (message_id);  -- on the bounds of runs (sql/tables/runs.sql): message_id = run_id
create table if not exists pgqrs.messages_archive_default partition of pgqrs.messages_archive default;
comment on table pgqrs.messages_archive is
'Retired messages of finished runs; outcome DEAD_LETTER marks runs that failed for good.';
