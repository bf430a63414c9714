"""The installer's statements (`pgqrs.install`, `pgqrs install`): the version bookkeeping, and what the
install checks before it reads or runs anything in schema pgqrs (docs/security.md).

An install runs as a superuser. Up to schema version 2 the members of pgqrs_admin owned the schema, so they
could leave code that the next install would run with the installer's rights: a trigger on
pgqrs.schema_version (the install inserts into it), a rule, a column default or a check constraint calling
their own function, a view changed to call one. The checks read the catalog only, never an object of the
schema, and run with search_path pinned to pg_catalog.
"""

# Serialises concurrent installs of one database (two workers starting at once).
INSTALL_LOCK = "select pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pgqrs.install'))"
# The install resolves every name through pg_catalog only (pg_temp last, explicitly): nothing a caller's
# search_path points at, nor a temporary object, can stand in for a built-in. Restored when it is done.
PIN_SEARCH_PATH = (
    "select pg_catalog.current_setting('search_path'),"
    " pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true)"
)
RESTORE_SEARCH_PATH = "select pg_catalog.set_config('search_path', %s, true)"
QUIET_NOTICES = "set local client_min_messages = warning"
# whether pgqrs is installed at all (the installer's first read, and `pgqrs install`'s)
HAS_SCHEMA = "select to_regclass('pgqrs.schema_version') is not null as installed"
INSTALLED_VERSION = "select coalesce(max(version), 0) from pgqrs.schema_version"
RECORD_VERSION = "insert into pgqrs.schema_version (version) values (%s) on conflict do nothing"
SCHEMA_VERSION = "select pgqrs.schema_version()"

# 42501 unless the installing role is a superuser or a member of pgqrs_owner (which no login role is, unless
# a superuser granted it on purpose): an install hands the objects to pgqrs_owner and creates roles.
MAY_INSTALL = """
do $$
begin
    if not coalesce((select r.rolsuper from pg_catalog.pg_roles as r where r.rolname = current_user), false)
        and not exists (
            select from pg_catalog.pg_roles as o
            where o.rolname = 'pgqrs_owner' and pg_catalog.pg_has_role(current_user, o.oid, 'member')
        ) then
        raise exception using
            errcode = '42501',
            message = pg_catalog.format('%s may not install pgqrs: installs and upgrades need a superuser',
                                        current_user),
            hint = 'Run pgqrs install as a superuser (docs/security.md).';
    end if;
end
$$
"""

# One row per finding, a sentence naming the object (pg_describe_object). Expected owners: pgqrs_owner,
# pgqrs_admin (the owner up to version 2: its objects are handed over) and superusers (version 1 installs).
# pgqrs.now() is the one engine function a default or a view may call; pgqrs.schema_version, which the
# install reads and writes before it re-creates any function, may call none.
UNEXPECTED_OBJECTS = """
with
ns as (select n.oid, n.nspowner from pg_catalog.pg_namespace as n where n.nspname = 'pgqrs'),
trusted as (
    select r.oid from pg_catalog.pg_roles as r
    where r.rolname in ('pgqrs_owner', 'pgqrs_admin') or r.rolsuper
),
rels as (
    select c.oid, c.relkind, c.relname, c.relowner, c.relrowsecurity, c.relforcerowsecurity
    from pg_catalog.pg_class as c join ns on c.relnamespace = ns.oid
),
-- the objects that hang off the engine's relations and may run code when the relation is read or written
exprs as (
    select 'pg_attrdef'::pg_catalog.regclass as classid, a.oid as objid, a.adrelid as relid
    from pg_catalog.pg_attrdef as a join rels on rels.oid = a.adrelid
    union all
    select 'pg_constraint'::pg_catalog.regclass, k.oid, k.conrelid
    from pg_catalog.pg_constraint as k join rels on rels.oid = k.conrelid
    union all
    select 'pg_class'::pg_catalog.regclass, i.indexrelid, i.indrelid
    from pg_catalog.pg_index as i join rels on rels.oid = i.indrelid
    union all
    select 'pg_rewrite'::pg_catalog.regclass, w.oid, w.ev_class
    from pg_catalog.pg_rewrite as w join rels on rels.oid = w.ev_class
),
-- catalog functions that run an SQL text they are given: never in an engine expression
runs_sql as (
    select p.oid from pg_catalog.pg_proc as p
    where p.pronamespace = 'pg_catalog'::pg_catalog.regnamespace
        and (p.proname ~ '^(query|cursor|table|schema|database)_to_xml'
            or p.proname in ('ts_stat', 'ts_rewrite', 'set_config'))
)
select pg_catalog.format('schema pgqrs is owned by %s', ns.nspowner::pg_catalog.regrole)
from ns where ns.nspowner not in (select oid from trusted)
union all
select pg_catalog.format('%s is owned by %s', pg_catalog.pg_describe_object('pg_class'::pg_catalog.regclass,
    rels.oid, 0), rels.relowner::pg_catalog.regrole)
from rels where rels.relowner not in (select oid from trusted)
union all
select pg_catalog.format('%s is owned by %s', pg_catalog.pg_describe_object('pg_proc'::pg_catalog.regclass,
    p.oid, 0), p.proowner::pg_catalog.regrole)
from pg_catalog.pg_proc as p join ns on p.pronamespace = ns.oid
where p.proowner not in (select oid from trusted)
union all
select pg_catalog.format('%s: pgqrs creates none',
    pg_catalog.pg_describe_object('pg_proc'::pg_catalog.regclass, p.oid, 0))
from pg_catalog.pg_proc as p join ns on p.pronamespace = ns.oid
where p.prokind in ('a', 'w')
union all
select pg_catalog.format('%s: pgqrs creates none',
    pg_catalog.pg_describe_object('pg_class'::pg_catalog.regclass, rels.oid, 0))
from rels where rels.relkind not in ('r', 'p', 'v', 'i', 'I', 'S')
union all
select 'pgqrs.schema_version is not a plain table'
from rels where rels.relname = 'schema_version' and rels.relkind <> 'r'
union all
-- free-standing types (domains, enums, ranges, composite types): a domain's check runs code
select pg_catalog.format('%s: pgqrs creates none',
    pg_catalog.pg_describe_object('pg_type'::pg_catalog.regclass, t.oid, 0))
from pg_catalog.pg_type as t join ns on t.typnamespace = ns.oid
left join pg_catalog.pg_class as c on c.oid = t.typrelid
where t.typtype in ('d', 'e', 'r', 'm', 'p') or (t.typtype = 'b' and t.typelem = 0) or c.relkind = 'c'
union all
-- anything else in the schema: operators, operator classes, collations, conversions, statistics objects ...
select pg_catalog.format('%s: pgqrs creates none',
    pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid))
from pg_catalog.pg_depend as d join ns on d.refobjid = ns.oid
where d.refclassid = 'pg_namespace'::pg_catalog.regclass
    and d.classid not in ('pg_class'::pg_catalog.regclass, 'pg_proc'::pg_catalog.regclass,
                          'pg_type'::pg_catalog.regclass)
union all
select pg_catalog.format('extension %s is installed in schema pgqrs', e.extname)
from pg_catalog.pg_extension as e join ns on e.extnamespace = ns.oid
union all
select pg_catalog.format('%s: casts run code', pg_catalog.pg_describe_object('pg_cast'::pg_catalog.regclass,
    k.oid, 0))
from pg_catalog.pg_cast as k
join pg_catalog.pg_type as t on t.oid in (k.castsource, k.casttarget)
join ns on t.typnamespace = ns.oid
union all
select pg_catalog.pg_describe_object('pg_trigger'::pg_catalog.regclass, g.oid, 0)
    || pg_catalog.format(' (runs %s)', g.tgfoid::pg_catalog.regprocedure)
from pg_catalog.pg_trigger as g join rels on rels.oid = g.tgrelid
where not g.tgisinternal
union all
select pg_catalog.pg_describe_object('pg_rewrite'::pg_catalog.regclass, w.oid, 0)
from pg_catalog.pg_rewrite as w join rels on rels.oid = w.ev_class
where w.rulename <> '_RETURN'
union all
select pg_catalog.format('row level security on %s', pg_catalog.pg_describe_object(
    'pg_class'::pg_catalog.regclass, rels.oid, 0))
from rels where rels.relrowsecurity or rels.relforcerowsecurity
union all
select pg_catalog.pg_describe_object('pg_policy'::pg_catalog.regclass, y.oid, 0)
from pg_catalog.pg_policy as y join rels on rels.oid = y.polrelid
union all
select pg_catalog.format('%s references %s',
    pg_catalog.pg_describe_object('pg_constraint'::pg_catalog.regclass, k.oid, 0),
    k.confrelid::pg_catalog.regclass)
from pg_catalog.pg_constraint as k join rels on rels.oid = k.confrelid
where k.conrelid not in (select oid from rels)
union all
select pg_catalog.format('column %s of %s has type %s', a.attname,
    pg_catalog.pg_describe_object('pg_class'::pg_catalog.regclass, rels.oid, 0),
    a.atttypid::pg_catalog.regtype)
from pg_catalog.pg_attribute as a join rels on rels.oid = a.attrelid
join pg_catalog.pg_type as t on t.oid = a.atttypid
where a.attnum > 0 and not a.attisdropped
    and t.typnamespace <> 'pg_catalog'::pg_catalog.regnamespace
    and not (t.typrelid <> 0 and t.typrelid in (select oid from rels))
union all
-- what defaults, constraints, indexes and views call or read
select pg_catalog.format('%s uses %s',
    case when x.classid = 'pg_rewrite'::pg_catalog.regclass  -- a view's _RETURN rule: name the view
        then pg_catalog.pg_describe_object('pg_class'::pg_catalog.regclass, x.relid, 0)
        else pg_catalog.pg_describe_object(x.classid, x.objid, 0)
    end,
    pg_catalog.pg_describe_object(d.refclassid, d.refobjid, 0))
from exprs as x
join pg_catalog.pg_depend as d on d.classid = x.classid and d.objid = x.objid
join rels as r on r.oid = x.relid
left join pg_catalog.pg_proc as p on d.refclassid = 'pg_proc'::pg_catalog.regclass and p.oid = d.refobjid
left join pg_catalog.pg_operator as o
    on d.refclassid = 'pg_operator'::pg_catalog.regclass and o.oid = d.refobjid
left join pg_catalog.pg_class as c on d.refclassid = 'pg_class'::pg_catalog.regclass and c.oid = d.refobjid
left join pg_catalog.pg_type as t on d.refclassid = 'pg_type'::pg_catalog.regclass and t.oid = d.refobjid
where (p.oid is not null and p.pronamespace <> 'pg_catalog'::pg_catalog.regnamespace
        and not (p.pronamespace in (select oid from ns) and p.proname = 'now' and p.pronargs = 0
                 and r.relname <> 'schema_version'))
    or p.oid in (select oid from runs_sql)
    or o.oprnamespace <> 'pg_catalog'::pg_catalog.regnamespace
    or (c.relnamespace <> 'pg_catalog'::pg_catalog.regnamespace
        and c.relnamespace not in (select oid from ns))
    or (t.typnamespace <> 'pg_catalog'::pg_catalog.regnamespace
        and t.typnamespace not in (select oid from ns))
order by 1
"""


# After the install's scripts ran: every function of schema pgqrs by name and signature. Any name the
# engine's SQL does not define, or more overloads of a name than it defines, is a function the install did
# not create: one a member of pgqrs_admin could leave up to version 2 (a SECURITY DEFINER function it owned
# would now run as pgqrs_owner), or an old signature a migration forgot to drop.
FUNCTIONS = """
select p.proname::text, p.oid::pg_catalog.regprocedure::text
from pg_catalog.pg_proc as p
where p.pronamespace = 'pgqrs'::pg_catalog.regnamespace
order by 1, 2
"""
