-- pgqrs: the one clock.

-- Who may move the clock. Any session can set a custom setting such as pgqrs.now, so without this check a
-- worker could move its own clock back to keep a lease alive, or forward to make a retry due early. The
-- override is honoured only when the session user (which a non-superuser cannot change; SET ROLE does not)
-- is a superuser or a member of pgqrs_admin; otherwise it is refused loudly rather than silently ignored.
-- Only called when the setting is non-empty, so the normal path of pgqrs.now() never reads pg_roles.
create or replace function pgqrs._clock_override(p_value text)
returns timestamptz
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
    if not coalesce((select r.rolsuper from pg_catalog.pg_roles as r where r.rolname = session_user), false)
        and not exists (
            select from pg_catalog.pg_roles as a
            where a.rolname = 'pgqrs_admin' and pg_catalog.pg_has_role(session_user, a.oid, 'member')
        ) then
        raise exception using
            errcode = '42501',
            message = format('pgqrs.now is set, but session user %s may not move the pgqrs clock', session_user),
            hint = 'The clock override is for tests: only superusers and members of pgqrs_admin may use it. '
                'RESET pgqrs.now.';
    end if;
    return p_value::timestamptz;
end
$$;

-- pgqrs.now() for the engine's own functions: the same clock, inlined into its caller (LANGUAGE sql, no SET,
-- not security definer: the planner folds it into the caller's expression, whose search_path is pinned; its
-- functions and operators are named by schema), so the hot paths, which read the clock in every call, pay no
-- function call for it. Not for views or column defaults,
-- which callers outside the engine evaluate: those use pgqrs.now().
create or replace function pgqrs._now()
returns timestamptz
language sql
stable
as $$
    select case
        when pg_catalog.length(pg_catalog.current_setting('pgqrs.now', true)) operator(pg_catalog.>) 0
            then pgqrs._clock_override(pg_catalog.current_setting('pgqrs.now', true))
        else pg_catalog.statement_timestamp()
    end
$$;

-- One clock for every timestamp the engine writes or compares. Tests (and only tests) move it with
-- `set pgqrs.now = '2030-01-01 00:00+00'` (superusers and pgqrs_admin members only, see _clock_override);
-- otherwise it is the start time of the current statement, which is stable within a statement so the
-- planner can use it in index conditions. Security definer so that the internal _clock_override needs no
-- grant; session_user is unaffected by it.
-- PL/pgSQL, not SQL: a SQL function that cannot be inlined (security definer, SET) is parsed and planned again
-- in every transaction that calls it, ~30 us a call, and every engine call makes a few; PL/pgSQL keeps its
-- plans for the session. The same holds for the other small helpers on the hot path (_notify_queue,
-- _archive_message, complete_run): see bench/profile_sql.py.
create or replace function pgqrs.now()
returns timestamptz
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    return pgqrs._now();
end
$$;
comment on function pgqrs.now() is
'The engine clock: statement_timestamp(), or the setting pgqrs.now when set (tests; honoured for superusers and
members of pgqrs_admin only, anyone else gets 42501).';
