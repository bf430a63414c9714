-- The set-up the pgTAP files share, in schema pgqrs_tests, so that each file states only its behaviour.
-- `make pgtap` loads this file with psql before pg_prove runs the tests (which skip pgtap/_helpers/); it is not
-- part of the engine (not in sql/, not in the wheel). Every helper works through the public API of schema pgqrs
-- and on the engine clock pgqrs.now(), so a test's `set local "pgqrs.now"` applies to what the helpers write.
-- Conventions: workflow `wf`, worker `w1` on its queue, leases of dequeue's default duration (30 seconds).
set client_min_messages = warning;
drop schema if exists pgqrs_tests cascade;
create schema pgqrs_tests;
comment on schema pgqrs_tests is 'Set-up helpers of the pgTAP tests (pgtap/_helpers/setup.sql); not the engine.';

-- The id of a registered worker (w1 by default); raises when no worker has that name.
create function pgqrs_tests.worker_id(p_name text default 'w1')
returns bigint
language plpgsql
stable
as $$
declare
    v_id bigint;
begin
    select w.worker_id into v_id from pgqrs.workers as w where w.name = p_name;
    if v_id is null then
        raise exception 'pgqrs_tests: no worker named %', p_name;
    end if;
    return v_id;
end
$$;

-- Workflow wf (with retry policy p_policy when given, else the defaults) and worker w1 on its queue.
-- Returns w1's id, e.g. `create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;`.
create function pgqrs_tests.setup_workflow(p_policy jsonb default null)
returns bigint
language plpgsql
as $$
begin
    perform pgqrs.create_workflow('wf', p_policy);
    return pgqrs.register_worker('w1', 'host', null, 'wf');
end
$$;

-- A new run of wf (input p_input) leased to w1: the row dequeue returned for it. Needs setup_workflow, and no
-- other message of wf visible (else dequeue could lease that one: raised as a broken set-up).
create function pgqrs_tests.leased_run(p_input jsonb default '{}')
returns table (
    message_id bigint, run_id bigint, input jsonb, attempt integer, lease_token uuid, steps jsonb,
    fencing_token bigint
)
language plpgsql
as $$
declare
    v_run bigint;
begin
    select t.run_id into v_run from pgqrs.trigger('wf', p_input) as t;
    return query
    select d.message_id, d.run_id, d.input, d.attempt, d.lease_token, d.steps, d.fencing_token
    from pgqrs.dequeue('wf', pgqrs_tests.worker_id()) as d;
    if not exists (select from pgqrs.messages as m where m.message_id = v_run and m.lease_token is not null) then
        raise exception 'pgqrs_tests.leased_run: run % was not the one leased', v_run;
    end if;
end
$$;

-- A leased run (as leased_run) in the middle of its body: the steps p_done recorded as SUCCESS in that order (each
-- with its own name as value), then step p_step acquired (RUNNING, attempt 1). Returns the lease row.
create function pgqrs_tests.run_at_step(p_step text, p_done text[] default '{}', p_input jsonb default '{}')
returns table (
    message_id bigint, run_id bigint, input jsonb, attempt integer, lease_token uuid, steps jsonb,
    fencing_token bigint
)
language plpgsql
as $$
declare
    v_done text;
begin
    select * into message_id, run_id, input, attempt, lease_token, steps, fencing_token
    from pgqrs_tests.leased_run(p_input);
    foreach v_done in array p_done loop
        perform pgqrs.complete_step(run_id, v_done, lease_token, to_jsonb(v_done));
    end loop;
    perform pgqrs.acquire_step(run_id, p_step, lease_token);
    return next;
end
$$;

-- A run paused by its worker at step p_step (acquired, then pause_step with p_timeout; NULL: until resume_run):
-- run and step PAUSED, lease released. Returns the run id.
create function pgqrs_tests.paused_run(p_step text, p_timeout interval default null)
returns bigint
language plpgsql
as $$
declare
    v_lease record;
begin
    select r.* into v_lease from pgqrs_tests.run_at_step(p_step) as r;
    perform pgqrs.pause_step(v_lease.run_id, p_step, v_lease.lease_token, p_timeout);
    return v_lease.run_id;
end
$$;

-- One run of wf in each status a worker sees live or finished, triggered in this order: `queued` (delayed an hour,
-- so QUEUED), `running` (leased to w1) and `succeeded` (leased, then completed with output 1). Needs
-- setup_workflow.
create function pgqrs_tests.queued_running_succeeded_runs()
returns table (queued bigint, running bigint, succeeded bigint)
language plpgsql
as $$
begin
    queued := (select t.run_id from pgqrs.trigger('wf', '{"n": 1}', p_delay => '1 hour') as t);
    running := (select t.run_id from pgqrs.trigger('wf', '{"n": 2}') as t);
    succeeded := (select t.run_id from pgqrs.trigger('wf', '{"n": 3}') as t);
    perform pgqrs.complete_run(d.run_id, d.lease_token, '1')
    from pgqrs.dequeue('wf', pgqrs_tests.worker_id(), 2) as d
    where d.run_id = succeeded;
    return next;
end
$$;

-- Every write a worker makes under a lease, as SQL text for run p_run and lease token p_token (NULL spelled null),
-- numbered in a fixed order: the fencing tests run each one and expect QR004.
create function pgqrs_tests.worker_writes(p_run bigint, p_token uuid)
returns table (n integer, call text, sql text)
language sql
stable
as $$
    select w.n, w.call, format(w.template, p_run, coalesce(quote_literal(p_token), 'null'))
    from (values
        (1, 'acquire_step', $q$select * from pgqrs.acquire_step(%s, 'b', %s::uuid)$q$),
        (2, 'complete_step', $q$select pgqrs.complete_step(%s, 'b', %s::uuid, '"late"')$q$),
        (3, 'fail_step', $q$select * from pgqrs.fail_step(%s, 'b', %s::uuid, '{"msg": "late"}')$q$),
        (4, 'pause_step', $q$select * from pgqrs.pause_step(%s, 'b', %s::uuid, '1 hour')$q$),
        (5, 'complete_run', $q$select pgqrs.complete_run(%s, %s::uuid, '"late"')$q$),
        (6, 'fail_run', $q$select pgqrs.fail_run(%s, %s::uuid, '{"msg": "late"}')$q$),
        (7, 'release_run', $q$select pgqrs.release_run(%s, %s::uuid)$q$),
        (8, 'sleep_step', $q$select * from pgqrs.sleep_step(%s, 'b', %s::uuid, '2100-01-01')$q$),
        (9, 'wait_event', $q$select * from pgqrs.wait_event(%s, 'b', %s::uuid, 'k')$q$),
        (10, 'recv', $q$select * from pgqrs.recv(%s, 'b', %s::uuid, 't')$q$),
        (11, 'start_child', $q$select pgqrs.start_child(%s, 'b', %s::uuid, 'wf')$q$),
        (12, 'wait_children', format($q$select * from pgqrs.wait_children(%%s, 'b', %%s::uuid, array[%s])$q$, p_run))
    ) as w (n, call, template)
$$;

-- Everything stored about run p_run: its row, its message (live or archived) and its steps, to prove that a refused
-- call changed nothing (compare a snapshot before and after).
create function pgqrs_tests.snapshot(p_run bigint)
returns jsonb
language sql
stable
as $$
    select jsonb_build_object(
        'run', (select to_jsonb(r) from pgqrs.runs as r where r.run_id = p_run),
        'message', (select to_jsonb(m) from pgqrs.messages as m where m.message_id = p_run),
        'archive', (select to_jsonb(a) from pgqrs.messages_archive as a where a.message_id = p_run),
        'steps', (select jsonb_agg(to_jsonb(s) order by s.step_order) from pgqrs.steps as s where s.run_id = p_run)
    )
$$;

-- Small partitions of the history for a test: every ranged partition of runs, steps and messages_archive is
-- detached (a plain table <table>_detached_<first id> until the test's rollback), then pgqrs.maintain_history
-- makes two of p_width run ids from the next run id on. Returns the first id of the first one.
create function pgqrs_tests.small_partitions(p_width bigint)
returns bigint
language plpgsql
as $$
declare
    v_first bigint;
    v_table text;
begin
    for v_first in select p.first_id from pgqrs._history_partitions() as p loop
        foreach v_table in array array['runs', 'steps', 'messages_archive'] loop
            execute format('alter table pgqrs.%I detach partition pgqrs.%I', v_table,
                           v_table || '_from_' || v_first);
            execute format('alter table pgqrs.%I rename to %I', v_table || '_from_' || v_first,
                           v_table || '_detached_' || v_first);
        end loop;
    end loop;
    perform pgqrs.maintain_history(p_width);
    return (select min(p.first_id) from pgqrs._history_partitions() as p);
end
$$;

-- A run of wf that finished SUCCESS now (pgqrs.now()), its message archived; its id.
create function pgqrs_tests.finished_run(p_input jsonb default '{}')
returns bigint
language plpgsql
as $$
declare
    v_run record;
begin
    select * into v_run from pgqrs_tests.leased_run(p_input);
    perform pgqrs.complete_run(v_run.run_id, v_run.lease_token, '{}');
    return v_run.run_id;
end
$$;
