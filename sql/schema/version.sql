-- pgqrs: the schema version, recorded in a table and read by pgqrs.schema_version().

create table if not exists pgqrs.schema_version (
    version integer primary key,
    installed_at timestamptz not null default clock_timestamp()
);
comment on table pgqrs.schema_version is 'Schema versions applied to this database, one row each.';

-- The schema version these files make. Bump it together with each new sql/migrations/<n>--<n+1>.sql
-- (docs/upgrades.md); tests/test_upgrade.py checks that both install paths agree.
insert into pgqrs.schema_version (version) values (11) on conflict do nothing;

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
