-- pgqrs: the step journal.

create table if not exists pgqrs.steps (
    run_id bigint not null,  -- no foreign key (sql/tables/messages.sql says why)
    step_id text not null,
    step_order bigserial,  -- a sequence: no identity column on a partitioned table
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
    -- added in schema version 2 (sql/migrations/1--2.sql): new columns go last, where ALTER TABLE puts them
    max_attempts integer,
    -- added in schema version 3: the size of value as stored by complete_step / update_step
    value_bytes integer,
    -- added in schema version 4: what kind of step a durable wait recorded (NULL: an ordinary step)
    kind text constraint steps_kind_check check (kind in ('sleep', 'event', 'message', 'child', 'children')),
    primary key (run_id, step_id)
) partition by range (run_id);  -- on the bounds of runs (sql/tables/runs.sql)
create table if not exists pgqrs.steps_default partition of pgqrs.steps default;
comment on table pgqrs.steps is
'The step journal: one row per (run, step id). A SUCCESS row is final; attempt counts executions started.';
comment on column pgqrs.steps.max_attempts is
'The attempt limit of the step''s own retry policy (fail_step p_retry_policy) at its last failure; NULL when the
workflow''s policy applies. acquire_step refuses another attempt once attempt reaches the limit.';
comment on column pgqrs.steps.step_order is 'Increases with the first time a step is recorded (journal order).';
comment on column pgqrs.steps.value_bytes is
'Size in bytes of value (uncompressed), recorded with it: dequeue bounds the journal it hands out by the sum.';
comment on column pgqrs.steps.kind is
'NULL for an ordinary step; sleep (pgqrs.sleep_step), event (pgqrs.wait_event), message (pgqrs.recv) or
children (pgqrs.wait_children) for a durable wait; child for the start of a child run (pgqrs.start_child). A
step id keeps its kind: a call of another kind on it raises QR010.';
