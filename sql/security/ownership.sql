-- pgqrs: pgqrs_owner owns the schema and every object in it (see security/roles.sql).

-- 2. pgqrs_owner owns the schema and every object in it. Security definer functions then run as a role with
-- no rights outside this schema (not as the superuser that installed them). Objects the installer creates,
-- and those of older versions (owned by pgqrs_admin in version 2, by the installing superuser in version 1),
-- are handed over here. Identity sequences and indexes follow their table. pgqrs.install checks the catalog
-- for objects it did not create before it runs any of this (docs/security.md).
do $$
declare
    v_oid oid;
begin
    if not pg_catalog.pg_has_role(current_user, 'pgqrs_owner', 'member') then
        raise exception using
            errcode = '42501',
            message = format('%s may not install pgqrs: not a superuser', current_user),
            hint = 'Install and upgrade as a superuser (docs/security.md).';
    end if;
    if (select n.nspowner from pg_catalog.pg_namespace as n where n.nspname = 'pgqrs') <> 'pgqrs_owner'::regrole
        then
        alter schema pgqrs owner to pgqrs_owner;
    end if;
    -- ALTER TABLE ... OWNER also takes views, materialized views and foreign tables
    for v_oid in
        select c.oid from pg_catalog.pg_class as c
        where c.relnamespace = 'pgqrs'::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'f')
            and c.relowner <> 'pgqrs_owner'::regrole
        order by c.oid
    loop
        execute format('alter table %s owner to pgqrs_owner', v_oid::regclass);
    end loop;
    -- free-standing sequences (not an identity or serial column's, which follow their table)
    for v_oid in
        select c.oid from pg_catalog.pg_class as c
        where c.relnamespace = 'pgqrs'::regnamespace and c.relkind = 'S'
            and c.relowner <> 'pgqrs_owner'::regrole
            and not exists (
                select from pg_catalog.pg_depend as d
                where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype in ('a', 'i')
            )
        order by c.oid
    loop
        execute format('alter sequence %s owner to pgqrs_owner', v_oid::regclass);
    end loop;
    -- ALTER ROUTINE: functions, procedures and aggregates alike
    for v_oid in
        select p.oid from pg_catalog.pg_proc as p
        where p.pronamespace = 'pgqrs'::regnamespace and p.proowner <> 'pgqrs_owner'::regrole
        order by p.oid
    loop
        execute format('alter routine %s owner to pgqrs_owner', v_oid::regprocedure);
    end loop;
    -- free-standing types (enums, domains, composite types); a table's row type follows the table
    for v_oid in
        select t.oid from pg_catalog.pg_type as t
        left join pg_catalog.pg_class as c on c.oid = t.typrelid
        where t.typnamespace = 'pgqrs'::regnamespace and t.typowner <> 'pgqrs_owner'::regrole
            and t.typtype in ('c', 'd', 'e', 'r') and (c.oid is null or c.relkind = 'c')
        order by t.oid
    loop
        execute format('alter type %s owner to pgqrs_owner', v_oid::regtype);
    end loop;
end
$$;
