"""Apply the engine's SQL to a database: `pgqrs.install(conn_or_dsn)`. Synchronous and idempotent."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import tuple_row

# Serialises concurrent installs of one database (two workers starting at once).
_INSTALL_LOCK = "select pg_advisory_xact_lock(hashtext('pgqrs.install'))"


def sql_dir() -> Path:
    """The SQL shipped in the wheel (pgqrs/sql), or the repository's sql/ in an editable install."""
    packaged = Path(str(resources.files("pgqrs"))) / "sql"
    if packaged.is_dir():
        return packaged
    repo = Path(__file__).resolve().parents[2] / "sql"
    if repo.is_dir():
        return repo
    raise FileNotFoundError("pgqrs SQL files not found (expected pgqrs/sql in the package or <repo>/sql)")


def schema_files() -> list[Path]:
    """The schema files in the order they apply."""
    return sorted(sql_dir().glob("*.sql"))


def install(conn_or_dsn: psycopg.Connection[Any] | str) -> int:
    """Install or upgrade the pgqrs schema in one transaction; returns the schema version now installed."""
    if isinstance(conn_or_dsn, str):
        with psycopg.connect(conn_or_dsn, autocommit=True) as conn:
            return _install(conn)
    return _install(conn_or_dsn)


def _install(conn: psycopg.Connection[Any]) -> int:
    with conn.transaction():
        conn.execute(_INSTALL_LOCK)
        conn.execute("set local client_min_messages = warning")
        for path in schema_files():
            conn.execute(path.read_text(encoding="utf-8").encode())
        cur = conn.cursor(row_factory=tuple_row)  # whatever row factory the caller's connection has
        version = cur.execute("select pgqrs.schema_version()").fetchone()
    assert version is not None
    return int(version[0])
