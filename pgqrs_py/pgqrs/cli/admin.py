"""`pgqrs install` / `pgqrs upgrade`: install or upgrade the schema (pgqrs.install)."""

from __future__ import annotations

import argparse

from .._sql import install as install_sql
from ..errors import mapped_errors
from .common import EXIT_OK, AddCommand, connect, emit_json, query


def register(add: AddCommand) -> None:
    """Add the commands of this group to the parser."""
    add("install", "install the pgqrs schema (idempotent)", cmd_install)
    add("upgrade", "upgrade the pgqrs schema to this package's version (idempotent)", cmd_install)


def cmd_install(args: argparse.Namespace) -> int:
    """`pgqrs install` and `pgqrs upgrade`: run `pgqrs.install` on the database and say what changed (the
    version before it, from pgqrs.schema_version). Raises what the install raises: SchemaTooNew,
    UnexpectedObjects, MigrationError, and 42501 for a role that may not install."""
    from ..install import install

    with connect(args) as conn:
        before = None
        if query(conn, install_sql.HAS_SCHEMA)[0]["installed"]:
            before = query(conn, install_sql.SCHEMA_VERSION)[0]["schema_version"]
        with mapped_errors():
            version = install(conn)
        database = conn.info.dbname
    if args.json:
        emit_json({"database": database, "previous_version": before, "version": version})
    elif before is None:
        print(f"installed pgqrs schema version {version} in database {database}")
    elif before == version:
        print(f"pgqrs schema version {version} is up to date in database {database}")
    else:
        print(f"upgraded pgqrs schema from version {before} to {version} in database {database}")
    return EXIT_OK
