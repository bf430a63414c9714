-- pgqrs schema 4 -> 5 (issue 15: child workflows, the origin of a fork). Functions, views and grants are
-- re-applied from the schema files after this file: only what re-running those files cannot do is here.

-- ==== child workflows: a run's parent, the step kinds child (pgqrs.start_child) and children
-- (pgqrs.wait_children), the wait kind children with the child runs it waits for
alter table pgqrs.runs add column if not exists parent_run_id bigint references pgqrs.runs (run_id);
alter table pgqrs.steps drop constraint if exists steps_kind_check;
alter table pgqrs.steps add constraint steps_kind_check
check (kind in ('sleep', 'event', 'message', 'child', 'children'));
-- (pgqrs.waits is new in version 4: an upgrade from an earlier version gets it whole from the schema files)
alter table if exists pgqrs.waits drop constraint if exists waits_kind_check;
alter table if exists pgqrs.waits add constraint waits_kind_check
check (kind in ('sleep', 'event', 'message', 'children'));
alter table if exists pgqrs.waits add column if not exists children bigint[];
alter table if exists pgqrs.waits add column if not exists pending integer;

-- ==== the run a fork was made from (pgqrs.fork_run)
alter table pgqrs.runs add column if not exists forked_from bigint references pgqrs.runs (run_id);

-- ==== pgqrs.run_status returns parent_run_id and forked_from: a changed return type
drop function if exists pgqrs.run_status(bigint);

-- ==== flow control (issue 16): workflow limits, a run's priority and concurrency key. The deliveries a rate
-- limit counts (pgqrs.rate_limit_log) is a new table, made by the schema files.
alter table pgqrs.workflows add column if not exists max_concurrency integer;
alter table pgqrs.workflows add column if not exists max_concurrency_per_key integer;
alter table pgqrs.workflows add column if not exists rate_limit jsonb;
alter table pgqrs.messages add column if not exists priority smallint not null default 0;
alter table pgqrs.messages add column if not exists concurrency_key text;
drop index if exists pgqrs.messages_dequeue_idx;  -- replaced by messages_ready_idx (priority first)
drop function if exists pgqrs.trigger(text, jsonb, text, interval, timestamptz);
drop function if exists pgqrs.create_workflow(text, jsonb);
