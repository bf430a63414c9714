-- pgqrs: how step attempts are counted.

-- An attempt is counted once: by acquire_step (status RUNNING), or by the write that ends an attempt the
-- worker did not acquire (the Python ctx.step skips acquire for steps absent from the journal). A pause is not
-- a failure: running a paused step again after its timeout does not count another attempt, so a step that
-- polls by pausing keeps its retry budget.
create or replace function pgqrs._next_attempt(p_step pgqrs.steps)
returns integer
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_step.status in ('RUNNING', 'PAUSED') then
        return p_step.attempt;
    end if;
    return coalesce(p_step.attempt, 0) + 1;
end
$$;
