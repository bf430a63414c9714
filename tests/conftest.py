"""Shared pytest fixtures: a real PostgreSQL (scripts/pg.sh), one fresh database per test.

The cluster is found through PGHOST/PGPORT/PGUSER (``eval "$(scripts/pg.sh env)"``, done by ``make pytest``);
without PGHOST the default cluster of scripts/pg.sh is used. An unreachable database skips the tests on a
laptop and fails them in CI (CI=true).

The schema is installed once per session into the template database ``pgqrs_tmpl``; ``fresh_db(name)`` and
the ``db`` fixture make ``CREATE DATABASE name TEMPLATE pgqrs_tmpl`` (fast: no SQL is replayed).
"""

from __future__ import annotations

import importlib
import itertools
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

import pgqrs

REPO = Path(__file__).resolve().parent.parent
SQL_DIR = REPO / "sql"

_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
TEMPLATE_DB = "pgqrs_tmpl" + (f"_{_worker}" if _worker else "")
_counter = itertools.count(1)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def _default_pgdir() -> str:
    """The cluster directory scripts/pg.sh uses without $PGQRS_PGDIR (it names the major version)."""
    done = subprocess.run(
        [str(REPO / "scripts" / "pg.sh"), "dir"], check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def server_dsn(dbname: str = "postgres") -> str:
    """DSN of database `dbname` on the test cluster."""
    return make_conninfo(
        host=os.environ.get("PGHOST") or _default_pgdir(),
        port=os.environ.get("PGPORT", "5432"),
        user=os.environ.get("PGUSER", "postgres"),
        dbname=dbname,
    )


def schema_files() -> list[Path]:
    """The engine's SQL, in the order it is applied: the files sql/install.sql lists."""
    return importlib.import_module("pgqrs.install").schema_files(SQL_DIR)


def install_schema(dsn: str) -> None:
    """Install the pgqrs schema into the database at `dsn`, the way users do: ``pgqrs.install(dsn)``."""
    try:
        pgqrs.install(dsn)
    except psycopg.Error as e:
        raise RuntimeError(f"pgqrs.install into {dsn!r} failed: {e}") from e


def _admin_execute(admin_dsn: str, *stmts: sql.Composed) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute("set client_min_messages = warning")
        for s in stmts:
            conn.execute(s)


def drop_db(name: str, admin_dsn: str | None = None) -> None:
    _admin_execute(
        admin_dsn or server_dsn(),
        sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)),
    )


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """DSN of the maintenance database `postgres` on the test cluster; skips (fails in CI) if unreachable."""
    dsn = server_dsn()
    try:
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            conn.execute("select 1")
    except psycopg.OperationalError as e:
        msg = f"PostgreSQL not reachable at {dsn!r} (run `make db`): {e}"
        if _in_ci():
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    return dsn


_templates: dict[str, str] = {}  # admin DSN -> template database name, made once per process


def ensure_template(admin_dsn: str | None = None) -> str:
    """Create (once per process and cluster) the template database with the schema installed."""
    admin_dsn = admin_dsn or server_dsn()
    if admin_dsn not in _templates:
        drop_db(TEMPLATE_DB, admin_dsn)
        _admin_execute(admin_dsn, sql.SQL("create database {}").format(sql.Identifier(TEMPLATE_DB)))
        install_schema(make_conninfo(admin_dsn, dbname=TEMPLATE_DB))
        _templates[admin_dsn] = TEMPLATE_DB
    return _templates[admin_dsn]


def fresh_db(name: str, admin_dsn: str | None = None) -> str:
    """Create database `name` (dropped first if it exists) with the schema installed; return its DSN.

    `admin_dsn` points at another cluster's maintenance database (tests that run their own cluster).
    """
    admin_dsn = admin_dsn or server_dsn()
    template = ensure_template(admin_dsn)
    drop_db(name, admin_dsn)
    _admin_execute(
        admin_dsn,
        sql.SQL("create database {} template {}").format(sql.Identifier(name), sql.Identifier(template)),
    )
    return make_conninfo(admin_dsn, dbname=name)


@pytest.fixture
def db(request: pytest.FixtureRequest, pg_dsn: str) -> Iterator[str]:
    """DSN of a new database with the schema installed, private to this test; dropped afterwards
    (set PGQRS_KEEP_DBS=1 to keep it for a post-mortem)."""
    slug = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")
    name = f"t{next(_counter)}_{os.getpid()}{'_' + _worker if _worker else ''}_{slug}"[:63]
    yield fresh_db(name, pg_dsn)
    if not os.environ.get("PGQRS_KEEP_DBS"):
        drop_db(name, pg_dsn)


@pytest.fixture
def conn(db: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """Autocommit connection to the test's database."""
    with psycopg.connect(db, autocommit=True) as c:
        yield c


@pytest.fixture
def conn2(db: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A second autocommit connection to the same database, for races (SKIP LOCKED, lease takeover)."""
    with psycopg.connect(db, autocommit=True) as c:
        yield c


# --- login roles (the least-privilege tests, tests/test_security*.py) -------------------------------------

LOGINS = {
    "pgqrs_t_worker": "pgqrs_worker",
    "pgqrs_t_client": "pgqrs_client",
    "pgqrs_t_admin": "pgqrs_admin",
    "pgqrs_t_nobody": None,
}


@pytest.fixture(scope="module")
def logins(pg_dsn: str) -> Iterator[None]:
    """Login roles in each pgqrs role (LOGINS), made for the module that asks and dropped after it."""
    ensure_template(pg_dsn)  # the roles pgqrs_* exist once the schema is installed somewhere
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for login, role in LOGINS.items():
            conn.execute(
                sql.SQL(
                    "do $$ begin if not exists (select from pg_roles where rolname = {name}) then "
                    "create role {ident} login; end if; end $$"
                ).format(name=sql.Literal(login), ident=sql.Identifier(login))
            )
            if role:
                conn.execute(sql.SQL("grant {} to {}").format(sql.Identifier(role), sql.Identifier(login)))
    yield
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for login in LOGINS:
            try:
                conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(login)))
            except psycopg.Error:
                pass  # still owns something in a kept database (PGQRS_KEEP_DBS): harmless
