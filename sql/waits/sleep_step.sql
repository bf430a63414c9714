-- pgqrs: durable sleep.

-- The step records the wake-up time (its value, while WAITING and once SUCCESS): a replay before it sleeps
-- until the recorded time (not a new one), a replay after it goes on at once.
create or replace function pgqrs.sleep_step(p_run bigint, p_step_id text, p_lease_token uuid, p_until timestamptz)
returns table (status text, until timestamptz)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
declare
    v_now timestamptz := pgqrs.now();
    v_message pgqrs.messages;
    v_step pgqrs.steps;
    v_until timestamptz;
begin
    perform pgqrs._check_step_id(p_step_id);
    if p_until is null or not isfinite(p_until) then
        raise exception using
            errcode = '22023', message = format('sleep until must be a finite time, got %s', coalesce(p_until::text, 'NULL'));
    end if;
    v_message := pgqrs._lease(p_run, p_lease_token);
    perform pgqrs._lock_run(p_run);
    v_step := pgqrs._wait_step(p_run, p_step_id, 'sleep');
    if v_step.run_id is not null then
        v_until := (v_step.value #>> '{}')::timestamptz;  -- the recorded wake-up wins over a replay's new one
    elsif p_until > v_now + interval '365 days' then
        raise exception using
            errcode = '22023', message = format('a sleep may last at most 365 days, until %s asked', p_until);
    else
        v_until := p_until;
    end if;
    if v_step.status = 'SUCCESS' then
        return query select 'SUCCESS'::text, v_until;
    elsif v_until <= v_now then
        perform pgqrs._end_wait(p_run, p_step_id, 'sleep', to_jsonb(v_until));
        return query select 'SUCCESS'::text, v_until;
    else
        perform pgqrs._begin_wait(p_run, v_message.queue_id, p_step_id, 'sleep', null, v_until, to_jsonb(v_until));
        return query select 'WAITING'::text, v_until;
    end if;
end
$$;
comment on function pgqrs.sleep_step(bigint, text, uuid, timestamptz) is
'Durable sleep at step p_step_id until p_until (at most 365 days ahead). Due (or recorded as done): the step
is SUCCESS with the wake-up time and (SUCCESS, until) returns, the caller goes on. Otherwise the step and the run
are WAITING (pgqrs.waiting_runs: kind sleep), the lease released and the message visible at the wake-up time
(listeners notified): returns (WAITING, until) and the caller stops. A replay keeps the recorded wake-up time.
Raises QR004 (lease), QR002/QR003/QR009, QR010 (step id of another kind of step), 22023 (step id, NULL or
infinite p_until, more than 365 days).';
