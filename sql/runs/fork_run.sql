-- pgqrs: forking a run (ops): run it again from a chosen step, after a fix.

-- A new run of the same workflow and input, QUEUED and visible now (one NOTIFY, as trigger). The original's
-- SUCCESS steps recorded before p_from_step are copied into it as SUCCESS, so its worker replays them without
-- running their bodies and executes p_from_step and everything after it again. The original is only read.
-- "Recorded before" is the journal order, steps.step_order (the order steps were first recorded, as run_steps
-- lists them): no two steps of a run share one, so there is no tie. A step before p_from_step that did not
-- succeed (failed, paused or running when the fork was taken) is not copied: its body runs again in the fork.
-- Each copy keeps value, value_bytes, attempt, started_at, completed_at (the attempts and times that produced
-- the value) and kind (a finished sleep or event wait replays as one); the copies get new step_order values in
-- the original's order.
-- A copied start_child step names the original's child, which the fork then waits for as its own: it must have
-- finished (its finish wakes only the run that started it), else fork_run refuses.
-- p_from_step NULL copies no step: a plain re-run. Any status can be forked; forking a live run (RUNNING,
-- PAUSED, QUEUED) leaves it running, and the steps from p_from_step on then run in both.
create or replace function pgqrs.fork_run(p_run bigint, p_from_step text default null)
returns bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
set plan_cache_mode = force_generic_plan
as $$
declare
    v_now timestamptz := pgqrs.now();
    v_run pgqrs.runs;
    v_from_order bigint;
    v_new_run bigint;
    v_queue_id bigint;
    v_child pgqrs.steps;
    v_version text;  -- the fork's runs.version
begin
    -- read, not locked: forking never waits for (nor blocks) the original's worker
    select * into v_run from pgqrs.runs as r where r.run_id = p_run;
    if v_run.run_id is null then
        raise exception using errcode = 'QR002', message = format('unknown run: %s', coalesce(p_run::text, 'NULL'));
    end if;
    if p_from_step is not null then
        perform pgqrs._check_step_id(p_from_step);
        select s.step_order into v_from_order
        from pgqrs.steps as s where s.run_id = p_run and s.step_id = p_from_step;
        if v_from_order is null then
            raise exception using
                errcode = '22023',
                message = format('run %s has no step %s', p_run, p_from_step),
                hint = 'Fork from a step the run recorded (pgqrs.run_steps).';
        end if;
        select s.* into v_child
        from pgqrs.steps as s join pgqrs.runs as c on c.run_id = (s.value ->> 'run_id')::bigint
        where
            s.run_id = p_run and s.kind = 'child' and s.status = 'SUCCESS' and s.step_order < v_from_order
            and c.status not in ('SUCCESS', 'ERROR', 'CANCELLED')
        order by s.step_order limit 1;
        if found then
            raise exception using
                errcode = 'QR003',
                message = format('child run %s (step %s of run %s) has not finished', v_child.value ->> 'run_id',
                                 v_child.step_id, p_run),
                hint = format('Fork from step %s (a new child is started) or once the child has finished.',
                              v_child.step_id);
        end if;
    end if;

    -- copied steps were recorded by the original's version of the code: the fork stays on it (set_run_version
    -- moves it); a fork with nothing copied is a fresh run, for whichever version takes it first
    if exists (
        select from pgqrs.steps as s where s.run_id = p_run and s.status = 'SUCCESS' and s.step_order < v_from_order
    ) then
        v_version := v_run.version;
    end if;
    insert into pgqrs.runs (workflow_id, status, input, created_at, updated_at, forked_from, version)
    values (v_run.workflow_id, 'QUEUED', v_run.input, v_now, v_now, p_run, v_version)
    returning run_id into v_new_run;

    insert into pgqrs.steps (
        run_id, step_id, status, value, attempt, started_at, completed_at, updated_at, value_bytes, kind
    )
    select v_new_run, s.step_id, 'SUCCESS', s.value, s.attempt, s.started_at, s.completed_at, v_now,
           s.value_bytes, s.kind
    from pgqrs.steps as s
    -- v_from_order NULL (p_from_step NULL) matches no step
    where s.run_id = p_run and s.status = 'SUCCESS' and s.step_order < v_from_order
    order by s.step_order;

    select q.queue_id into v_queue_id from pgqrs.queues as q where q.workflow_id = v_run.workflow_id;
    insert into pgqrs.messages (message_id, queue_id, visible_at, enqueued_at, version)
    values (v_new_run, v_queue_id, v_now, v_now, v_version);
    perform pgqrs._notify_queue(v_queue_id, v_now);
    return v_new_run;
end
$$;
comment on function pgqrs.fork_run(bigint, text) is
'Ops: starts a new run of p_run''s workflow with its input (QUEUED, visible now, NOTIFY) whose steps are copies of
p_run''s SUCCESS steps recorded before p_from_step (journal order); NULL copies none. p_run is unchanged. Returns
the new run id, whose runs.forked_from is p_run. Raises QR002 (unknown run), QR003 (a start_child step before
p_from_step names a child that has not finished), 22023 (p_from_step is not a step of the run, or malformed).';
