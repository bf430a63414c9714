-- pgqrs: tables and indexes. Statuses are text with named CHECKs (extensible in a migration).
--
-- The hot path is pgqrs.messages: one row per run that can still be delivered. Finishing a run moves its
-- message to pgqrs.messages_archive, so dequeue cost depends on live work only, never on history.

-- This file: workflow definitions, their queues and the workers that serve them.

create table if not exists pgqrs.workflows (
    workflow_id bigint generated always as identity primary key,
    name text not null constraint workflows_name_key unique,
    retry_policy jsonb not null,
    created_at timestamptz not null default pgqrs.now(),
    -- added in schema version 5: flow control (sql/workflows/limits.sql); NULL: no limit
    max_concurrency integer,
    max_concurrency_per_key integer,
    rate_limit jsonb
);
comment on table pgqrs.workflows is 'Workflow definitions: a name, its retry policy and its limits.';
comment on column pgqrs.workflows.max_concurrency is
'At most this many runs of the workflow hold a lease at once, across all workers (NULL: no limit).';
comment on column pgqrs.workflows.max_concurrency_per_key is
'At most this many runs with one concurrency key (trigger p_concurrency_key) hold a lease at once (NULL: no limit).';
comment on column pgqrs.workflows.rate_limit is
'{"limit": n, "period": interval}: at most n deliveries of its runs in any window of that period (NULL: no limit).';

create table if not exists pgqrs.queues (
    queue_id bigint generated always as identity primary key,
    name text not null constraint queues_name_key unique,
    workflow_id bigint not null constraint queues_workflow_id_key unique
    references pgqrs.workflows (workflow_id),
    created_at timestamptz not null default pgqrs.now()
);
comment on table pgqrs.queues is 'One queue per workflow definition, with the same name.';

create table if not exists pgqrs.workers (
    worker_id bigint generated always as identity primary key,
    name text not null constraint workers_name_key unique,
    hostname text not null,
    port integer,
    queue_id bigint not null references pgqrs.queues (queue_id),
    status text not null default 'ACTIVE'
    constraint workers_status_check check (status in ('ACTIVE', 'STOPPED')),
    started_at timestamptz not null default pgqrs.now(),
    heartbeat_at timestamptz not null default pgqrs.now()
);
comment on table pgqrs.workers is 'Registered worker processes; registering again by name takes the row back.';
