"""A primary and a hot standby for the failover tests: scripts/ha.sh, driven from Python.

The pair lives in $PGQRS_HA_DIR-primary and -standby (default /tmp/pgqrs-ha-<pid>), on the binaries the test
cluster uses (PGQRS_PGBIN, as scripts/pg.sh resolves it). `dsn()` is the multi-host connection string every
client of the tests uses: libpq keeps the host that accepts writes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

REPO = Path(__file__).resolve().parent.parent
HA_SH = REPO / "scripts" / "ha.sh"
DBNAME = "pgqrs_ha"


class Pair:
    """A running pair (`start`), what happened to it (`crashed_at`), and its DSNs."""

    def __init__(self, synchronous: bool) -> None:
        self.prefix = os.environ.get("PGQRS_HA_DIR") or f"/tmp/pgqrs-ha-{os.getpid()}"
        self.synchronous = synchronous
        self.primary, self.standby = f"{self.prefix}-primary", f"{self.prefix}-standby"
        self.crashed_at: float | None = None

    def ha(self, *args: str) -> str:
        done = subprocess.run([str(HA_SH), *args], env={**os.environ, "PGQRS_HA_DIR": self.prefix},
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"ha.sh {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def start(self) -> None:
        self.ha("start", *([] if self.synchronous else ["--async"]))

    def crash(self) -> float:
        """Stop the primary as a crash does (pg_ctl stop -m immediate); returns the time it was gone."""
        self.ha("crash")
        self.crashed_at = time.time()
        return self.crashed_at

    def stall_standby(self) -> int:
        """Freeze the standby's WAL receiver (SIGSTOP), as a slow network would: the standby falls behind.
        Returns its pid, for resume_standby."""
        with psycopg.connect(self.host_dsn(self.standby, "postgres")) as conn:
            row = conn.execute("select pid from pg_stat_wal_receiver").fetchone()
        assert row is not None, "the standby has no WAL receiver"
        os.kill(row[0], signal.SIGSTOP)
        return int(row[0])

    @staticmethod
    def resume_standby(pid: int) -> None:
        """Let a frozen WAL receiver go on (it then finds its primary gone)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)

    def promote(self) -> None:
        self.ha("promote")

    def stop(self) -> None:
        self.ha("stop")

    def dsn(self, dbname: str = DBNAME, **extra: str) -> str:
        """The multi-host DSN: the primary first, the standby second, target_session_attrs=read-write."""
        hosts = f"{self.primary},{self.standby}"
        return make_conninfo(host=hosts, port="5432,5432", user="postgres", dbname=dbname,
                             target_session_attrs="read-write", **extra)

    def host_dsn(self, host: str, dbname: str = DBNAME) -> str:
        """A DSN of one of the two servers."""
        return make_conninfo(host=host, port="5432", user="postgres", dbname=dbname)
