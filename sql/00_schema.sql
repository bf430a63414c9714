-- pgqrs: schema, version, the one clock, and the argument checks every public function shares.
-- Applied in file-name order; every statement is safe to run twice (install is idempotent).

-- Not `create schema if not exists`: that checks CREATE on the database even when the schema exists, and an
-- upgrade by a member of pgqrs_owner (docs/security.md) needs no rights on the database.
do $$
begin
    if to_regnamespace('pgqrs') is null then
        create schema pgqrs;
    end if;
end
$$;
comment on schema pgqrs is 'pgqrs: a durable workflow engine. Call the functions; never write the tables.';

create table if not exists pgqrs.schema_version (
    version integer primary key,
    installed_at timestamptz not null default clock_timestamp()
);
comment on table pgqrs.schema_version is 'Schema versions applied to this database, one row each.';

-- The schema version these files make. Bump it together with each new sql/migrations/<n>--<n+1>.sql
-- (docs/upgrades.md); tests/test_upgrade.py checks that both install paths agree.
insert into pgqrs.schema_version (version) values (3) on conflict do nothing;

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

-- One clock for every timestamp the engine writes or compares. Tests (and only tests) move it with
-- `set pgqrs.now = '2030-01-01 00:00+00'` (superusers and pgqrs_admin members only, see _clock_override);
-- otherwise it is the start time of the current statement, which is stable within a statement so the
-- planner can use it in index conditions. Security definer so that the internal _clock_override needs no
-- grant; session_user is unaffected by it.
-- PL/pgSQL, not SQL: a SQL function that cannot be inlined (security definer, SET) is parsed and planned again
-- in every transaction that calls it, ~30 us a call, and every engine call makes a few; PL/pgSQL keeps its
-- plans for the session. The same holds for the other small helpers on the hot path (_notify_queue,
-- _archive_message, _notify_run_finished, complete_run): see bench/profile_sql.py.
create or replace function pgqrs.now()
returns timestamptz
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    if coalesce(current_setting('pgqrs.now', true), '') = '' then
        return statement_timestamp();
    end if;
    return pgqrs._clock_override(current_setting('pgqrs.now', true));
end
$$;
comment on function pgqrs.now() is
'The engine clock: statement_timestamp(), or the setting pgqrs.now when set (tests; honoured for superusers and
members of pgqrs_admin only, anyone else gets 42501).';

create or replace function pgqrs.schema_version()
returns integer
language sql
stable
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
    select max(version) from pgqrs.schema_version
$$;
comment on function pgqrs.schema_version() is 'The schema version installed in this database.';

-- Names of workflows, queues and workers are identifiers that travel through URLs, logs and shells:
-- plain ASCII letters, digits and _ . : - only, at most 128 characters.
create or replace function pgqrs._check_name(p_what text, p_name text)
returns void
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_name is null or p_name = '' then
        raise exception using errcode = '22023', message = format('%s must not be empty', p_what);
    end if;
    if length(p_name) > 128 or p_name !~ '^[A-Za-z0-9_][A-Za-z0-9_.:-]*$' then
        raise exception using
            errcode = '22023',
            message = format('invalid %s: %s', p_what, left(p_name, 64)),
            hint = 'Use 1-128 ASCII letters, digits and _ . : - (starting with a letter, digit or _).';
    end if;
end
$$;

create or replace function pgqrs._check_step_id(p_step_id text)
returns void
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_step_id is null or p_step_id = '' then
        raise exception using errcode = '22023', message = 'step id must not be empty';
    end if;
    if length(p_step_id) > 255 then
        raise exception using
            errcode = '22023',
            message = format('step id is %s characters long; the limit is 255', length(p_step_id));
    end if;
end
$$;

-- A duration argument: NULL is allowed (callers decide what it means), otherwise within [min, max].
create or replace function pgqrs._check_interval(
    p_what text, p_value interval, p_min interval, p_max interval
)
returns void
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_value < p_min or p_value > p_max then
        raise exception using
            errcode = '22023',
            message = format('%s must be between %s and %s, got %s', p_what, p_min, p_max, p_value);
    end if;
end
$$;

-- Run input: a JSON object no larger than the setting pgqrs.max_input_bytes (default 1 MiB).
create or replace function pgqrs._check_input(p_input jsonb)
returns void
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_limit bigint := coalesce(nullif(current_setting('pgqrs.max_input_bytes', true), '')::bigint, 1048576);
    v_size bigint;
begin
    if p_input is null or jsonb_typeof(p_input) <> 'object' then
        raise exception using
            errcode = '22023',
            message = format('run input must be a JSON object, got %s', coalesce(jsonb_typeof(p_input), 'NULL'));
    end if;
    v_size := octet_length(p_input::text);
    if v_size > v_limit then
        raise exception using
            errcode = '22023',
            message = format('run input is %s bytes; the limit is %s', v_size, v_limit),
            hint = 'Store large payloads elsewhere and pass a reference, or raise pgqrs.max_input_bytes.';
    end if;
end
$$;
