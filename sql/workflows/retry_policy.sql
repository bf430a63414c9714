-- pgqrs: retry policies: their defaults and checks, and the delay before a retry.

-- A retry policy is a JSON object; missing keys take the defaults below. Returns the complete policy.
create or replace function pgqrs._retry_policy(p_policy jsonb)
returns jsonb
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_policy jsonb := '{"max_attempts": 3, "backoff": "exponential", "base_seconds": 1,
                        "max_seconds": 300, "jitter": 0.1}'::jsonb;
    v_unknown text;
begin
    if p_policy is null then
        return v_policy;
    end if;
    if jsonb_typeof(p_policy) <> 'object' then
        raise exception using errcode = '22023', message = 'retry policy must be a JSON object';
    end if;
    select string_agg(k, ', ') into v_unknown
    from jsonb_object_keys(p_policy) as k
    where k not in ('max_attempts', 'backoff', 'base_seconds', 'max_seconds', 'jitter');
    if v_unknown is not null then
        raise exception using
            errcode = '22023',
            message = format('unknown retry policy keys: %s', v_unknown),
            hint = 'Known keys: max_attempts, backoff, base_seconds, max_seconds, jitter.';
    end if;
    v_policy := v_policy || p_policy;
    if jsonb_typeof(v_policy -> 'max_attempts') <> 'number'
        or (v_policy ->> 'max_attempts')::numeric not between 1 and 1000
        or (v_policy ->> 'max_attempts')::numeric <> trunc((v_policy ->> 'max_attempts')::numeric) then
        raise exception using errcode = '22023', message = 'retry policy max_attempts must be an integer 1-1000';
    end if;
    -- stored as a JSON integer: 3.0 passes the check above, and '3.0'::integer would fail in every reader
    v_policy := jsonb_set(v_policy, '{max_attempts}', to_jsonb((v_policy ->> 'max_attempts')::numeric::integer));
    if v_policy ->> 'backoff' is null or v_policy ->> 'backoff' not in ('fixed', 'exponential') then
        raise exception using errcode = '22023', message = 'retry policy backoff must be "fixed" or "exponential"';
    end if;
    if jsonb_typeof(v_policy -> 'base_seconds') <> 'number'
        or (v_policy ->> 'base_seconds')::numeric not between 0 and 86400 then
        raise exception using errcode = '22023', message = 'retry policy base_seconds must be a number 0-86400';
    end if;
    if jsonb_typeof(v_policy -> 'max_seconds') <> 'number'
        or (v_policy ->> 'max_seconds')::numeric not between (v_policy ->> 'base_seconds')::numeric and 2592000 then
        raise exception using
            errcode = '22023', message = 'retry policy max_seconds must be a number between base_seconds and 2592000';
    end if;
    if jsonb_typeof(v_policy -> 'jitter') <> 'number'
        or (v_policy ->> 'jitter')::numeric not between 0 and 1 then
        raise exception using errcode = '22023', message = 'retry policy jitter must be a number 0-1';
    end if;
    return v_policy;
end
$$;

-- The attempt limit of a step: its own (steps.max_attempts, from a fail_step p_retry_policy) when it has one,
-- else that of the retry policy p_policy (the workflow's, or the one a call gives). The one reading of a
-- policy's max_attempts: ::numeric first, because a policy stored by schema version 1 may hold it as 3.0, which
-- a plain ::integer refuses.
create or replace function pgqrs._max_attempts(p_policy jsonb, p_step_limit integer default null)
returns integer
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
    return coalesce(p_step_limit, (p_policy ->> 'max_attempts')::numeric::integer);
end
$$;

-- Delay before attempt p_attempt + 1: base, or base * 2^(attempt-1), capped, minus up to `jitter` of itself.
create or replace function pgqrs._retry_delay(p_policy jsonb, p_attempt integer)
returns interval
language sql
volatile
set search_path = pg_catalog, pg_temp
as $$
    select make_interval(secs => d * (1 - (p_policy ->> 'jitter')::float8 * random()))
    from (
        select least(
            (p_policy ->> 'max_seconds')::float8,
            (p_policy ->> 'base_seconds')::float8
            * case when p_policy ->> 'backoff' = 'exponential' then power(2, least(p_attempt - 1, 60)) else 1 end
        ) as d
    ) as delay
$$;
