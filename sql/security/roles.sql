-- pgqrs: roles and privileges (least privilege). Applied last on every install and upgrade; idempotent.
-- docs/security.md explains the roles and how to grant them to login roles.
--
--   pgqrs_owner   owns the schema and everything in it. No login role is a member: owning the engine's code
--                 (CREATE OR REPLACE, triggers, rules) is the power to run code as whoever calls it next,
--                 superusers included. Installs and upgrades run as a superuser.
--   pgqrs_admin   operates the engine: every function (retry_run and the other ops calls), the views, and
--                 read-only access to the tables for debugging. Owns nothing.
--   pgqrs_worker  runs workflows: defines them, registers, dequeues, writes steps and finishes runs.
--   pgqrs_client  starts runs, reads them, delivers outside events (update_step, resume_run).
--
-- Roles are NOLOGIN and cluster-wide; privileges are per database. The public functions are SECURITY DEFINER
-- with a pinned search_path (pg_catalog first, pg_temp last), owned by pgqrs_owner (neither superuser nor
-- anything else), so the roles need EXECUTE on the functions and nothing on the tables. PUBLIC gets nothing.
-- Every install revokes and re-grants, so an upgraded database ends with exactly these grants.

-- This file: the roles.

-- 1. The roles, created when missing (creating them needs CREATEROLE or superuser: only the first install;
-- role comments live outside the database and need CREATEROLE too, so they are set only then).
-- A concurrent install into another database of the cluster may create a role between the check and the
-- create (the install lock is per database): that one is then taken as it is.
do $$
begin
    if not exists (select from pg_catalog.pg_roles where rolname = 'pgqrs_owner') then
        begin
            create role pgqrs_owner nologin;
            comment on role pgqrs_owner is 'pgqrs: owns schema pgqrs; grant it to no login role';
        exception when duplicate_object or unique_violation then
            null;
        end;
    end if;
    if not exists (select from pg_catalog.pg_roles where rolname = 'pgqrs_admin') then
        begin
            create role pgqrs_admin nologin;
            comment on role pgqrs_admin is 'pgqrs: operators (ops calls, views, read-only tables)';
        exception when duplicate_object or unique_violation then
            null;
        end;
    end if;
    if not exists (select from pg_catalog.pg_roles where rolname = 'pgqrs_worker') then
        begin
            create role pgqrs_worker nologin;
            comment on role pgqrs_worker is 'pgqrs: worker processes (dequeue, steps, runs)';
        exception when duplicate_object or unique_violation then
            null;
        end;
    end if;
    if not exists (select from pg_catalog.pg_roles where rolname = 'pgqrs_client') then
        begin
            create role pgqrs_client nologin;
            comment on role pgqrs_client is 'pgqrs: applications (trigger, status, events)';
        exception when duplicate_object or unique_violation then
            null;
        end;
    end if;
end
$$;
