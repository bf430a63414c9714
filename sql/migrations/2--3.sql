-- pgqrs schema 2 -> 3 (issue 13: the engine under hostile conditions). Functions, views and grants are
-- re-applied from sql/*.sql after this file: only what re-running those files cannot do is here.
-- One section per concern, so that each can be read (and amended until version 3 ships) on its own.

-- ==== bounded deliveries, the step in flight, cancel, fencing token
alter table pgqrs.messages add column if not exists failed_deliveries integer not null default 0;
alter table pgqrs.messages add column if not exists steps_in_flight jsonb;
-- dequeue returns fencing_token, run_status current_step_since: new return types
drop function if exists pgqrs.dequeue(text, bigint, integer, interval);
drop function if exists pgqrs.run_status(bigint);
-- heartbeat reports the step in flight, release_run takes the cause of a failed engine call
drop function if exists pgqrs.heartbeat(bigint, uuid[]);
drop function if exists pgqrs.release_run(bigint, uuid);

-- ==== the step journal handed to a worker is bounded
alter table pgqrs.steps add column if not exists value_bytes integer;

-- ==== notification channels
-- pgqrs_runs carries a keyed token of the run id, no longer '<run>:<status>' (table pgqrs.channel_key is
-- created by sql/10_tables.sql): the status argument is gone
drop function if exists pgqrs._notify_run_finished(bigint, text);

-- ==== ownership and privileges
-- pgqrs_owner takes over the schema from pgqrs_admin: sql/90_grants.sql creates the role and hands every object
-- over (pgqrs.install first refuses objects a pgqrs_admin member could have planted, docs/security.md). The
-- role comment of pgqrs_admin, set when version 2 created it, no longer says what it does (installs run as a
-- superuser, so this may set it). An upgrade from version 1 meets no such role yet: 90_grants.sql creates it.
do $$
begin
    if exists (select from pg_catalog.pg_roles where rolname = 'pgqrs_admin') then
        comment on role pgqrs_admin is 'pgqrs: operators (ops calls, views, read-only tables)';
    end if;
end
$$;
