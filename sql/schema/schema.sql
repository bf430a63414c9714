-- pgqrs: the schema. Every file of sql/install.sql is safe to run twice (install is idempotent).

-- Not `create schema if not exists`: that checks CREATE on the database even when the schema exists, and an
-- upgrade by a member of pgqrs_owner (docs/security.md) needs no rights on the database.
do $$
begin
    if to_regnamespace('pgqrs') is null then
        create schema pgqrs;
    end if;
end
$$;
comment on schema pgqrs is 'pgqrs: a durable workflow engine. Call the functions; never write the tables.';
