-- pgqrs: resuming a paused run.

create or replace function pgqrs.resume_run(p_run bigint)
returns text
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
set plan_cache_mode = force_generic_plan
as $$
declare
    v_message pgqrs.messages;
    v_run pgqrs.runs;
begin
    select * into v_message from pgqrs.messages as m where m.message_id = p_run for update;
    v_run := pgqrs._lock_run(p_run);
    if v_run.status <> 'PAUSED' then
        raise exception using
            errcode = 'QR003',
            message = format('run %s is %s, not PAUSED', p_run, v_run.status),
            hint = 'Only a paused run can be resumed.';
    end if;
    update pgqrs.runs as r set status = 'QUEUED', updated_at = pgqrs.now() where r.run_id = p_run;
    update pgqrs.messages as m set visible_at = pgqrs.now() where m.message_id = p_run;
    perform pgqrs._notify_queue(v_message.queue_id, pgqrs.now());
    return 'QUEUED';
end
$$;
comment on function pgqrs.resume_run(bigint) is
'Resumes a PAUSED run: QUEUED and visible now, with a NOTIFY. Returns the new status. Raises QR002 (unknown run),
QR003 (not PAUSED: racing a pause timeout, exactly one of resume and re-delivery wins).';
