"""The chaos harness's own PostgreSQL cluster (scripts/pg.sh, restarted with `-m immediate`), the side
table chaos.side that step bodies write, and the harness's clock and log.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "pgqrs_py"))
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests"))
from repeats import (  # noqa: E402
    LEASE_LOG_DDL,
)

import pgqrs  # noqa: E402
from pg_binaries import PGBIN  # noqa: E402

SIDE_DDL = """
create schema if not exists chaos;
create table if not exists chaos.side (
    side_id bigint generated always as identity primary key,
    run_id bigint not null,
    step_id text not null,
    run_attempt integer not null,
    pid integer not null,
    worker text not null,
    lease_token uuid,
    started_at timestamptz not null
);
create index if not exists side_run_step_idx on chaos.side (run_id, step_id);
"""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def log(msg: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---- the cluster -------------------------------------------------------------------------------------------


class Cluster:
    """A throwaway cluster of our own (scripts/pg.sh), which we may restart with `-m immediate`."""

    def __init__(self, pgdir: str | None = None) -> None:
        self.pgdir = Path(pgdir or f"/tmp/pgqrs-chaos-{os.getpid()}")
        # fsync off (speed; the OS does not crash here) but synchronous_commit on: a commit the client saw
        # must survive `-m immediate`, as on any durable deployment (off, the last ~200 ms of commits vanish).
        self.env = {
            **os.environ,
            "PGQRS_PGDIR": str(self.pgdir),
            "PGQRS_FSYNC": "off",
            "PGQRS_SYNC_COMMIT": "on",
        }
        self.restarts: list[float] = []

    def _pg_sh(self, *args: str) -> None:
        subprocess.run(
            [str(REPO / "scripts" / "pg.sh"), *args],
            env=self.env,
            check=True,
            timeout=180,
            stdout=subprocess.DEVNULL,
        )

    def start(self) -> None:
        self._pg_sh("start")
        # commit times of the lease and step logs (repeats.py): a restart makes the setting take effect
        with psycopg.connect(self.dsn(), autocommit=True) as c:
            on = c.execute("show track_commit_timestamp").fetchone()[0] == "on"  # type: ignore[index]
            if not on:
                c.execute("alter system set track_commit_timestamp = on")
        if not on:
            self._pg_sh("stop")
            self._pg_sh("start")

    def stop(self) -> None:
        try:
            self._pg_sh("stop")
        except subprocess.SubprocessError as exc:
            log(f"stopping {self.pgdir} failed: {exc}")

    def remove(self) -> None:
        shutil.rmtree(self.pgdir, ignore_errors=True)

    def _as_server(self, cmd: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return cmd
        runuser = shutil.which("runuser", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") or "runuser"
        return [runuser, "-u", "postgres", "--", *cmd]

    def restart_immediate(self) -> float:
        """`pg_ctl restart -m immediate`: every backend dies at once, then crash recovery; returns the time.
        `-l` keeps the new postmaster's output in server.log (not on our pipe)."""
        cmd = self._as_server(
            [
                str(PGBIN / "pg_ctl"),
                "-D",
                str(self.pgdir),
                "-l",
                str(self.pgdir / "server.log"),
                "-m",
                "immediate",
                "-w",
                "-t",
                "120",
                "restart",
            ]
        )
        t0 = time.monotonic()
        subprocess.run(
            cmd, check=True, timeout=180, cwd="/tmp", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        took = time.monotonic() - t0
        self.restarts.append(took)
        return took

    def dsn(self, dbname: str = "postgres", app: str = "chaos-harness") -> str:
        return make_conninfo(
            host=str(self.pgdir),
            port="5432",
            user="postgres",
            dbname=dbname,
            application_name=app,
            connect_timeout="10",
        )

    def create_db(self, name: str) -> str:
        with psycopg.connect(self.dsn(), autocommit=True) as c:
            c.execute("set client_min_messages = warning")
            c.execute(f'drop database if exists "{name}" with (force)')
            c.execute(f'create database "{name}"')
        dsn = self.dsn(name)
        pgqrs.install(dsn)
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("set client_min_messages = warning")
            c.execute(SIDE_DDL)
            c.execute(LEASE_LOG_DDL)
        return dsn
