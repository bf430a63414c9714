-- pgqrs schema 3 -> 4 (issue 15: durable waits). Functions, views and grants are re-applied from the schema
-- files after this file: only what re-running those files cannot do is here. The new tables (pgqrs.waits,
-- pgqrs.events: sql/tables/waits.sql) are created by the schema files.

-- ==== run and step status WAITING, the kind of a step that waits
alter table pgqrs.runs drop constraint if exists runs_status_check;
alter table pgqrs.runs add constraint runs_status_check
check (status in ('QUEUED', 'RUNNING', 'PAUSED', 'WAITING', 'SUCCESS', 'ERROR', 'CANCELLED'));
alter table pgqrs.steps drop constraint if exists steps_status_check;
alter table pgqrs.steps add constraint steps_status_check
check (status in ('RUNNING', 'SUCCESS', 'ERROR', 'PAUSED', 'WAITING'));
alter table pgqrs.steps add column if not exists kind text
constraint steps_kind_check check (kind in ('sleep', 'event'));

-- ==== messages to a run (pgqrs.send, pgqrs.recv): a step of kind message. The table pgqrs.run_messages and
-- pgqrs.waits (whose kind CHECK allows message) are created by the schema files.
alter table pgqrs.steps drop constraint if exists steps_kind_check;
alter table pgqrs.steps add constraint steps_kind_check check (kind in ('sleep', 'event', 'message'));
