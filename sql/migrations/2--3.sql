-- pgqrs schema 2 -> 3 (issue 13: the engine under hostile conditions). Functions, views and grants are
-- re-applied from sql/*.sql after this file: only what re-running those files cannot do is here.
-- One section per concern, so that each can be read (and amended until version 3 ships) on its own.

-- ==== bounded deliveries, the step in flight, cancel, fencing token

-- ==== the step journal handed to a worker is bounded

-- ==== notification channels
-- pgqrs_runs carries a keyed token of the run id, no longer '<run>:<status>' (table pgqrs.channel_key is
-- created by sql/10_tables.sql): the status argument is gone
drop function if exists pgqrs._notify_run_finished(bigint, text);

-- ==== ownership and privileges
