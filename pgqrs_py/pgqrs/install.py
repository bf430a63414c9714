"""Apply the engine's SQL to a database: `pgqrs.install(conn_or_dsn)`. Synchronous and idempotent.

The schema has a recorded version (table ``pgqrs.schema_version``, function ``pgqrs.schema_version()``).
The files that ``sql/install.sql`` lists (its ``\\ir`` lines, in that order; `schema_files`) are always the
*current* schema, every statement safe to run again (``create ... if not exists``, ``create or replace``);
``sql/migrations/<from>--<to>.sql`` are forward-only steps between versions for what re-running those files
cannot do (add a column, change a function's signature, move data). One install, in one transaction under an
advisory lock:

- empty database: apply the schema files;
- older version: apply the migrations from the installed version up to this package's, in order, recording
  each version, then re-apply the schema files (functions, views and grants to their current text);
- same version: re-apply the schema files (a no-op in effect);
- newer version (a newer package installed it): refuse with `SchemaTooNew`, changing nothing.

Before any of that, and before it reads or runs anything in schema ``pgqrs``, the install checks that the
installing role may install (a superuser, or a member of ``pgqrs_owner``) and that the catalog holds nothing
in ``pgqrs`` that would run code as the installing role (a trigger, a rule, a policy, a default or a view that
calls a foreign function, an object of an unexpected owner or kind): it refuses with `UnexpectedObjects`,
naming each, and changes nothing.

See docs/upgrades.md and docs/security.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from ._dsn import resolve_dsn
from ._install_check import foreign_functions
from ._sql import install as install_sql
from .errors import PgqrsError

# The version the schema files make on their own; later versions are reached through migrations.
BASE_VERSION = 1
_MIGRATION_NAME = re.compile(r"^(\d+)--(\d+)\.sql$")
# The manifest of the schema files: psql runs it as it is (`psql -f sql/install.sql`), the installer reads it.
MANIFEST = "install.sql"
_MANIFEST_LINE = re.compile(r"^\\ir (\S+\.sql)$")


class SchemaTooNew(PgqrsError):
    """The database holds a newer schema version than this package knows: upgrade the package instead."""


class SchemaMismatch(PgqrsError):
    """A worker found a schema version other than the one this package installs: its calls would not match the
    engine's functions. Run `pgqrs upgrade` (or `pgqrs.install`) with this package."""


def check_version(installed: int) -> None:
    """Raise SchemaMismatch unless the database holds the schema version this package installs."""
    expected = target_version()
    if installed != expected:
        raise SchemaMismatch(
            f"the database has pgqrs schema version {installed}, this package needs {expected}",
            hint="Run `pgqrs upgrade` (or pgqrs.install(dsn)) with this package.",
        )


class UnexpectedObjects(PgqrsError):
    """Schema pgqrs holds objects the install did not create and that would run code as the installing role
    (`findings` names each). Nothing was changed; see docs/security.md."""

    def __init__(self, findings: list[str]) -> None:
        super().__init__(
            "pgqrs install refuses to run: schema pgqrs holds objects it did not create, which could run code"
            " as the installing role:\n" + "\n".join(f"  - {f}" for f in findings),
            hint="Inspect them and drop what you did not put there on purpose (a member of pgqrs_admin could"
            " create such objects up to schema version 2), then install again. See docs/security.md.",
        )
        self.findings = findings


class MigrationError(PgqrsError):
    """The migrations directory is inconsistent (no path from the installed version, a backward step...)."""


@dataclass(frozen=True)
class Migration:
    from_version: int
    to_version: int
    path: Path


def sql_dir() -> Path:
    """The SQL shipped in the wheel (pgqrs/sql), or the repository's sql/ in an editable install."""
    packaged = Path(str(resources.files("pgqrs"))) / "sql"
    if packaged.is_dir():
        return packaged
    repo = Path(__file__).resolve().parents[2] / "sql"
    if repo.is_dir():
        return repo
    raise FileNotFoundError("pgqrs SQL files not found (expected pgqrs/sql in the package or <repo>/sql)")


def schema_files(directory: Path | None = None) -> list[Path]:
    """The schema files in the order they apply: the ``\\ir <file>`` lines of ``install.sql`` in `directory`
    (default: `sql_dir`). Any other line but a comment or a blank one is refused, so that psql, which runs the
    manifest itself, and this reading of it cannot disagree."""
    directory = sql_dir() if directory is None else Path(directory)
    manifest = directory / MANIFEST
    files: list[Path] = []
    for number, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("--"):
            continue
        match = _MANIFEST_LINE.match(stripped)
        if match is None or match[1].startswith("/") or ".." in match[1].split("/"):
            raise ValueError(
                f"{manifest}:{number}: expected `\\ir <file>.sql` below sql/, or a comment: {line!r}"
            )
        files.append(directory / match[1])
    return files


def migrations(directory: Path | None = None) -> list[Migration]:
    """The migrations in `directory` (default: sql/migrations), ordered by from-version, checked for shape:
    names ``<from>--<to>.sql``, forward only, at most one step out of each version."""
    directory = sql_dir() / "migrations" if directory is None else Path(directory)
    if not directory.is_dir():
        return []
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"migration file {path.name!r} is not named <from>--<to>.sql")
        step = Migration(int(match[1]), int(match[2]), path)
        if step.to_version <= step.from_version:
            raise MigrationError(f"migration {path.name} goes backwards: migrations are forward-only")
        if step.from_version in found:
            raise MigrationError(
                f"two migrations start at version {step.from_version}: "
                f"{found[step.from_version].path.name} and {path.name}"
            )
        found[step.from_version] = step
    return [found[v] for v in sorted(found)]


def target_version(migrations_dir: Path | None = None) -> int:
    """The schema version this package installs: the last migration's target, else BASE_VERSION."""
    return max([BASE_VERSION, *(m.to_version for m in migrations(migrations_dir))])


def upgrade_path(current: int, target: int, steps: list[Migration]) -> list[Migration]:
    """The migrations that lead from version `current` to `target`, in order."""
    by_from = {m.from_version: m for m in steps}
    path: list[Migration] = []
    version = current
    while version < target:
        step = by_from.get(version)
        if step is None:
            raise MigrationError(f"no migration from schema version {version} (towards {target})")
        path.append(step)
        version = step.to_version
    if version != target:
        raise MigrationError(f"the migrations from version {current} overshoot version {target}")
    return path


def install(conn_or_dsn: psycopg.Connection[Any] | str | None = None, *,
            migrations_dir: Path | str | None = None) -> int:
    """Install or upgrade the pgqrs schema in one transaction; returns the schema version now installed.
    Without a connection or DSN, into the database `pgqrs.resolve_dsn` chooses.

    `migrations_dir` replaces sql/migrations (tests). Never commits a caller's open transaction: with a
    connection inside a transaction the install joins it (as a savepoint).
    """
    directory = Path(migrations_dir) if migrations_dir is not None else None
    if conn_or_dsn is None:
        conn_or_dsn = resolve_dsn()
    if isinstance(conn_or_dsn, str):
        with psycopg.connect(conn_or_dsn, autocommit=True) as conn:
            return _install(conn, directory)
    return _install(conn_or_dsn, directory)


def _install(conn: psycopg.Connection[Any], migrations_dir: Path | None) -> int:
    steps = migrations(migrations_dir)
    target = max([BASE_VERSION, *(m.to_version for m in steps)])
    with conn.transaction():
        cur = conn.cursor(row_factory=tuple_row)  # whatever row factory the caller's connection has
        row = cur.execute(install_sql.PIN_SEARCH_PATH).fetchone()
        assert row is not None
        cur.execute(install_sql.INSTALL_LOCK)
        cur.execute(install_sql.QUIET_NOTICES)
        cur.execute(install_sql.MAY_INSTALL)
        findings = [r[0] for r in cur.execute(install_sql.UNEXPECTED_OBJECTS).fetchall()]
        if findings:
            raise UnexpectedObjects(findings)
        current = installed_version(cur)
        if current > target:
            raise SchemaTooNew(
                f"the database has pgqrs schema version {current}; this package installs version {target}",
                hint="Upgrade the pgqrs package; schema versions only move forward.",
            )
        if 0 < current < target:
            for step in upgrade_path(current, target, steps):
                _run_script(cur, step.path)
                cur.execute(install_sql.RECORD_VERSION, (step.to_version,))
        scripts = schema_files()
        for path in scripts:
            _run_script(cur, path)
        installed = [(r[0], r[1]) for r in cur.execute(install_sql.FUNCTIONS).fetchall()]
        findings = foreign_functions(installed, [p.read_text(encoding="utf-8") for p in scripts])
        if findings:
            raise UnexpectedObjects(findings)  # the transaction rolls back: nothing changed
        cur.execute(install_sql.RECORD_VERSION, (target,))
        version = cur.execute(install_sql.SCHEMA_VERSION).fetchone()
        cur.execute(install_sql.RESTORE_SEARCH_PATH, (row[0],))
    assert version is not None
    return int(version[0])


def installed_version(cur: psycopg.Cursor[Any]) -> int:
    """The schema version recorded in the database (the table pgqrs.schema_version), 0 when pgqrs is not
    installed."""
    row = cur.execute(install_sql.HAS_SCHEMA).fetchone()
    if row is None or not row[0]:
        return 0
    row = cur.execute(install_sql.INSTALLED_VERSION).fetchone()
    return int(row[0]) if row is not None else 0


def _run_script(cur: psycopg.Cursor[Any], path: Path) -> None:
    # a multi-statement script: no parameters and never prepared, so the simple query protocol carries it
    try:
        cur.execute(path.read_text(encoding="utf-8").encode(), prepare=False)
    except psycopg.Error as exc:
        exc.add_note(f"while applying {path.name}")
        raise
