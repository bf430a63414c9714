-- pgqrs schema 6 -> 7 (issue 20: versions of workflow code, partitioned history; issue 21: pgqrs 0.15 drop-in).
-- Functions, views and grants are re-applied from the schema files after this file: only what re-running those
-- files cannot do is here.

-- ==== issue 21 (pgqrs 0.15 drop-in)
-- Nothing to migrate: run inputs may be any JSON value now, a change of the argument check pgqrs._check_input
-- (no table CHECK held them to objects); pgqrs.lease_run, pgqrs.release_worker_leases and the record views
-- (workflow_records, run_records, step_records, archived_messages) are new and applied from the schema files.
