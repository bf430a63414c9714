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
    -- no key update: the foreign-key checks of inserts that reference the run (waits, run_messages, a child's
    -- parent_run_id: key share on the run) must not wait for it.
    select * into v_run from pgqrs.runs as r where r.run_id = p_run for no key update;
    if v_run.run_id is null then
        raise exception using errcode = 'QR002', message = format('unknown run: %s', coalesce(p_run::text, 'NULL'));
    end if;
    return v_run;
end
$$;
