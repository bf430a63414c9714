-- pgqrs schema 2 -> 3 (issue 13: the engine under hostile conditions). Functions, views and grants are
-- re-applied from sql/*.sql after this file: only what re-running those files cannot do is here.
-- One section per concern, so that each can be read (and amended until version 3 ships) on its own.

-- ==== bounded deliveries, the step in flight, cancel, fencing token

-- ==== the step journal handed to a worker is bounded

-- ==== notification channels

-- ==== ownership and privileges

