-- pgqrs: the runs table.

create table if not exists pgqrs.runs (
    run_id bigint generated always as identity primary key,
    workflow_id bigint not null references pgqrs.workflows (workflow_id),
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
    constraint runs_idempotency_key unique (workflow_id, idempotency_key)
);
comment on table pgqrs.runs is 'Workflow runs. attempt counts deliveries to a worker.';
comment on column pgqrs.runs.attempt is 'How many times the run was delivered by dequeue.';
