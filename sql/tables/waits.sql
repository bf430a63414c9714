-- pgqrs: durable waits. What a WAITING run waits for, and the events runs wait on.

-- One row per run that waits (or last waited): a run waits for one thing at a time. Written by
-- pgqrs.sleep_step and pgqrs.wait_event, removed when the wait ends (the wait call returns its outcome, or
-- pgqrs.emit_event wakes the run); pgqrs.waiting_runs lists the rows of runs that are WAITING.
create table if not exists pgqrs.waits (
    run_id bigint primary key,  -- no foreign key (sql/tables/runs.sql says why)
    step_id text not null,
    kind text not null constraint waits_kind_check check (kind in ('sleep', 'event', 'message', 'children')),
    key text,
    until timestamptz,
    since timestamptz not null,
    -- added in schema version 5: the child runs a wait of kind children waits for, and how many of them had
    -- not finished (each one's finish counts it down; the last wakes the run)
    children bigint[],
    pending integer
);
comment on table pgqrs.waits is
'What a WAITING run waits for: kind sleep (until), event or message (key, until = the timeout or NULL) or
children (the child runs), and since when.';
create index if not exists waits_event_key_idx on pgqrs.waits (key) where kind = 'event';

-- Events: the first emit of a key wins and stays (pgqrs.emit_event).
create table if not exists pgqrs.events (
    key text primary key,
    payload jsonb not null,
    emitted_at timestamptz not null default pgqrs.now()
);
comment on table pgqrs.events is 'Emitted events, one per key: the first emit wins (pgqrs.emit_event).';

-- Messages sent to a run (pgqrs.send), taken in FIFO order per topic by its recv steps (pgqrs.recv): each
-- is consumed by exactly one recv step (consumed_by), in the transaction that records that step.
create table if not exists pgqrs.run_messages (
    message_id bigint generated always as identity primary key,
    run_id bigint not null,  -- no foreign key (sql/tables/runs.sql says why)
    topic text not null,
    payload jsonb not null,
    idempotency_key text,
    sent_at timestamptz not null default pgqrs.now(),
    consumed_by text,
    consumed_at timestamptz
);
comment on table pgqrs.run_messages is
'Messages to runs (pgqrs.send): FIFO per run and topic (message_id); consumed_by the recv step that took it.';
create index if not exists run_messages_unconsumed_idx on pgqrs.run_messages (run_id, topic, message_id)
where consumed_at is null;
create unique index if not exists run_messages_idempotency_key_idx on pgqrs.run_messages (run_id, idempotency_key)
where idempotency_key is not null;
