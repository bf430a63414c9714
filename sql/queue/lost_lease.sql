-- pgqrs: settling a delivery whose lease was lost, and ending a run the engine gives up on.

-- A delivery found its run's previous lease expired: the worker died, hung or was cut off. That counts as a
-- failed attempt, so that a step body which kills its process (os._exit, the OOM killer) cannot be delivered
-- forever:
-- - the steps in flight during the lost delivery (p_lost_steps, as the worker's heartbeat last reported them,
--   and RUNNING rows started since p_lost_leased_at by acquire_step) become ERROR (kind lease_expired), each a
--   failed attempt under its retry policy; the lease timeout already served as the backoff, so the run is
--   delivered at once;
-- - otherwise (a step shorter than one heartbeat interval), the run's failed_deliveries grows, or starts again
--   at 1 when the lost delivery recorded a step (progress), bounded by the workflow's max_attempts.
-- When a bound is reached the run ends ERROR (kind lease_expired) as a dead letter; returns true then.
create or replace function pgqrs._settle_lost_lease(
    p_run bigint, p_lost_leased_at timestamptz, p_lost_steps jsonb
)
returns boolean
language plpgsql
volatile
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_now timestamptz := pgqrs._now();
    v_policy jsonb;
    v_steps text;
    v_exhausted boolean;
    v_count integer;
    v_error jsonb;
begin
    select w.retry_policy into strict v_policy
    from pgqrs.runs as r join pgqrs.workflows as w using (workflow_id) where r.run_id = p_run;
    v_error := jsonb_build_object('kind', 'lease_expired', 'type', 'LeaseExpired');
    -- a step that died is a failed attempt: the same attempt rule as the step calls (pgqrs._next_attempt)
    with in_flight as (
        select distinct on (f.step_id) f.step_id, f.started_at
        from (
            select k.key as step_id, k.value::timestamptz as started_at
            from jsonb_each_text(coalesce(p_lost_steps, '{}')) as k
            union all
            select s.step_id, s.started_at from pgqrs.steps as s
            where s.run_id = p_run and s.status = 'RUNNING' and s.started_at >= p_lost_leased_at
        ) as f
        order by f.step_id, f.started_at
    ), blamed as (
        insert into pgqrs.steps as s (run_id, step_id, status, error, attempt, started_at, updated_at)
        select p_run, f.step_id, 'ERROR',
               v_error || jsonb_build_object('message', format('the worker''s lease expired while step %s ran', f.step_id)),
               1, f.started_at, v_now
        from in_flight as f
        on conflict (run_id, step_id) do update
            set status = 'ERROR', error = excluded.error, attempt = pgqrs._next_attempt(s), retry_at = null,
                paused_until = null, started_at = excluded.started_at, updated_at = excluded.updated_at
            where s.status <> 'SUCCESS'
        returning s.step_id, s.attempt, pgqrs._max_attempts(v_policy, s.max_attempts) as bound
    )
    select string_agg(b.step_id, ', '), bool_or(b.attempt >= b.bound) into v_steps, v_exhausted from blamed as b;

    if v_steps is not null then
        v_error := v_error || jsonb_build_object(
            'step', v_steps,
            'message', format('the worker''s lease expired while step %s ran, and its attempts are used up', v_steps));
    else
        update pgqrs.messages as m
        set failed_deliveries = pgqrs._count_failed_delivery(p_run, p_lost_leased_at, m.failed_deliveries)
        where m.message_id = p_run
        returning m.failed_deliveries into v_count;
        v_exhausted := v_count >= pgqrs._max_attempts(v_policy);
        v_error := v_error || jsonb_build_object(
            'deliveries', v_count,
            'message', format('the worker''s lease expired in %s deliveries in a row without a step recorded', v_count));
    end if;
    if not v_exhausted then
        return false;
    end if;
    perform pgqrs._end_run_failed(p_run, v_error);
    return true;
end
$$;

-- The count of failed deliveries in a row after one more (leased at p_leased_at) ended without finishing its
-- run: 1 when that delivery recorded a step (progress: a long run whose worker dies now and then is not failed
-- for it, unless max_attempts is 1), else one more than p_count.
create or replace function pgqrs._count_failed_delivery(p_run bigint, p_leased_at timestamptz, p_count integer)
returns integer
language plpgsql
stable
set search_path = pg_catalog, pgqrs, pg_temp
as $$
begin
    if exists (select from pgqrs.steps as s where s.run_id = p_run and s.completed_at >= p_leased_at) then
        return 1;
    end if;
    return p_count + 1;
end
$$;

-- Ends a run ERROR with p_error, its message archived as a dead letter, when the engine gives up on it. A
-- child run counts down in its parent's wait. The caller took the parent's children lock first
-- (release_run), or holds the run's message already (dequeue: see the lock order in sql/waits/children.sql).
create or replace function pgqrs._end_run_failed(p_run bigint, p_error jsonb)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_queue_id bigint;
    v_parent bigint;
begin
    update pgqrs.runs as r
    set status = 'ERROR', error = p_error, finished_at = pgqrs._now(), updated_at = pgqrs._now()
    where r.run_id = p_run
    returning r.parent_run_id into v_parent;
    select m.queue_id into v_queue_id from pgqrs.messages as m where m.message_id = p_run;
    perform pgqrs._archive_message(p_run, 'DEAD_LETTER');
    perform pgqrs._notify_queue(v_queue_id, pgqrs._now());  -- a worker may be waiting for the slot this took
    if v_parent is not null then
        perform pgqrs._share_children_lock_of(v_parent);
        perform pgqrs._child_finished(p_run, v_parent);
    end if;
end
$$;
