-- pgqrs: the run row lock.

-- Locks and returns the run row, raising QR002 for an unknown run.
create or replace function pgqrs._lock_run(p_run bigint)
returns pgqrs.runs
language plpgsql
volatile
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_run pgqrs.runs;
begin
    -- no key update: the foreign-key checks of step inserts (key share on the run) must not wait for it, or
    -- update_step (run, then step) and complete_step (step insert, then the run's key) deadlock.
    select * into v_run from pgqrs.runs as r where r.run_id = p_run for no key update;
    if v_run.run_id is null then
        raise exception using errcode = 'QR002', message = format('unknown run: %s', coalesce(p_run::text, 'NULL'));
    end if;
    return v_run;
end
$$;
