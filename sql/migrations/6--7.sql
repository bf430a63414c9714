-- pgqrs schema 6 -> 7 (issue 20: versions of workflow code, partitioned history; issue 21: pgqrs 0.15 drop-in).
-- Functions, views and grants are re-applied from the schema files after this file: only what re-running those
-- files cannot do is here.

-- ==== issue 20: versions of workflow code (runs.version, with a copy on messages for dequeue's filter)
alter table pgqrs.runs add column if not exists version text;
alter table pgqrs.messages add column if not exists version text;
drop function if exists pgqrs.trigger(text, jsonb, text, interval, timestamptz, integer, text, jsonb);
drop function if exists pgqrs.trigger_batch(text, jsonb, interval, jsonb);
drop function if exists pgqrs.dequeue(text, bigint, integer, interval);
drop function if exists pgqrs._ready_messages(bigint, timestamptz, integer);
drop function if exists pgqrs._pick_within_limits(bigint, integer, integer, jsonb, integer, timestamptz);
drop function if exists pgqrs.run_status(bigint);  -- returns version

-- ==== issue 21 (pgqrs 0.15 drop-in)
-- Nothing to migrate: run inputs may be any JSON value now, a change of the argument check pgqrs._check_input
-- (no table CHECK held them to objects); pgqrs.lease_run, pgqrs.release_worker_leases and the record views
-- (workflow_records, run_records, step_records, archived_messages) are new and applied from the schema files.
