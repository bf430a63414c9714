-- pgqrs: finishing a run (complete_run, fail_run).

create or replace function pgqrs._finish_run(
    p_run bigint, p_lease_token uuid, p_status text, p_output jsonb, p_error jsonb
)
returns text
language plpgsql
volatile
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_now timestamptz := pgqrs._now();
    v_token uuid;
    v_visible_at timestamptz;
    v_parent bigint;
begin
    -- a child run takes its parent's children lock first (the family's lock order, sql/waits/children.sql);
    -- pgqrs._lock_parent_of, inlined: this is the hot path
    select r.parent_run_id into v_parent from pgqrs.runs as r where r.run_id = p_run;
    if v_parent is not null then
        perform pgqrs._share_children_lock_of(v_parent);
    end if;
    -- the lease check of _lease, without its function call, as in complete_step; _lease raises the precise error
    select m.lease_token, m.visible_at into v_token, v_visible_at
    from pgqrs.messages as m where m.message_id = p_run for update;
    if not pgqrs._lease_held(v_token, v_visible_at, p_lease_token, v_now) then
        perform pgqrs._lease(p_run, p_lease_token);
    end if;
    update pgqrs.runs as r
    set status = p_status, output = p_output, error = p_error, finished_at = v_now, updated_at = v_now
    where r.run_id = p_run and r.status = 'RUNNING';
    if not found then
        raise exception using errcode = 'QR003', message = format('run %s is not RUNNING', p_run);
    end if;
    perform pgqrs._archive_message(p_run, case when p_status = 'SUCCESS' then 'SUCCESS' else 'DEAD_LETTER' end);
    if v_parent is not null then
        perform pgqrs._child_finished(p_run, v_parent);
    end if;
    return p_status;
end
$$;

create or replace function pgqrs.complete_run(p_run bigint, p_lease_token uuid, p_output jsonb default 'null')
returns text
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
set plan_cache_mode = force_generic_plan
as $$
begin
    return pgqrs._finish_run(p_run, p_lease_token, 'SUCCESS', coalesce(p_output, 'null'::jsonb), null);
end
$$;
comment on function pgqrs.complete_run(bigint, uuid, jsonb) is
'Finishes a RUNNING run as SUCCESS with its JSON output and archives its message, in one transaction; NOTIFY
pgqrs_runs with the run''s token (runs_channel_key). Returns the status. Raises QR004 (lease), QR003 (already finished), QR002.';

create or replace function pgqrs.fail_run(p_run bigint, p_lease_token uuid, p_error jsonb default '{}')
returns text
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
set plan_cache_mode = force_generic_plan
as $$
begin
    return pgqrs._finish_run(p_run, p_lease_token, 'ERROR', null, coalesce(p_error, '{}'::jsonb));
end
$$;
comment on function pgqrs.fail_run(bigint, uuid, jsonb) is
'Finishes a RUNNING run as ERROR and archives its message as DEAD_LETTER, in one transaction; NOTIFY
pgqrs_runs with the run''s token (runs_channel_key). Returns the status. Raises QR004 (lease), QR003 (already finished), QR002.';
