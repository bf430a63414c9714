-- Every public (not _-prefixed) function in pgqrs is documented with COMMENT ON FUNCTION, and so is every view
-- and table (a partition of the history is described by its partitioned table).
begin;
select plan(3);

select is(
    array(
        select p.oid::regprocedure::text from pg_proc as p
        where
            p.pronamespace = 'pgqrs'::regnamespace and p.proname !~ '^_'
            and coalesce(obj_description(p.oid, 'pg_proc'), '') = ''
        order by 1
    ),
    '{}'::text[],
    'no public function without a comment'
);
select cmp_ok(
    (select count(*) from pg_proc as p where p.pronamespace = 'pgqrs'::regnamespace and p.proname !~ '^_'),
    '>=', 20::bigint, 'the public API is there (20 or more functions)'
);
select is(
    array(
        select c.relname::text from pg_class as c
        where
            c.relnamespace = 'pgqrs'::regnamespace and c.relkind in ('r', 'p', 'v') and not c.relispartition
            and coalesce(obj_description(c.oid, 'pg_class'), '') = ''
        order by 1
    ),
    '{}'::text[],
    'every table and view has a comment'
);

select * from finish();
rollback;
