-- pgqrs: cancelling a run.

-- Ops and clients: stop a run for good, whatever it is doing. A worker holding it finds out at its next write
-- (QR009) or heartbeat (the lease is reported lost) and stops the handler.
create or replace function pgqrs.cancel_run(p_run bigint, p_reason text default null)
returns text
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_run pgqrs.runs;
    v_now timestamptz := pgqrs.now();
begin
    if length(p_reason) > 1000 then
        raise exception using errcode = '22023', message = 'the reason must be at most 1000 characters';
    end if;
    perform from pgqrs.messages as m where m.message_id = p_run for update;  -- lock order: message, run
    v_run := pgqrs._lock_run(p_run);
    if v_run.status not in ('QUEUED', 'RUNNING', 'PAUSED', 'WAITING') then
        raise exception using
            errcode = 'QR003',
            message = format('run %s is %s and cannot be cancelled', p_run, v_run.status),
            hint = 'Only a run that has not finished can be cancelled.';
    end if;
    update pgqrs.runs as r
    set status = 'CANCELLED', finished_at = v_now, updated_at = v_now,
        error = jsonb_build_object('kind', 'cancelled', 'type', 'RunCancelled', 'reason', p_reason,
                                   'message', 'cancelled' || coalesce(': ' || p_reason, ''))
    where r.run_id = p_run;
    delete from pgqrs.waits as w where w.run_id = p_run;
    perform pgqrs._archive_message(p_run, 'CANCELLED');
    perform pgqrs._notify_run_finished(p_run);
    return 'CANCELLED';
end
$$;
comment on function pgqrs.cancel_run(bigint, text) is
'Cancels a run that has not finished (QUEUED, RUNNING, PAUSED or WAITING): CANCELLED with error {kind: cancelled,
reason}, its message archived as CANCELLED, result waiters notified. A worker''s later write on it raises QR009.
Returns the new status. Raises QR002 (unknown run), QR003 (already finished), 22023 (reason over 1000
characters).';
