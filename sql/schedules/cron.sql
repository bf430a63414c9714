-- pgqrs: cron expressions: parsing (standard 5 fields) and the next or previous tick in a time zone.
--
-- Fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12 or JAN-DEC), day of week (0-7 or
-- SUN-SAT, 0 and 7 both Sunday). Each field is a comma list of `*`, `n`, `a-b`, with an optional `/step`
-- (`*/15`, `1-30/5`, `5/10` = 5 to the end in steps of 10). Shorthands: @yearly (@annually), @monthly, @weekly,
-- @daily (@midnight), @hourly. Day of month and day of week follow the usual cron rule: when both are restricted
-- (neither starts with `*`) a day matching either one fires; otherwise a day must match both.
-- Bad input raises 22023 naming the field; see docs/schedules.md.

-- One field: the sorted distinct values it allows. p_names (3-letter, upper case) are the values from p_min on.
create or replace function pgqrs._cron_field(
    p_cron text, p_field text, p_text text, p_min integer, p_max integer, p_names text[] default null
)
returns integer[]
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_item text;
    v_base text;
    v_step integer := 1;
    v_bounds text[];
    v_low integer;
    v_high integer;
    v_values integer[] := array[]::integer[];
    v_value text;
    v_number integer;
begin
    foreach v_item in array string_to_array(p_text, ',') loop
        if v_item = '' then
            perform pgqrs._cron_error(p_cron, p_field, p_text, 'an empty item in the list');
        end if;
        v_base := split_part(v_item, '/', 1);
        v_step := 1;
        if v_item like '%/%' then
            if split_part(v_item, '/', 2) !~ '^[0-9]{1,4}$' or split_part(v_item, '/', 2)::integer = 0
                or v_item like '%/%/%' then
                perform pgqrs._cron_error(p_cron, p_field, p_text, format('bad step in "%s"', v_item));
            end if;
            v_step := split_part(v_item, '/', 2)::integer;
        end if;
        if v_base = '*' then
            v_bounds := array[p_min::text, p_max::text];
        else
            v_bounds := string_to_array(v_base, '-');
            if cardinality(v_bounds) = 1 and v_item like '%/%' then
                v_bounds := array[v_bounds[1], p_max::text];  -- `a/n`: from a to the end
            end if;
        end if;
        if cardinality(v_bounds) not in (1, 2) then
            perform pgqrs._cron_error(p_cron, p_field, p_text, format('bad range "%s"', v_item));
        end if;
        -- each bound: a number or a name, within the field's range
        for i in 1..cardinality(v_bounds) loop
            v_value := upper(v_bounds[i]);
            if v_value ~ '^[0-9]{1,4}$' then
                v_number := v_value::integer;
            elsif p_names is not null and array_position(p_names, v_value) is not null then
                v_number := p_min + array_position(p_names, v_value) - 1;
            else
                perform pgqrs._cron_error(p_cron, p_field, p_text, format('"%s" is not a value', v_bounds[i]));
            end if;
            if v_number < p_min or v_number > p_max then
                perform pgqrs._cron_error(p_cron, p_field, p_text,
                                          format('%s is out of range %s-%s', v_number, p_min, p_max));
            end if;
            v_bounds[i] := v_number::text;
        end loop;
        v_low := v_bounds[1]::integer;
        v_high := v_bounds[cardinality(v_bounds)]::integer;
        if v_low > v_high then
            perform pgqrs._cron_error(p_cron, p_field, p_text, format('range "%s" runs backwards', v_item));
        end if;
        v_values := v_values || array(select generate_series(v_low, v_high, v_step));
    end loop;
    return array(select distinct v from unnest(v_values) as v order by v);
end
$$;

create or replace function pgqrs._cron_error(p_cron text, p_field text, p_text text, p_reason text)
returns void
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
    raise exception using
        errcode = '22023',
        message = format('invalid cron expression "%s": %s field "%s": %s', p_cron, p_field, p_text, p_reason),
        hint = 'Five fields: minute hour day-of-month month day-of-week, e.g. "*/15 9-17 * * MON-FRI".';
end
$$;

-- The parsed expression: the allowed values of each field, and whether day of month / day of week is
-- unrestricted (starts with `*`), for the day rule. Day of week 7 is folded into 0 (Sunday).
create or replace function pgqrs._cron_parse(
    p_cron text,
    out minutes integer[], out hours integer[], out days integer[], out months integer[],
    out weekdays integer[], out days_any boolean, out weekdays_any boolean
)
language plpgsql
immutable
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_text text := btrim(coalesce(p_cron, ''));
    v_fields text[];
begin
    v_text := case lower(v_text)
        when '@yearly' then '0 0 1 1 *' when '@annually' then '0 0 1 1 *'
        when '@monthly' then '0 0 1 * *' when '@weekly' then '0 0 * * 0'
        when '@daily' then '0 0 * * *' when '@midnight' then '0 0 * * *'
        when '@hourly' then '0 * * * *' else v_text
    end;
    v_fields := regexp_split_to_array(v_text, '\s+');
    if v_text = '' or cardinality(v_fields) <> 5 then
        raise exception using
            errcode = '22023',
            message = format('invalid cron expression "%s": it has %s fields, not 5', p_cron,
                             case when v_text = '' then 0 else cardinality(v_fields) end),
            hint = 'Five fields: minute hour day-of-month month day-of-week, e.g. "*/15 9-17 * * MON-FRI".';
    end if;
    minutes := pgqrs._cron_field(p_cron, 'minute', v_fields[1], 0, 59);
    hours := pgqrs._cron_field(p_cron, 'hour', v_fields[2], 0, 23);
    days := pgqrs._cron_field(p_cron, 'day-of-month', v_fields[3], 1, 31);
    months := pgqrs._cron_field(p_cron, 'month', v_fields[4], 1, 12,
        '{JAN,FEB,MAR,APR,MAY,JUN,JUL,AUG,SEP,OCT,NOV,DEC}');
    weekdays := array(
        select distinct d % 7 from unnest(pgqrs._cron_field(p_cron, 'day-of-week', v_fields[5], 0, 7,
            '{SUN,MON,TUE,WED,THU,FRI,SAT}')) as d order by 1
    );
    days_any := v_fields[3] like '*%';
    weekdays_any := v_fields[5] like '*%';
end
$$;

-- The first tick strictly after p_from (p_forward) or strictly before it, in time zone p_timezone; NULL when
-- none within 15 years (an expression that never fires, e.g. "0 0 30 2 *"). It walks local days, skipping
-- months the expression excludes, and takes the day's first (last) matching minute: never minute by minute.
-- Local times that do not exist or occur twice (daylight saving) are read as PostgreSQL reads them: a time in
-- the spring-forward gap with the offset before the change (02:30 fires at 03:30 new time), a time of the
-- fall-back hour at its second occurrence (standard time). docs/schedules.md states the rule.
create or replace function pgqrs._cron_tick(
    p_cron text, p_timezone text, p_from timestamptz, p_forward boolean
)
returns timestamptz
language plpgsql
stable
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_spec record;
    v_day_minutes integer[];  -- the minutes of a day it fires at (h * 60 + m), ascending
    -- Forward, from up to an hour earlier when the clocks fall back within 3 hours: a local time just behind
    -- p_from's may still be ahead, at its second occurrence (p_from 01:40 EDT, tick 01:30 EST).
    v_local timestamp := case when p_forward
        then least(p_from at time zone p_timezone, (p_from + interval '3 hours') at time zone p_timezone
                   - interval '3 hours')
        else p_from at time zone p_timezone end;
    v_day date := v_local::date;
    v_last_day date := v_local::date + case when p_forward then 5480 else -5480 end;
    -- only minutes after (before) this bound count on the first day; -1 (1440) later
    v_bound integer := extract(hour from v_local)::integer * 60 + extract(minute from v_local)::integer;
    v_minute integer;
    v_tick timestamptz;
begin
    select * into v_spec from pgqrs._cron_parse(p_cron);
    v_day_minutes := array(
        select h * 60 + m from unnest(v_spec.hours) as h cross join unnest(v_spec.minutes) as m order by 1
    );
    if not p_forward and v_local > date_trunc('minute', v_local) then
        v_bound := v_bound + 1;  -- the current minute began before p_from
    end if;
    while (p_forward and v_day <= v_last_day) or (not p_forward and v_day >= v_last_day) loop
        if extract(month from v_day)::integer <> all(v_spec.months) then
            v_day := case when p_forward then date_trunc('month', v_day) + interval '1 month'
                else date_trunc('month', v_day) - interval '1 day' end;
            v_bound := case when p_forward then -1 else 1440 end;
            continue;
        end if;
        if pgqrs._cron_day_matches(v_spec.days, v_spec.weekdays, v_spec.days_any, v_spec.weekdays_any, v_day)
            then
            loop
                v_minute := case when p_forward
                    then (select min(x) from unnest(v_day_minutes) as x where x > v_bound)
                    else (select max(x) from unnest(v_day_minutes) as x where x < v_bound) end;
                exit when v_minute is null;
                v_tick := (v_day + make_interval(mins => v_minute)) at time zone p_timezone;
                -- around a daylight-saving change a later local time can be an earlier instant: look on
                if (p_forward and v_tick > p_from) or (not p_forward and v_tick < p_from) then
                    return v_tick;
                end if;
                v_bound := v_minute;
            end loop;
        end if;
        v_day := v_day + case when p_forward then 1 else -1 end;
        v_bound := case when p_forward then -1 else 1440 end;
    end loop;
    return null;
end
$$;

-- The cron day rule: both day fields restricted, either matches; otherwise both must (a `*` matches all).
create or replace function pgqrs._cron_day_matches(
    p_days integer[], p_weekdays integer[], p_days_any boolean, p_weekdays_any boolean, p_day date
)
returns boolean
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
    select case when p_days_any or p_weekdays_any
        then extract(day from p_day)::integer = any(p_days)
        and extract(dow from p_day)::integer = any(p_weekdays)
        else extract(day from p_day)::integer = any(p_days)
        or extract(dow from p_day)::integer = any(p_weekdays)
    end
$$;

create or replace function pgqrs.cron_next(p_cron text, p_timezone text, p_after timestamptz)
returns timestamptz
language plpgsql
stable
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
begin
    perform pgqrs._check_timezone(p_timezone);
    if p_after is null or p_after < '1900-01-01+00' or p_after > '9000-01-01+00' then
        raise exception using
            errcode = '22023',
            message = format('the time to start from must be from 1900 to 9000, got %s', coalesce(p_after::text, 'NULL'));
    end if;
    return pgqrs._cron_tick(p_cron, p_timezone, p_after, true);
end
$$;
comment on function pgqrs.cron_next(text, text, timestamptz) is
'The first tick of cron expression p_cron in IANA time zone p_timezone strictly after p_after (NULL when it never
fires). Raises 22023 for a bad expression (naming the field) or an unknown time zone. See docs/schedules.md.';

-- An IANA time zone name (as pg_timezone_names lists it): not an abbreviation or a POSIX offset string.
create or replace function pgqrs._check_timezone(p_timezone text)
returns void
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_timezone is null or not exists (select from pg_catalog.pg_timezone_names as z where z.name = p_timezone)
        then
        raise exception using
            errcode = '22023',
            message = format('unknown time zone: %s', coalesce(p_timezone, 'NULL')),
            hint = 'Use an IANA name such as UTC, Europe/Berlin or America/New_York.';
    end if;
end
$$;
