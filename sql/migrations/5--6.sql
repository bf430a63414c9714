-- pgqrs schema 5 -> 6 (issue 19: the trace context of a run). Functions, views and grants are re-applied from
-- the schema files after this file: only what re-running those files cannot do is here.

-- ==== runs.trace_context: given to trigger, trigger_batch and start_child, returned by dequeue
alter table pgqrs.runs add column if not exists trace_context jsonb;
drop function if exists pgqrs.trigger(text, jsonb, text, interval, timestamptz, integer, text);
drop function if exists pgqrs.trigger_batch(text, jsonb, interval);
drop function if exists pgqrs.start_child(bigint, text, uuid, text, jsonb);
drop function if exists pgqrs.dequeue(text, bigint, integer, interval);  -- returns trace_context

-- ==== no foreign keys on the hot tables (sql/tables/messages.sql says why)
alter table pgqrs.messages drop constraint if exists messages_message_id_fkey;
alter table pgqrs.messages drop constraint if exists messages_queue_id_fkey;
alter table pgqrs.messages_archive drop constraint if exists messages_archive_message_id_fkey;
alter table pgqrs.messages_archive drop constraint if exists messages_archive_queue_id_fkey;
alter table pgqrs.steps drop constraint if exists steps_run_id_fkey;

-- ==== retention (issue 20): create_workflow gained p_retention (the table pgqrs.retention and the archive's
-- archived_at index are made by the schema files)
drop function if exists pgqrs.create_workflow(text, jsonb, integer, integer, jsonb);
