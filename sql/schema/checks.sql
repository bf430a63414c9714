-- pgqrs: the argument checks every public function shares.

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

-- The largest run input, event payload or message to a run, in bytes of its JSON text: the setting
-- pgqrs.max_input_bytes, 1 MiB when unset.
-- Inlined into its callers (their search_path is pinned; it names its functions and operators by schema), so it
-- has no SET clause: a SET makes every call a function call of its own, a SQL one at that, parsed and planned
-- in every transaction (sql/schema/clock.sql), which cost trigger a sixth of its server time.
create or replace function pgqrs._max_input_bytes()
returns bigint
language sql
stable
as $$
    select coalesce(
        case
            when pg_catalog.length(pg_catalog.current_setting('pgqrs.max_input_bytes', true)) operator(pg_catalog.>) 0
                then pg_catalog.current_setting('pgqrs.max_input_bytes', true)::bigint
        end,
        1048576
    )
$$;

-- Run input: any JSON value (an object, an array, a scalar, JSON null; since schema version 7, issue 21:
-- pgqrs 0.15 programs pass whatever is JSON-serialisable), not SQL NULL, no larger than the setting
-- pgqrs.max_input_bytes (default 1 MiB).

create or replace function pgqrs._check_input(p_input jsonb)
returns void
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_limit bigint := pgqrs._max_input_bytes();
    v_size bigint;
begin
    if p_input is null then
        raise exception using
            errcode = '22023',
            message = 'run input must be a JSON value, got SQL NULL',
            hint = 'Pass ''{}'' (or JSON ''null'') for a run without input.';
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

-- A trace context: NULL, or a JSON object of at most 8 string values (the W3C traceparent and tracestate, or
-- another propagator's fields), 2048 bytes in all. The engine stores and returns it; it never reads it.
create or replace function pgqrs._check_trace_context(p_trace_context jsonb)
returns void
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_trace_context is null then
        return;
    end if;
    if jsonb_typeof(p_trace_context) <> 'object'
        or octet_length(p_trace_context::text) > 2048
        or (select count(*) from jsonb_each(p_trace_context)) > 8
        or exists (select from jsonb_each(p_trace_context) as e where jsonb_typeof(e.value) <> 'string')
    then
        raise exception using
            errcode = '22023',
            message = 'a trace context must be a JSON object of at most 8 string values, 2048 bytes in all',
            hint = 'Pass what an OpenTelemetry propagator injects: {"traceparent": "00-...", "tracestate": "..."}.';
    end if;
end
$$;
