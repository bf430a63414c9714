-- pgqrs: moving a run to another version of its workflow's code (ops).

-- A run records the version of the code that started it (runs.version), and only workers of that version take
-- it, so its journal is replayed by the code that wrote it. Moving it is the operator's assertion that the new
-- version replays that journal correctly ("you asserted compatibility": docs/operations.md, "Retention and
-- deploys"); nothing here can check that. A run being executed (RUNNING) goes on where it is: its next delivery
-- goes to the new version. A finished run cannot be moved, except a failed one: retry_run brings it back on the
-- version it has then.
create or replace function pgqrs.set_run_version(p_run bigint, p_version text)
returns text
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
set plan_cache_mode = force_generic_plan
as $$
declare
    v_run pgqrs.runs := pgqrs._lock_run(p_run);
    v_message pgqrs.messages;
begin
    if p_version is not null then
        perform pgqrs._check_name('version', p_version);
    end if;
    if v_run.status in ('SUCCESS', 'CANCELLED') then
        raise exception using
            errcode = 'QR003',
            message = format('run %s is %s: it will not run again', p_run, v_run.status),
            hint = 'Only a run that is not finished, or failed (ERROR, before retry_run), can be moved.';
    end if;
    update pgqrs.runs as r set version = p_version, updated_at = pgqrs.now() where r.run_id = p_run;
    update pgqrs.messages as m set version = p_version where m.message_id = p_run returning m.* into v_message;
    if v_message.visible_at <= pgqrs.now() then  -- ready now: wake the workers of the new version
        perform pgqrs._notify_queue(v_message.queue_id, pgqrs.now());
    end if;
    return v_run.version;
end
$$;
comment on function pgqrs.set_run_version(bigint, text) is
'Ops: moves run p_run to version p_version of its workflow''s code (runs.version; NULL: unversioned), asserting
that this code replays the steps the run has recorded. A RUNNING run finishes its delivery where it is. Returns
the version the run had. Raises QR002 (unknown run), QR003 (SUCCESS or CANCELLED), 22023 (a version not of 1-128
letters, digits and _ . : -).';
