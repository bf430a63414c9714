-- pgqrs: recording a failed step attempt.

create or replace function pgqrs.fail_step(
    p_run bigint,
    p_step_id text,
    p_lease_token uuid,
    p_error jsonb,
    p_transient boolean default true,
    p_retry_after interval default null,
    p_retry_policy jsonb default null,
    p_duration interval default null
)
returns table (run_status text, attempt integer, retry_at timestamptz)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
declare
    v_message pgqrs.messages;
    v_policy jsonb;
    v_step pgqrs.steps;
    v_now timestamptz := pgqrs.now();
    v_retry_at timestamptz;
    v_error jsonb := coalesce(p_error, '{}'::jsonb);
    v_parent bigint;
begin
    perform pgqrs._check_step_id(p_step_id);
    perform pgqrs._check_interval('retry_after', p_retry_after, interval '0', interval '30 days');
    perform pgqrs._check_interval('duration', p_duration, interval '0', interval '365 days');
    -- the failure may end the run: a child run takes its parent's children lock first (sql/waits/children.sql)
    v_parent := pgqrs._lock_parent_of(p_run);
    v_message := pgqrs._lease(p_run, p_lease_token);
    -- _retry_policy(NULL) returns the defaults, not NULL: the workflow's policy applies unless the call gives one.
    select case when p_retry_policy is null then w.retry_policy else pgqrs._retry_policy(p_retry_policy) end
    into v_policy
    from pgqrs.runs as r join pgqrs.workflows as w using (workflow_id)
    where r.run_id = p_run
    for no key update of r;

    insert into pgqrs.steps as s (run_id, step_id, status, error, attempt, max_attempts, started_at, updated_at)
    values (
        p_run, p_step_id, 'ERROR', v_error, 1,
        case when p_retry_policy is not null then pgqrs._max_attempts(v_policy) end,
        v_now - coalesce(p_duration, interval '0'), v_now
    )
    on conflict (run_id, step_id) do update
        set status = 'ERROR', error = excluded.error, attempt = pgqrs._next_attempt(s), paused_until = null,
            max_attempts = excluded.max_attempts,
            started_at = case when s.status = 'RUNNING' then s.started_at else excluded.started_at end,
            updated_at = excluded.updated_at
        where s.status <> 'SUCCESS' and s.kind is null
    returning * into v_step;
    if v_step.run_id is null then
        select * into strict v_step from pgqrs.steps as s where s.run_id = p_run and s.step_id = p_step_id;
        if v_step.kind is not null then  -- a wait's (or a child's) step (steps/kinds.sql)
            perform pgqrs._refuse_step_kind(p_run, p_step_id, v_step.kind);
        end if;
        raise exception using
            errcode = 'QR005',
            message = format('step %s of run %s already succeeded; it cannot fail', p_step_id, p_run);
    end if;

    if coalesce(p_transient, true) and v_step.attempt < pgqrs._max_attempts(v_policy) then
        v_retry_at := v_now + coalesce(p_retry_after, pgqrs._retry_delay(v_policy, v_step.attempt));
        update pgqrs.steps as s set retry_at = v_retry_at where s.run_id = p_run and s.step_id = p_step_id;
        update pgqrs.runs as r set status = 'QUEUED', error = v_error, updated_at = v_now where r.run_id = p_run;
        perform pgqrs._release_lease(p_run, v_message.queue_id, v_retry_at);
        return query select 'QUEUED'::text, v_step.attempt, v_retry_at;
        return;
    end if;

    update pgqrs.runs as r
    set status = 'ERROR', error = v_error, finished_at = v_now, updated_at = v_now
    where r.run_id = p_run;
    perform pgqrs._archive_message(p_run, 'DEAD_LETTER');
    if v_parent is not null then
        perform pgqrs._child_finished(p_run, v_parent);
    end if;
    return query select 'ERROR'::text, v_step.attempt, null::timestamptz;
end
$$;
comment on function pgqrs.fail_step(bigint, text, uuid, jsonb, boolean, interval, jsonb, interval) is
'Records a failed step attempt. Transient with attempts left (policy: p_retry_policy, else the workflow''s): step
ERROR, run QUEUED, message visible at retry_at = now + p_retry_after (0-30 days) or the backoff, lease released.
Otherwise: run ERROR and its message archived as DEAD_LETTER, in the same transaction. Returns (run_status,
attempt, retry_at). Raises QR004 (lease), QR005 (step already succeeded), QR002/QR003, QR010 (the step id was
recorded by a durable wait or a child workflow), 22023.';
