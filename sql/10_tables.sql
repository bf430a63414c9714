-- pgqrs: tables and indexes. Statuses are text with named CHECKs (extensible in a migration).
--
-- The hot path is pgqrs.messages: one row per run that can still be delivered. Finishing a run moves its
-- message to pgqrs.messages_archive, so dequeue cost depends on live work only, never on history.

create table if not exists pgqrs.workflows (
    workflow_id bigint generated always as identity primary key,
    name text not null constraint workflows_name_key unique,
    retry_policy jsonb not null,
    created_at timestamptz not null default pgqrs.now()
);
comment on table pgqrs.workflows is 'Workflow definitions: a name and its retry policy.';

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

create table if not exists pgqrs.runs (
    run_id bigint generated always as identity primary key,
    workflow_id bigint not null references pgqrs.workflows (workflow_id),
    status text not null
    constraint runs_status_check
    check (status in ('QUEUED', 'RUNNING', 'PAUSED', 'SUCCESS', 'ERROR', 'CANCELLED')),
    input jsonb not null,
    output jsonb,
    error jsonb,
    attempt integer not null default 0,
    idempotency_key text,
    created_at timestamptz not null default pgqrs.now(),
    started_at timestamptz,
    finished_at timestamptz,
    updated_at timestamptz not null default pgqrs.now(),
    constraint runs_idempotency_key unique (workflow_id, idempotency_key)
);
comment on table pgqrs.runs is 'Workflow runs. attempt counts deliveries to a worker.';
comment on column pgqrs.runs.attempt is 'How many times the run was delivered by dequeue.';

-- message_id = run_id: a run has exactly one message for its whole life.
-- visible_at is both "deliverable from" and, while leased, the lease expiry.
create table if not exists pgqrs.messages (
    message_id bigint primary key references pgqrs.runs (run_id),
    queue_id bigint not null references pgqrs.queues (queue_id),
    visible_at timestamptz not null,
    enqueued_at timestamptz not null default pgqrs.now(),
    read_count integer not null default 0,
    lease_token uuid,
    lease_duration interval,
    leased_at timestamptz,
    worker_id bigint,
    -- added in schema version 3 (sql/migrations/2--3.sql)
    failed_deliveries integer not null default 0,
    steps_in_flight jsonb
);
comment on table pgqrs.messages is
'Live queue entries (the hot path). A lease is (lease_token, visible_at): valid while visible_at > pgqrs.now().';
comment on column pgqrs.messages.read_count is
'Deliveries so far; dequeue returns it as the fencing token (strictly increasing per run).';
comment on column pgqrs.messages.failed_deliveries is
'Deliveries in a row that ended without progress (no step recorded): the lease expired, or the worker handed
the run back after an engine call failed. Bounded by the retry policy: see pgqrs._settle_lost_lease.';
comment on column pgqrs.messages.steps_in_flight is
'The step bodies running under the current lease, as the worker''s last heartbeat reported them: step id ->
start time. A lost lease is a failed attempt of these steps (pgqrs._settle_lost_lease).';

-- Matches the dequeue order exactly: equality on queue_id, then visible_at, message_id. No sort needed.
create index if not exists messages_dequeue_idx on pgqrs.messages (queue_id, visible_at, message_id);
create unique index if not exists messages_lease_token_idx on pgqrs.messages (lease_token)
where lease_token is not null;

create table if not exists pgqrs.messages_archive (
    message_id bigint primary key references pgqrs.runs (run_id),
    queue_id bigint not null references pgqrs.queues (queue_id),
    outcome text not null
    constraint messages_archive_outcome_check check (outcome in ('SUCCESS', 'DEAD_LETTER', 'CANCELLED')),
    enqueued_at timestamptz not null,
    archived_at timestamptz not null default pgqrs.now(),
    read_count integer not null,
    worker_id bigint
);
comment on table pgqrs.messages_archive is
'Retired messages of finished runs; outcome DEAD_LETTER marks runs that failed for good.';

create table if not exists pgqrs.steps (
    run_id bigint not null references pgqrs.runs (run_id),
    step_id text not null,
    step_order bigint generated always as identity,
    status text not null
    constraint steps_status_check check (status in ('RUNNING', 'SUCCESS', 'ERROR', 'PAUSED')),
    value jsonb,
    error jsonb,
    attempt integer not null default 0,
    retry_at timestamptz,
    paused_until timestamptz,
    started_at timestamptz,
    completed_at timestamptz,
    updated_at timestamptz not null default pgqrs.now(),
    -- added in schema version 2 (sql/migrations/1--2.sql): new columns go last, where ALTER TABLE puts them
    max_attempts integer,
    -- added in schema version 3: the size of value as stored by complete_step / update_step
    value_bytes integer,
    primary key (run_id, step_id)
);
comment on table pgqrs.steps is
'The step journal: one row per (run, step id). A SUCCESS row is final; attempt counts executions started.';
comment on column pgqrs.steps.max_attempts is
'The attempt limit of the step''s own retry policy (fail_step p_retry_policy) at its last failure; NULL when the
workflow''s policy applies. acquire_step refuses another attempt once attempt reaches the limit.';
comment on column pgqrs.steps.step_order is 'Increases with the first time a step is recorded (journal order).';
comment on column pgqrs.steps.value_bytes is
'Size in bytes of value (uncompressed), recorded with it: dequeue bounds the journal it hands out by the sum.';

-- The key that hides run ids on the pgqrs_runs channel (see pgqrs._notify_run_finished): random, one per
-- database, made by the first install and kept by every later one. Readable by pgqrs_admin only; members of
-- pgqrs_worker and pgqrs_client get it through pgqrs.runs_channel_key().
create table if not exists pgqrs.channel_key (
    one_row boolean primary key default true constraint channel_key_one_row check (one_row),
    secret bytea not null
);
comment on table pgqrs.channel_key is
'The key of the pgqrs_runs notification tokens (random, per database; one row). See pgqrs.runs_channel_key().';
-- gen_random_uuid() draws from the server's strong random source: two of them give 244 random bits
insert into pgqrs.channel_key (secret)
values (decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'))
on conflict do nothing;
