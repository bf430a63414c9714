-- pgqrs: cancelling a run, and its unfinished children with it.

-- Ops and clients: stop a run for good, whatever it is doing. A worker holding it finds out at its next write
-- (QR009) or heartbeat (the lease is reported lost) and stops the handler. Its unfinished child runs are
-- cancelled in the same transaction (their children too), and a child run that is cancelled counts down in
-- its parent's wait for it (the parent's wait_child then raises ChildFailed).
create or replace function pgqrs.cancel_run(p_run bigint, p_reason text default null)
returns text
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
set plan_cache_mode = force_generic_plan
as $$
declare
    v_parent bigint;
begin
    if length(p_reason) > 1000 then
        raise exception using errcode = '22023', message = 'the reason must be at most 1000 characters';
    end if;
    v_parent := pgqrs._lock_parent_of(p_run);  -- first: the family's lock order (sql/waits/children.sql)
    if not pgqrs._cancel_family(p_run, p_reason) then
        raise exception using
            errcode = 'QR003',
            message = format('run %s is %s and cannot be cancelled', p_run, (select r.status from pgqrs.runs as r where r.run_id = p_run)),
            hint = 'Only a run that has not finished can be cancelled.';
    end if;
    if v_parent is not null then
        perform pgqrs._child_finished(p_run, v_parent);
    end if;
    return 'CANCELLED';
end
$$;
comment on function pgqrs.cancel_run(bigint, text) is
'Cancels a run that has not finished (QUEUED, RUNNING, PAUSED or WAITING): CANCELLED with error {kind: cancelled,
reason}, its message archived as CANCELLED, result waiters notified; its unfinished child runs (pgqrs.start_child)
and theirs are cancelled with it (reason: the parent was cancelled), and a parent waiting for this run is
counted down (pgqrs.wait_children). A worker''s later write on it raises QR009. Returns the new status. Raises
QR002 (unknown run), QR003 (already finished), 22023 (reason over 1000 characters).';

-- Cancels p_run and, top-down, its unfinished descendants: each run's children lock, then its rows (message,
-- run), then its children; holding a run's rows, no child of it can start or finish meanwhile, so the list of
-- its children read then is complete. Returns false (changing nothing) when p_run has finished already.
create or replace function pgqrs._cancel_family(p_run bigint, p_reason text)
returns boolean
language plpgsql
volatile
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_run pgqrs.runs;
    v_now timestamptz := pgqrs.now();
    v_child bigint;
begin
    perform pgqrs._lock_children_of(p_run);
    perform from pgqrs.messages as m where m.message_id = p_run for update;  -- lock order: message, run
    v_run := pgqrs._lock_run(p_run);
    if v_run.status not in ('QUEUED', 'RUNNING', 'PAUSED', 'WAITING') then
        return false;
    end if;
    update pgqrs.runs as r
    set status = 'CANCELLED', finished_at = v_now, updated_at = v_now,
        error = jsonb_build_object('kind', 'cancelled', 'type', 'RunCancelled', 'reason', p_reason,
                                   'message', 'cancelled' || coalesce(': ' || p_reason, ''))
    where r.run_id = p_run;
    delete from pgqrs.waits as w where w.run_id = p_run;
    perform pgqrs._archive_message(p_run, 'CANCELLED');
    for v_child in
        select r.run_id from pgqrs.runs as r
        where r.parent_run_id = p_run and r.status in ('QUEUED', 'RUNNING', 'PAUSED', 'WAITING')
        order by r.run_id
    loop
        perform pgqrs._cancel_family(v_child, format('parent run %s was cancelled', p_run));
    end loop;
    return true;
end
$$;
