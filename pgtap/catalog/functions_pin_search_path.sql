-- Every function in schema pgqrs pins search_path (no hijacking through a caller's path).
begin;
select plan(2);

create temp table t_settings as
select
    p.oid::regprocedure::text as function_name,
    (
        select c.setting from unnest(p.proconfig) as c (setting)
        where c.setting like 'search_path=%'
    ) as search_path
from pg_proc as p
where p.pronamespace = 'pgqrs'::regnamespace;

select is(
    array(select function_name from t_settings where search_path is null order by 1),
    '{}'::text[],
    'no function without a pinned search_path'
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
