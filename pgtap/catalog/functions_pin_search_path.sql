-- Every function in schema pgqrs pins search_path (no hijacking through a caller's path), except the inlined
-- helpers: internal, IMMUTABLE or STABLE, LANGUAGE sql, not SECURITY DEFINER and with no SET clause at all,
-- which is what lets the planner inline them into their caller (whose search_path is pinned); docs/security.md.
begin;
select plan(3);

create temp table t_settings as
select
    p.oid::regprocedure::text as function_name,
    (
        select c.setting from unnest(p.proconfig) as c (setting)
        where c.setting like 'search_path=%'
    ) as search_path,
    p.proname ~ '^_' and l.lanname = 'sql' and p.provolatile in ('i', 's') and not p.prosecdef
    and p.proconfig is null as inlined
from pg_proc as p
join pg_language as l on l.oid = p.prolang
where p.pronamespace = 'pgqrs'::regnamespace;

select is(
    array(select function_name from t_settings where search_path is null and not inlined order by 1),
    '{}'::text[],
    'no function without a pinned search_path, inlined helpers aside'
);
select is(
    array(select function_name from t_settings where inlined order by 1),
    array[
        'pgqrs._lease_held(uuid,timestamp with time zone,uuid,timestamp with time zone)',
        'pgqrs._max_input_bytes()',
        'pgqrs._now()'
    ],
    'the inlined helpers are the ones reviewed'
);
select is(
    array(
        select distinct search_path from t_settings
        where search_path not in ('search_path=pg_catalog, pgqrs, pg_temp', 'search_path=pg_catalog, pg_temp')
    ),
    '{}'::text[],
    'search_path starts with pg_catalog and ends with pg_temp'
);

select * from finish();
rollback;
