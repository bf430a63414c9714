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

-- 2. pgqrs_owner owns the schema and every object in it. Security definer functions then run as a role with
-- no rights outside this schema (not as the superuser that installed them). Objects the installer creates,
-- and those of older versions (owned by pgqrs_admin in version 2, by the installing superuser in version 1),
-- are handed over here. Identity sequences and indexes follow their table. pgqrs.install checks the catalog
-- for objects it did not create before it runs any of this (docs/security.md).
do $$
declare
    v_oid oid;
begin
    if not pg_catalog.pg_has_role(current_user, 'pgqrs_owner', 'member') then
        raise exception using
            errcode = '42501',
            message = format('%s may not install pgqrs: not a superuser', current_user),
            hint = 'Install and upgrade as a superuser (docs/security.md).';
    end if;
    if (select n.nspowner from pg_catalog.pg_namespace as n where n.nspname = 'pgqrs') <> 'pgqrs_owner'::regrole
        then
        alter schema pgqrs owner to pgqrs_owner;
    end if;
    -- ALTER TABLE ... OWNER also takes views, materialized views and foreign tables
    for v_oid in
        select c.oid from pg_catalog.pg_class as c
        where c.relnamespace = 'pgqrs'::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'f')
            and c.relowner <> 'pgqrs_owner'::regrole
        order by c.oid
    loop
        execute format('alter table %s owner to pgqrs_owner', v_oid::regclass);
    end loop;
    -- free-standing sequences (not an identity or serial column's, which follow their table)
    for v_oid in
        select c.oid from pg_catalog.pg_class as c
        where c.relnamespace = 'pgqrs'::regnamespace and c.relkind = 'S'
            and c.relowner <> 'pgqrs_owner'::regrole
            and not exists (
                select from pg_catalog.pg_depend as d
                where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype in ('a', 'i')
            )
        order by c.oid
    loop
        execute format('alter sequence %s owner to pgqrs_owner', v_oid::regclass);
    end loop;
    -- ALTER ROUTINE: functions, procedures and aggregates alike
    for v_oid in
        select p.oid from pg_catalog.pg_proc as p
        where p.pronamespace = 'pgqrs'::regnamespace and p.proowner <> 'pgqrs_owner'::regrole
        order by p.oid
    loop
        execute format('alter routine %s owner to pgqrs_owner', v_oid::regprocedure);
    end loop;
    -- free-standing types (enums, domains, composite types); a table's row type follows the table
    for v_oid in
        select t.oid from pg_catalog.pg_type as t
        left join pg_catalog.pg_class as c on c.oid = t.typrelid
        where t.typnamespace = 'pgqrs'::regnamespace and t.typowner <> 'pgqrs_owner'::regrole
            and t.typtype in ('c', 'd', 'e', 'r') and (c.oid is null or c.relkind = 'c')
        order by t.oid
    loop
        execute format('alter type %s owner to pgqrs_owner', v_oid::regtype);
    end loop;
end
$$;

-- 3. Start from nothing: PUBLIC and the three roles lose whatever they had (also grants of older versions,
-- and what pgqrs_admin had as the owner in version 2).
revoke all on schema pgqrs from public;
revoke all on all tables in schema pgqrs from public, pgqrs_admin, pgqrs_worker, pgqrs_client;
revoke all on all sequences in schema pgqrs from public, pgqrs_admin, pgqrs_worker, pgqrs_client;
revoke all on all functions in schema pgqrs from public, pgqrs_admin, pgqrs_worker, pgqrs_client;
revoke all on schema pgqrs from pgqrs_admin, pgqrs_worker, pgqrs_client;

-- pgqrs_admin operates the engine: every function, whatever its name (retry_run, later ops calls, the
-- internal ones), and SELECT on the tables and views for debugging from psql. USAGE only on the schema: no
-- CREATE, and owning nothing it cannot replace a function or a view, nor add a trigger, rule or policy.
grant usage on schema pgqrs to pgqrs_admin;
grant execute on all functions in schema pgqrs to pgqrs_admin;
grant select on all tables in schema pgqrs to pgqrs_admin;

-- 4. Grants. Functions by name, so every overload of a name gets the same grant and a changed signature
-- needs no edit here. A public function missing from this list is callable by pgqrs_admin only
-- (granted all of them above; tests/test_security.py fails until it is placed, and docs/security.md says
-- where).
grant usage on schema pgqrs to pgqrs_worker, pgqrs_client;

do $$
declare
    v_oid oid;
    v_role text;
begin
    for v_oid, v_role in
        select p.oid, g.role_name
        from pg_catalog.pg_proc as p
        join (values
            -- both: the clock, the version, reading runs, the NOTIFY channels
            ('now', 'pgqrs_worker'), ('now', 'pgqrs_client'),
            ('schema_version', 'pgqrs_worker'), ('schema_version', 'pgqrs_client'),
            ('run_status', 'pgqrs_worker'), ('run_status', 'pgqrs_client'),
            ('run_steps', 'pgqrs_worker'), ('run_steps', 'pgqrs_client'),
            ('queue_channel', 'pgqrs_worker'), ('queue_channel', 'pgqrs_client'),
            ('runs_channel_key', 'pgqrs_worker'), ('runs_channel_key', 'pgqrs_client'),
            -- worker: a worker process defines the workflows it runs (the seeds do it at start-up)
            ('create_workflow', 'pgqrs_worker'),
            ('register_worker', 'pgqrs_worker'), ('stop_worker', 'pgqrs_worker'),
            ('dequeue', 'pgqrs_worker'), ('heartbeat', 'pgqrs_worker'), ('archive', 'pgqrs_worker'),
            ('acquire_step', 'pgqrs_worker'), ('complete_step', 'pgqrs_worker'),
            ('fail_step', 'pgqrs_worker'), ('pause_step', 'pgqrs_worker'),
            ('complete_run', 'pgqrs_worker'), ('fail_run', 'pgqrs_worker'), ('release_run', 'pgqrs_worker'),
            -- client: start runs, deliver outside events
            ('trigger', 'pgqrs_client'), ('trigger_batch', 'pgqrs_client'),
            ('update_step', 'pgqrs_client'), ('resume_run', 'pgqrs_client'), ('cancel_run', 'pgqrs_client')
            -- pgqrs_admin only (granted every function above): retry_run (ops), and every function not named here
        ) as g (proname, role_name) on g.proname = p.proname
        where p.pronamespace = 'pgqrs'::regnamespace
        order by p.oid, g.role_name
    loop
        execute format('grant execute on function %s to %I', v_oid::regprocedure, v_role);
    end loop;
end
$$;

-- Views are read-only summaries for operators and dashboards: SELECT for both roles (the views read the
-- tables with the owner's rights; the clock they call, pgqrs.now(), is granted above).
do $$
declare
    v_oid oid;
begin
    for v_oid in
        select c.oid from pg_catalog.pg_class as c
        where c.relnamespace = 'pgqrs'::regnamespace and c.relkind in ('v', 'm')
        order by c.oid
    loop
        execute format('grant select on %s to pgqrs_worker, pgqrs_client', v_oid::regclass);
    end loop;
end
$$;
