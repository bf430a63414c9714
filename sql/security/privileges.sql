-- pgqrs: privileges: revoke everything, then grant what each role needs (see security/roles.sql).

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
            -- a worker (or a test, a request handler) leases one given run; runs of a gone worker released
            ('lease_run', 'pgqrs_worker'), ('release_worker_leases', 'pgqrs_worker'),
            -- client: start runs, deliver outside events
            ('trigger', 'pgqrs_client'), ('trigger_batch', 'pgqrs_client'),
            ('update_step', 'pgqrs_client'), ('resume_run', 'pgqrs_client'), ('cancel_run', 'pgqrs_client'),
            -- durable waits: a worker sleeps and waits, clients and workers emit events
            ('sleep_step', 'pgqrs_worker'), ('wait_event', 'pgqrs_worker'),
            ('emit_event', 'pgqrs_client'), ('emit_event', 'pgqrs_worker'),
            -- messages to a run: clients and workers send, a worker receives under its lease
            ('send', 'pgqrs_client'), ('send', 'pgqrs_worker'), ('recv', 'pgqrs_worker'),
            -- child workflows: a worker starts and waits for children under its lease; both read them
            ('start_child', 'pgqrs_worker'), ('wait_children', 'pgqrs_worker'),
            ('run_children', 'pgqrs_worker'), ('run_children', 'pgqrs_client'),
            -- schedules: clients define them, workers fire them (every worker, on its own); both read cron
            ('create_schedule', 'pgqrs_client'), ('drop_schedule', 'pgqrs_client'),
            ('set_schedule_enabled', 'pgqrs_client'), ('fire_schedules', 'pgqrs_worker'),
            ('cron_next', 'pgqrs_worker'), ('cron_next', 'pgqrs_client'),
            -- retention: workers apply the workflows' retention and make the history's partitions on their own
            ('apply_retention', 'pgqrs_worker'), ('maintain_history', 'pgqrs_worker')
            -- pgqrs_admin only (granted every function above): retry_run, fork_run, set_workflow_limits,
            -- purge_runs, set_workflow_retention and set_run_version (ops), and every function not named here
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
