-- pgqrs: how long the finished runs of a workflow are kept (sql/retention/purge.sql).

create table if not exists pgqrs.retention (
    workflow_id bigint primary key references pgqrs.workflows (workflow_id),
    keep_for interval not null,
    applied_at timestamptz  -- the last time a worker purged for this workflow (pgqrs.apply_retention)
);
comment on table pgqrs.retention is
'Per workflow: its finished runs are removed keep_for after they finished, by workers (pgqrs.apply_retention).';

-- The purge walks the oldest finished runs first: every finished run has its archived message (the archive is
-- written once, so this index costs an insert, never a non-HOT update of runs).
create index if not exists messages_archive_archived_at_idx on pgqrs.messages_archive (archived_at);
