-- pgqrs: durable waits. What a WAITING run waits for, and the events runs wait on.

-- One row per run that waits (or last waited): a run waits for one thing at a time. Written by
-- pgqrs.sleep_step and pgqrs.wait_event, removed when the wait ends (the wait call returns its outcome, or
-- pgqrs.emit_event wakes the run); pgqrs.waiting_runs lists the rows of runs that are WAITING.
create table if not exists pgqrs.waits (
    run_id bigint primary key references pgqrs.runs (run_id),
    step_id text not null,
    kind text not null constraint waits_kind_check check (kind in ('sleep', 'event')),
    key text,
    until timestamptz,
    since timestamptz not null
);
comment on table pgqrs.waits is
'What a WAITING run waits for: kind sleep (until) or event (key, until = the timeout or NULL), and since when.';
create index if not exists waits_event_key_idx on pgqrs.waits (key) where kind = 'event';

-- Events: the first emit of a key wins and stays (pgqrs.emit_event).
create table if not exists pgqrs.events (
    key text primary key,
    payload jsonb not null,
    emitted_at timestamptz not null default pgqrs.now()
);
comment on table pgqrs.events is 'Emitted events, one per key: the first emit wins (pgqrs.emit_event).';
