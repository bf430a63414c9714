-- pgqrs: bringing a failed run back (ops).

-- Ops: brings a failed run back. Steps that succeeded stay; the failed and unfinished ones are forgotten, so
-- their attempts start again from zero.
create or replace function pgqrs.retry_run(p_run bigint)
returns text
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
set plan_cache_mode = force_generic_plan
as $$
declare
    v_run pgqrs.runs;
    v_now timestamptz := pgqrs.now();
    v_queue_id bigint;
begin
    v_run := pgqrs._lock_run(p_run);
    if v_run.status <> 'ERROR' then
        raise exception using
            errcode = 'QR003',
            message = format('run %s is %s, not ERROR', p_run, v_run.status),
            hint = 'Only a failed run can be retried.';
    end if;
    delete from pgqrs.steps as s where s.run_id = p_run and s.status <> 'SUCCESS';
    update pgqrs.runs as r set status = 'QUEUED', error = null, finished_at = null, updated_at = v_now
    where r.run_id = p_run;
    with revived as (
        delete from pgqrs.messages_archive as a where a.message_id = p_run returning a.*
    )
    insert into pgqrs.messages (message_id, queue_id, visible_at, enqueued_at, read_count, version)
    select rv.message_id, rv.queue_id, v_now, rv.enqueued_at, rv.read_count, v_run.version from revived as rv
    returning queue_id into v_queue_id;
    perform pgqrs._notify_queue(v_queue_id, v_now);
    return 'QUEUED';
end
$$;
comment on function pgqrs.retry_run(bigint) is
'Ops: puts an ERROR run back in its queue (QUEUED, visible now, NOTIFY), keeping its successful steps and
forgetting failed ones, on its version (runs.version; pgqrs.set_run_version moves it). Returns the new status. Raises QR002 (unknown run), QR003 (not ERROR).';
