"""Least privilege (issues 8 and 13, docs/security.md), tested with real login roles (the `logins` fixture,
tests/conftest.py: pgqrs_t_worker ∈ pgqrs_worker, pgqrs_t_client ∈ pgqrs_client, pgqrs_t_admin ∈ pgqrs_admin,
not a superuser, and pgqrs_t_nobody with no pgqrs role; the test cluster trusts local connections, so
connecting as them needs no password).

This file: installing (idempotent grants, who may install), what pgqrs_admin may and may not do, and the
install's refusal of objects it did not create.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

import pgqrs
from conftest import _admin_execute, drop_db, schema_files
from pgqrs.install import UnexpectedObjects
from security_roles import Conn, as_login, one, setup_run, sqlstate
from upgrade_helpers import apply_fixture

pytestmark = pytest.mark.timeout(300)

# --- installing -------------------------------------------------------------------------------------------


def acl_snapshot(conn: Conn) -> list[tuple[Any, ...]]:
    return conn.execute(
        "select p.oid::regprocedure::text, p.proacl::text, p.proowner::regrole::text from pg_proc as p"
        " where p.pronamespace = 'pgqrs'::regnamespace"
        " union all select c.oid::regclass::text, c.relacl::text, c.relowner::regrole::text"
        " from pg_class as c"
        " where c.relnamespace = 'pgqrs'::regnamespace"
        " union all select 'schema', n.nspacl::text, n.nspowner::regrole::text from pg_namespace as n"
        " where n.nspname = 'pgqrs'"
        " union all select rolname, rolcanlogin::text || rolsuper::text, '' from pg_roles"
        " where rolname ~ '^pgqrs_'"
        " and rolname !~ '^pgqrs_t_' order by 1"
    ).fetchall()


def test_grants_are_idempotent(db: str, conn: Conn) -> None:
    before = acl_snapshot(conn)
    grants = [p for p in schema_files() if p.parent.name == "security"]
    assert grants
    for _ in range(2):
        for path in grants:
            conn.execute(path.read_text().encode(), prepare=False)
    assert pgqrs.install(db) == pgqrs.install(db)
    assert acl_snapshot(conn) == before


def test_only_a_superuser_or_an_owner_member_may_install(logins: None, db: str, conn: Conn) -> None:
    setup_run(conn)
    before = acl_snapshot(conn)
    # pgqrs_admin operates the engine but installs nothing: an install hands every object to pgqrs_owner
    for login in ("pgqrs_t_admin", "pgqrs_t_worker", "pgqrs_t_client", "pgqrs_t_nobody"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="may not install pgqrs"):
            pgqrs.install(make_conninfo(db, user=login))
    assert acl_snapshot(conn) == before
    # a deploy role that a superuser made a member of pgqrs_owner on purpose may (docs/security.md)
    conn.execute("grant pgqrs_owner to pgqrs_t_nobody")
    try:
        assert pgqrs.install(make_conninfo(db, user="pgqrs_t_nobody")) >= 1
    finally:
        conn.execute("revoke pgqrs_owner from pgqrs_t_nobody")
    assert acl_snapshot(conn) == before, "an install by an owner member left different owners or grants"


# --- pgqrs_admin operates, but cannot plant code (issue 13, class 9) --------------------------------------


def test_an_admin_member_cannot_change_the_engines_code(logins: None, db: str, conn: Conn) -> None:
    """Up to version 2 a member of pgqrs_admin owned every object: a trigger on pgqrs.schema_version, a view
    or a function redefined, ran as the next superuser who installed or ran `pgqrs stats`."""
    with as_login(db, "pgqrs_t_admin") as admin:
        refused = {
            "trigger": "create trigger planted before insert on pgqrs.schema_version for each row"
            " execute function pg_catalog.suppress_redundant_updates_trigger()",
            "replace a view": "create or replace view pgqrs.queue_stats as select * from pgqrs.queue_stats",
            "replace a function": "create or replace function pgqrs.now() returns timestamptz"
            " language sql as 'select pg_catalog.now()'",
            "create a function": "create function pgqrs.planted() returns int language sql as 'select 1'",
            "rule": "create rule planted as on insert to pgqrs.schema_version do also select 1",
            "row level security": "alter table pgqrs.runs enable row level security",
            "policy": "create policy planted on pgqrs.runs using (true)",
            "default": "alter table pgqrs.runs alter column created_at set default pg_catalog.now()",
            "index": "create index on pgqrs.runs (status)",
            "drop": "drop view pgqrs.queue_stats",
            "change the owner": "alter view pgqrs.queue_stats owner to pgqrs_admin",
            "become the owner": "set role pgqrs_owner",
            "write a table": "update pgqrs.schema_version set version = version",
        }
        for what, stmt in refused.items():
            assert sqlstate(lambda s=stmt: admin.execute(s)) == "42501", f"an admin member could {what}"
    assert one(conn, "select count(*) from pg_trigger where tgname = 'planted'")[0] == 0
    assert one(conn, "select to_regprocedure('pgqrs.planted()')")[0] is None


def test_an_admin_member_still_operates_the_engine(logins: None, db: str, conn: Conn) -> None:
    conn.execute("select pgqrs.create_workflow('ops_wf', '{\"max_attempts\": 1}')")
    worker = one(conn, "select pgqrs.register_worker('ops_w', 'h', 1, 'ops_wf')")[0]
    run = one(conn, "select run_id from pgqrs.trigger('ops_wf', '{}')")[0]
    token = one(conn, "select lease_token from pgqrs.dequeue('ops_wf', %s)", (worker,))[0]
    conn.execute("select pgqrs.acquire_step(%s, 's', %s)", (run, token))
    conn.execute("select * from pgqrs.fail_step(%s, 's', %s, '{}', false)", (run, token))
    # every function of the schema, whatever its name: later ops calls need no edit of the grants
    missing = conn.execute(
        "select p.oid::regprocedure::text from pg_proc as p where p.pronamespace = 'pgqrs'::regnamespace"
        " and not has_function_privilege('pgqrs_admin', p.oid, 'execute')"
    ).fetchall()
    assert missing == []
    relations = [
        r[0]
        for r in conn.execute(
            "select c.oid::regclass::text from pg_class as c"
            " where c.relnamespace = 'pgqrs'::regnamespace and c.relkind in ('r', 'p', 'v') order by 1"
        )
    ]
    with as_login(db, "pgqrs_t_admin") as admin:
        assert one(admin, "select count(*) from pgqrs.dead_letters")[0] == 1
        assert one(admin, "select pgqrs.retry_run(%s)", (run,))[0] == "QUEUED"
        assert one(admin, "select status from pgqrs.run_status(%s)", (run,))[0] == "QUEUED"
        for rel in relations:  # the views, and the tables read-only for debugging
            admin.execute(sql.SQL("select * from {} limit 1").format(sql.SQL(rel)))
        admin.execute("select set_config('pgqrs.now', '2031-01-01 00:00+00', false)")  # the test clock
        assert str(one(admin, "select pgqrs.now()::text")[0]).startswith("2031-01-01")


# --- the install refuses objects it did not create --------------------------------------------------------

PLANTED_BODY = """
begin
    create table if not exists public.pgqrs_t_planted_marker ();
    alter role pgqrs_t_admin superuser;
    return {ret};
end
"""


@pytest.fixture
def v2_db(logins: None, pg_dsn: str) -> Iterator[str]:
    """A database at schema version 2 as it shipped: pgqrs_admin owns every object in it."""
    name = f"sec_v2_{os.getpid()}"
    drop_db(name, pg_dsn)
    _admin_execute(pg_dsn, sql.SQL("create database {}").format(sql.Identifier(name)))
    dsn = make_conninfo(pg_dsn, dbname=name)
    apply_fixture(dsn, 2)
    yield dsn
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("alter role pgqrs_t_admin nosuperuser")
    if not os.environ.get("PGQRS_KEEP_DBS"):
        drop_db(name, pg_dsn)


def planted_code_ran(conn: Conn) -> bool:
    marker = one(conn, "select to_regclass('public.pgqrs_t_planted_marker') is not null")[0]
    superuser = one(conn, "select rolsuper from pg_roles where rolname = 'pgqrs_t_admin'")[0]
    return bool(marker or superuser)


def test_install_refuses_a_trigger_planted_by_a_v2_admin(v2_db: str) -> None:
    with as_login(v2_db, "pgqrs_t_admin") as admin:
        assert one(admin, "select pgqrs.schema_version()")[0] == 2
        admin.execute(
            "create function pgqrs.planted() returns trigger language plpgsql as $$"
            + PLANTED_BODY.format(ret="new")
            + "$$"
        )
        admin.execute(
            "create trigger planted before insert on pgqrs.schema_version for each row"
            " execute function pgqrs.planted()"
        )
    refused: UnexpectedObjects | None = None
    try:
        pgqrs.install(v2_db)  # as the superuser
    except UnexpectedObjects as exc:
        refused = exc
    with psycopg.connect(v2_db, autocommit=True) as conn:
        assert not planted_code_ran(conn), "the install ran the planted trigger as the superuser"
        assert one(conn, "select pgqrs.schema_version()")[0] == 2, "a refused install changed the database"
    assert refused is not None, "the install did not refuse the planted trigger"
    assert "trigger planted on table pgqrs.schema_version (runs pgqrs.planted())" in refused.findings
    assert "trigger planted on table pgqrs.schema_version" in str(refused)


def test_install_refuses_a_view_changed_by_a_v2_admin(v2_db: str) -> None:
    with as_login(v2_db, "pgqrs_t_admin") as admin:
        admin.execute(
            "create function pgqrs.planted() returns interval language plpgsql as $$"
            + PLANTED_BODY.format(ret="interval '0'")
            + "$$"
        )
        admin.execute(
            "create or replace view pgqrs.queue_stats as select q.name as queue, 0::bigint as ready,"
            " 0::bigint as leased, 0::bigint as delayed, 0::bigint as depth, pgqrs.planted() as oldest_age"
            " from pgqrs.queues as q"
        )
    with pytest.raises(UnexpectedObjects) as info:
        pgqrs.install(v2_db)
    assert "view pgqrs.queue_stats uses function pgqrs.planted()" in info.value.findings
    with psycopg.connect(v2_db, autocommit=True) as conn:
        assert not planted_code_ran(conn)
        # what the operator does: drop the planted function (and with it the view), then install again
        conn.execute("drop function pgqrs.planted() cascade")
    assert pgqrs.install(v2_db) >= 3
    with psycopg.connect(v2_db, autocommit=True) as conn:
        conn.execute("select * from pgqrs.queue_stats")
        assert not planted_code_ran(conn)
        owner = one(conn, "select relowner::regrole::text from pg_class where relname = 'queue_stats'")[0]
        assert owner == "pgqrs_owner"


def test_install_refuses_functions_a_v2_admin_left_in_the_schema(v2_db: str) -> None:
    """A SECURITY DEFINER function a v2 admin member created (nothing calls it) would pass to pgqrs_owner with
    the upgrade, and the admin could then run code as the engine's owner. So would an extra overload of an
    engine function. The install refuses both, naming them, and changes nothing."""
    with as_login(v2_db, "pgqrs_t_admin") as admin:
        admin.execute("set role pgqrs_admin")  # owned by the engine's owner of v2: nothing else tells it
        admin.execute(
            "create function pgqrs.backdoor(p_sql text) returns void language plpgsql security definer"
            " as $$ begin execute p_sql; end $$"
        )
        admin.execute(
            "create function pgqrs.now(p_zone text) returns timestamptz language sql as 'select now()'"
        )
    with pytest.raises(UnexpectedObjects) as info:
        pgqrs.install(v2_db)
    assert "function pgqrs.backdoor(text): not one of the engine's" in info.value.findings
    assert any(f.startswith("functions ") and "pgqrs.now(text)" in f for f in info.value.findings)
    with psycopg.connect(v2_db, autocommit=True) as conn:
        assert one(conn, "select pgqrs.schema_version()")[0] == 2
        owner = one(conn, "select proowner::regrole::text from pg_proc where proname = 'backdoor'")[0]
        assert owner == "pgqrs_admin", "the refused install handed nothing over"
        conn.execute("drop function pgqrs.backdoor(text), pgqrs.now(text)")
    assert pgqrs.install(v2_db) >= 3


def test_install_names_every_kind_of_planted_object(conn: Conn, db: str) -> None:
    """Planted as a superuser here (a member of pgqrs_owner could do the same): each is named, none runs."""
    conn.execute("create role pgqrs_t_stranger nologin")
    try:
        conn.execute(
            "create function pgqrs.planted() returns timestamptz language plpgsql as $$"
            + PLANTED_BODY.format(ret="pg_catalog.now()")
            + "$$"
        )
        conn.execute("alter function pgqrs.planted() owner to pgqrs_t_stranger")
        plants = {
            "default value for column created_at of table pgqrs.runs uses function pgqrs.planted()": (
                "alter table pgqrs.runs alter column created_at set default pgqrs.planted()"
            ),
            "rule planted on table pgqrs.workers": "create rule planted as on insert to pgqrs.workers do also"
            " select 1",
            "row level security on table pgqrs.steps": "alter table pgqrs.steps enable row level security",
            "policy planted on table pgqrs.steps": "create policy planted on pgqrs.steps using (true)",
            "type pgqrs.positive: pgqrs creates none": (
                "create domain pgqrs.positive as int check (value > 0)"
            ),
            "function pgqrs.planted() is owned by pgqrs_t_stranger": "select 1",
            "constraint planted on table pgqrs.workflows uses function pgqrs.planted()": (
                "alter table pgqrs.workflows add constraint planted check (pgqrs.planted() is not null)"
            ),
            "default value for column installed_at of table pgqrs.schema_version uses function pgqrs.now()": (
                "alter table pgqrs.schema_version alter column installed_at set default pgqrs.now()"
            ),
        }
        for stmt in plants.values():
            conn.execute(stmt)
        with pytest.raises(UnexpectedObjects) as info:
            pgqrs.install(db)
        assert set(plants) <= set(info.value.findings), info.value.findings
        assert not planted_code_ran(conn)
    finally:
        conn.execute("drop function pgqrs.planted() cascade")
        conn.execute("drop owned by pgqrs_t_stranger")
        conn.execute("drop role pgqrs_t_stranger")
