-- pgqrs: a step id keeps its kind.
--
-- The step protocol (acquire_step, complete_step, fail_step, pause_step, update_step) writes ordinary steps
-- (steps.kind NULL). A step id a durable wait or a child workflow recorded (sleep, event, message, child,
-- children) is refused with QR010, as a wait on an ordinary step's id is (pgqrs._wait_step): the write would
-- overwrite the wait's outcome with a value its replay cannot read, or run a body where the run waits.

-- Raises QR010 for step p_step_id of run p_run, recorded as kind p_kind (not NULL), asked for as an ordinary
-- step. The callers test the kind first (inline, no function call on their usual path).
create or replace function pgqrs._refuse_step_kind(p_run bigint, p_step_id text, p_kind text)
returns void
language plpgsql
stable
set search_path = pg_catalog, pgqrs, pg_temp
as $$
begin
    raise exception using
        errcode = 'QR010',
        message = format('step %s of run %s is %s, not %s', p_step_id, p_run,
                         pgqrs._step_kind_name(p_kind), pgqrs._step_kind_name(null)),
        hint = 'Give each step of a run its own id; a replay must ask for the steps it recorded.';
end
$$;
