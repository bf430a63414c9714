-- Every public function whose statements touch the partitioned history (runs, steps, messages_archive) plans
-- them once per session (plan_cache_mode = force_generic_plan; sql/tables/runs.sql says why), but the
-- maintenance ones (purge, retention, partitions), whose range conditions are planned for their values.
begin;
select plan(2);

select is(
    array(
        select p.oid::regprocedure::text from pg_proc as p
        where
            p.pronamespace = 'pgqrs'::regnamespace and p.proname !~ '^_'
            and p.prosrc ~ 'pgqrs\.(runs|steps|messages_archive)\M'
            and p.proname not in ('purge_runs', 'apply_retention', 'maintain_history')
            and not coalesce(p.proconfig, '{}') @> array['plan_cache_mode=force_generic_plan']
        order by 1
    ),
    '{}'::text[],
    'no public function on the history planned anew on each call'
);
select cmp_ok(
    (
        select count(*) from pg_proc as p
        where
            p.pronamespace = 'pgqrs'::regnamespace
            and p.proconfig @> array['plan_cache_mode=force_generic_plan']
    ),
    '>=', 20::bigint, 'the engine''s calls are there (20 or more)'
);

select * from finish();
rollback;
