-- pgqrs: the step journal handed out with a delivery.

-- The step journal handed to a worker with a delivery: step id -> {status, value, attempt, retry_at, order}, kind
-- for the step of a durable wait or a child workflow (steps.kind), so that a replay answers its recorded outcome
-- and ctx.step refuses its id without a round trip; kind is left out when NULL (nearly every step), to keep the
-- hot path's journal small. order (steps.step_order: when the step was first recorded) lets the worker check
-- that a replay asks for the steps in the order they were recorded (pgqrs/_replay_order.py: ReplayDrift).
-- Values past p_bytes (summed in journal order) are left out, marked "value_omitted": true, so no run's size
-- can make dequeue fail (jsonb holds at most 256 MB); the running sum (a window: a sort per run) is only
-- computed for the rare journal a plain sum finds past the bound (on every dequeue it cost 17 %).
-- Volatile on purpose: called by dequeue's lease-taking statement, its query takes a snapshot of its own, after
-- the message row is locked, so it holds every step recorded under the previous lease. Under the statement's
-- snapshot it would miss a write of the old holder that committed after that snapshot but before dequeue locked
-- the row (the write only locks that row, and a lock released by then is no conflict), and the new holder would
-- run a recorded step again (tests/test_dequeue_journal.py).
create or replace function pgqrs._journal(p_run bigint, p_bytes bigint)
returns jsonb
language plpgsql
volatile
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_total bigint;
begin
    select coalesce(sum(coalesce(s.value_bytes, octet_length(s.value::text))), 0) into v_total
    from pgqrs.steps as s where s.run_id = p_run;
    if v_total <= p_bytes then
        return coalesce((
            select jsonb_object_agg(
                s.step_id,
                case
                    when s.kind is null then
                        jsonb_build_object(
                            'status', s.status, 'value', s.value, 'attempt', s.attempt, 'retry_at', s.retry_at,
                            'order', s.step_order
                        )
                    else
                        jsonb_build_object(
                            'status', s.status, 'value', s.value, 'attempt', s.attempt, 'retry_at', s.retry_at,
                            'order', s.step_order, 'kind', s.kind
                        )
                end
            )
            from pgqrs.steps as s where s.run_id = p_run
        ), '{}'::jsonb);
    end if;
    return (
        select jsonb_object_agg(
            j.step_id,
            jsonb_build_object('status', j.status, 'value', case when j.fits then j.value end,
                               'attempt', j.attempt, 'retry_at', j.retry_at, 'order', j.step_order)
            || case when j.fits then '{}'::jsonb else '{"value_omitted": true}'::jsonb end
            || case when j.kind is null then '{}'::jsonb else jsonb_build_object('kind', j.kind) end
        )
        from (
            select s.step_id, s.status, s.value, s.attempt, s.retry_at, s.kind, s.step_order,
                   sum(coalesce(s.value_bytes, octet_length(s.value::text), 0))
                       over (order by s.step_order) <= p_bytes as fits
            from pgqrs.steps as s where s.run_id = p_run
        ) as j
    );
end
$$;
