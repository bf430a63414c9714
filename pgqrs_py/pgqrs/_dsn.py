"""Which database a `pgqrs` command, `pgqrs.connect()`, `pgqrs.install()` and the examples use: one rule,
`resolve_dsn` (docs/embedded.md)."""

from __future__ import annotations

import os
import sys

# Any of these set means libpq is told where the server is: pgqrs then leaves the choice to libpq.
LIBPQ_SERVER_VARIABLES = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGSERVICE")


def resolve_dsn(dsn: str | None = None) -> str:
    """The connection string to use, in this order: `dsn` when given; $PGQRS_DSN; "" when one of libpq's
    PGHOST, PGHOSTADDR, PGPORT, PGDATABASE or PGSERVICE is set (libpq reads them); the embedded server of
    `pgqrs dev` in its default data directory when `pgqrs-engine[embedded]` is installed (started if needed,
    with the schema installed and a one-line notice on stderr); else "" (libpq's defaults). Calls no engine
    function itself (`pgqrs.install` when it starts the embedded server). Raises
    pgqrs.embedded.DevServerError when the embedded server cannot start."""
    if dsn is not None:
        return dsn
    if os.environ.get("PGQRS_DSN"):
        return os.environ["PGQRS_DSN"]
    if any(os.environ.get(name) for name in LIBPQ_SERVER_VARIABLES):
        return ""
    from . import embedded

    if not embedded.is_installed():
        return ""
    server, started = embedded.start(embedded.default_data_dir())
    if started:
        from .install import install

        install(server.dsn)
        print(f"pgqrs: started the embedded PostgreSQL server in {server.data_dir} (no PGQRS_DSN or PG* "
              f"variables set; stop it with `pgqrs dev --stop`)", file=sys.stderr)
    return server.dsn
