-- pgqrs schema 8 -> 9 (issue 18: performance, second round).
-- Functions, views and grants are re-applied from the schema files after this file: only what re-running those
-- files cannot do is here.

-- A run's end is announced by pgqrs._archive_message itself (sql/queue/archive.sql): one nested call less on
-- every finish.
drop function if exists pgqrs._notify_run_finished(bigint);
