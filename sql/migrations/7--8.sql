-- pgqrs schema 7 -> 8 (issue 20: partitioned history).
-- Functions, views and grants are re-applied from the schema files after this file: only what re-running those
-- files cannot do is here.

-- ==== issue 18: no foreign key from runs to workflows (its check cost trigger_batch 3 µs per run; see
-- sql/tables/messages.sql). Workflows are never deleted, and only the engine writes runs.
alter table pgqrs.runs drop constraint if exists runs_workflow_id_fkey;
