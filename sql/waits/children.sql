-- pgqrs: child workflows. pgqrs.start_child starts a run as a child of the caller's run, once per step id;
-- pgqrs.wait_children waits until the given children have all finished; the child that finishes last wakes
-- its parent in the transaction that finishes it (pgqrs._child_finished), so no one polls.
--
-- Lock order in a family. A run's children lock (a transaction-level advisory lock on the run) comes before
-- the rows of that run (message, then run, as everywhere) and before the rows of its children:
-- - a child's finish (complete_run, fail_run, fail_step, release_run, cancel_run, a dead letter) takes its
--   parent's children lock SHARED (pgqrs._lock_parent_of), then its own rows, then the parent's rows if it
--   wakes the parent: siblings finishing at once do not wait for each other;
-- - wait_children takes the run's own children lock EXCLUSIVE (pgqrs._lock_children_of), then its lease;
-- - cancel_run goes down the family: a run's children lock exclusive, its rows, then each child the same way.
-- The lock serialises a parent's wait with its children's finishes: a child that finishes while the parent
-- begins to wait either committed first (the wait sees it finished) or waits for the lock and then counts
-- itself down in the wait the parent committed (the count on the parent's waits row serialises the siblings
-- that finish while it waits). One path breaks the order: dequeue dead-letters a run whose leases kept
-- expiring while it holds the run's message; racing a cancel_run of the parent, PostgreSQL's deadlock
-- detector ends one of the two (40P01), and the dequeue or the cancel is simply tried again.

create or replace function pgqrs._lock_children_of(p_run bigint)
returns void
language sql
volatile
set search_path = pg_catalog, pg_temp
as $$
    select pg_advisory_xact_lock(hashtextextended('pgqrs.children:' || p_run, 0))
$$;

-- The same lock, shared: what a child takes on its parent before it finishes.
create or replace function pgqrs._share_children_lock_of(p_run bigint)
returns void
language sql
volatile
set search_path = pg_catalog, pg_temp
as $$
    select pg_advisory_xact_lock_shared(hashtextextended('pgqrs.children:' || p_run, 0))
$$;

-- A run about to finish takes its parent's children lock (shared) first, if it has a parent: returns the parent.
create or replace function pgqrs._lock_parent_of(p_run bigint)
returns bigint
language plpgsql
volatile
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_parent bigint;
begin
    select r.parent_run_id into v_parent from pgqrs.runs as r where r.run_id = p_run;  -- never changes
    if v_parent is not null then
        perform pgqrs._share_children_lock_of(v_parent);
    end if;
    return v_parent;
end
$$;

create or replace function pgqrs.start_child(
    p_run bigint, p_step_id text, p_lease_token uuid, p_workflow text, p_input jsonb default '{}',
    p_trace_context jsonb default null
)
returns bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
set plan_cache_mode = force_generic_plan
as $$
declare
    v_now timestamptz := pgqrs.now();
    v_step pgqrs.steps;
    v_child bigint;
    v_value jsonb;
begin
    perform pgqrs._check_step_id(p_step_id);
    perform pgqrs._lease(p_run, p_lease_token);
    perform pgqrs._lock_run(p_run);
    v_step := pgqrs._wait_step(p_run, p_step_id, 'child');
    if v_step.status = 'SUCCESS' then  -- started before (a replay, or a retry after a crash): the same child
        return (v_step.value ->> 'run_id')::bigint;
    end if;
    select t.run_id into v_child
    from pgqrs.trigger(
        p_workflow, coalesce(p_input, '{}'::jsonb),
        p_trace_context => coalesce(
            p_trace_context, (select r.trace_context from pgqrs.runs as r where r.run_id = p_run)
        )
    ) as t;
    update pgqrs.runs as r set parent_run_id = p_run where r.run_id = v_child;
    v_value := jsonb_build_object('run_id', v_child, 'workflow', p_workflow);
    insert into pgqrs.steps (
        run_id, step_id, status, kind, value, value_bytes, attempt, started_at, completed_at, updated_at
    )
    values (p_run, p_step_id, 'SUCCESS', 'child', v_value, pg_column_size(v_value), 1, v_now, v_now, v_now);
    return v_child;
end
$$;
comment on function pgqrs.start_child(bigint, text, uuid, text, jsonb, jsonb) is
'Starts a run of p_workflow with p_input as a child of p_run (runs.parent_run_id), recorded as step p_step_id
(kind child, value {run_id, workflow}) in the same transaction: a replay or a retry of the step gets the same
child, never a second one. The child''s trace context is p_trace_context, else the parent''s. Returns the child''s
run id. Raises QR004 (lease), QR002/QR003/QR009, QR010 (step id
of another kind of step), QR001 (unknown workflow), 22023 (step id, input).';

-- The outcome of each child in p_children, in that order: {run_id, status, output, error}.
create or replace function pgqrs._children_outcomes(p_children bigint[])
returns jsonb
language sql
stable
set search_path = pg_catalog, pgqrs, pg_temp
as $$
    select jsonb_agg(
        jsonb_build_object('run_id', r.run_id, 'status', r.status, 'output', r.output, 'error', r.error)
        order by c.ord
    )
    from unnest(p_children) with ordinality as c (run_id, ord)
    join pgqrs.runs as r on r.run_id = c.run_id
$$;

create or replace function pgqrs.wait_children(p_run bigint, p_step_id text, p_lease_token uuid, p_children bigint[])
returns table (status text, children jsonb)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
declare
    v_message pgqrs.messages;
    v_step pgqrs.steps;
    v_stranger bigint;
    v_pending integer;
    v_outcomes jsonb;
begin
    perform pgqrs._check_step_id(p_step_id);
    if
        array_ndims(p_children) is distinct from 1 or cardinality(p_children) > 100000
        or array_position(p_children, null) is not null
    then
        raise exception using
            errcode = '22023', message = 'wait_children needs a list of 1-100000 child run ids, none NULL';
    end if;
    perform pgqrs._lock_children_of(p_run);
    v_message := pgqrs._lease(p_run, p_lease_token);
    perform pgqrs._lock_run(p_run);
    v_step := pgqrs._wait_step(p_run, p_step_id, 'children');
    if v_step.run_id is not null and v_step.value -> 'children' is distinct from to_jsonb(p_children) then
        raise exception using
            errcode = 'QR010',
            message = format('step %s of run %s waits for other children', p_step_id, p_run),
            hint = 'A replay must wait for the children it waited for, in the same order.';
    end if;
    if v_step.status = 'SUCCESS' then  -- recorded: a replay returns the same outcomes
        return query select 'DONE'::text, v_step.value -> 'outcomes';
        return;
    end if;

    -- a child of this run is one its start_child steps recorded (a fork's copies of them included)
    select x.run_id into v_stranger from (
        select c.run_id from unnest(p_children) as c (run_id)
        except
        select (s.value ->> 'run_id')::bigint from pgqrs.steps as s where s.run_id = p_run and s.kind = 'child'
    ) as x
    limit 1;
    if found then
        raise exception using
            errcode = 'QR011',
            message = format('run %s is not a child of run %s', v_stranger, p_run),
            hint = 'Wait for the runs this run started with pgqrs.start_child.';
    end if;

    select count(*) into v_pending from pgqrs.runs as r
    where r.run_id = any(p_children) and r.status not in ('SUCCESS', 'ERROR', 'CANCELLED');
    if v_pending = 0 then
        v_outcomes := pgqrs._children_outcomes(p_children);
        perform pgqrs._end_wait(p_run, p_step_id, 'children',
                                jsonb_build_object('children', p_children, 'outcomes', v_outcomes));
        return query select 'DONE'::text, v_outcomes;
        return;
    end if;
    perform pgqrs._begin_wait(p_run, v_message.queue_id, p_step_id, 'children', null, null,
                              jsonb_build_object('children', p_children));
    update pgqrs.waits as w set children = p_children, pending = v_pending where w.run_id = p_run;
    return query select 'WAITING'::text, null::jsonb;
end
$$;
comment on function pgqrs.wait_children(bigint, text, uuid, bigint[]) is
'Waits at step p_step_id until every run in p_children (1-100000 ids of runs that p_run started with
pgqrs.start_child) has finished. Returns (DONE, outcomes): a JSON array, in the order of p_children, of
{run_id, status, output, error} (SUCCESS, ERROR or CANCELLED), recorded as the step''s outcome (a replay returns
the same); or (WAITING, NULL): the step and the run WAITING (pgqrs.waiting_runs: kind children, pending), the
lease released; the child that finishes last makes the run visible in its own transaction. Raises QR004 (lease),
QR002/QR003/QR009, QR010 (step id of another kind of step, or a replay with other children), QR011 (not a child
of p_run), 22023 (step id, list).';

-- A child of p_parent finished (the caller holds p_parent's children lock, shared): counted down in the parent's
-- wait for it, if any; the last one wakes the parent (QUEUED, visible now, listeners notified), whose replay of
-- wait_children then reads and records the outcomes. A count that reaches 0 too early (a finished child
-- retried with retry_run and finished again) costs one delivery: wait_children checks again and waits on.
create or replace function pgqrs._child_finished(p_child bigint, p_parent bigint)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_now timestamptz := pgqrs.now();
    v_pending integer;
    v_queue_id bigint;
begin
    update pgqrs.waits as w set pending = w.pending - 1
    where w.run_id = p_parent and w.kind = 'children' and p_child = any(w.children)
    returning w.pending into v_pending;
    if v_pending is null or v_pending > 0 then
        return;
    end if;
    update pgqrs.messages as m set visible_at = v_now
    where m.message_id = p_parent and m.lease_token is null
    returning m.queue_id into v_queue_id;
    update pgqrs.runs as r set status = 'QUEUED', updated_at = v_now where r.run_id = p_parent and r.status = 'WAITING';
    delete from pgqrs.waits as w where w.run_id = p_parent;
    if v_queue_id is not null then
        perform pgqrs._notify_queue(v_queue_id, v_now);
    end if;
end
$$;

-- The children of p_run, for `pgqrs run` and operators: each child run started by p_run's start_child steps.
create or replace function pgqrs.run_children(p_run bigint)
returns table (
    run_id bigint, workflow text, status text, step_id text, created_at timestamptz, finished_at timestamptz
)
language plpgsql
stable
security definer
set search_path = pg_catalog, pgqrs, pg_temp
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
begin
    perform pgqrs.run_status(p_run);
    return query
    select r.run_id, w.name, r.status, s.step_id, r.created_at, r.finished_at
    from pgqrs.runs as r
    join pgqrs.workflows as w using (workflow_id)
    left join pgqrs.steps as s
        on s.run_id = p_run and s.kind = 'child' and (s.value ->> 'run_id')::bigint = r.run_id
    where r.parent_run_id = p_run
    order by r.run_id;
end
$$;
comment on function pgqrs.run_children(bigint) is
'The child runs of p_run (started by its pgqrs.start_child steps), oldest first: run id, workflow, status, the
step that started it, created and finished. Raises QR002 for an unknown run.';
