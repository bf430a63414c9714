"""The pg_cron recipe of docs/schedules.md, in a throwaway cluster of its own (pg_cron must be preloaded,
which the shared test cluster is not): a pg_cron job calls pgqrs.fire_schedules every minute, and a due
schedule's run starts with no pgqrs worker running at all. pg_cron 1.4 (Debian's postgresql-15-cron) runs
jobs at most once a minute, so this test waits for the next minute boundary: up to a minute."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from conftest import REPO, install_schema
from pg_binaries import EMBEDDED, PGBIN

PG_CRON = PGBIN.parent / "lib" / "pg_cron.so"  # Debian: /usr/lib/postgresql/15/lib
pytestmark = pytest.mark.timeout(180)


def pg(pgdir: str, *args: str) -> None:
    subprocess.run([str(REPO / "scripts" / "pg.sh"), *args], env={**os.environ, "PGQRS_PGDIR": pgdir},
                   check=True, capture_output=True, text=True)


@pytest.fixture
def cron_cluster() -> Iterator[str]:
    """A cluster with pg_cron preloaded, running its jobs in database postgres on background workers (the
    cluster listens on a unix socket only); its DSN."""
    if not PG_CRON.exists() and EMBEDDED:
        pytest.skip("pg_cron is not packaged for the embedded wheel's PostgreSQL (CI runs it on 15)")
    if not PG_CRON.exists():
        pytest.fail("pg_cron is not installed: apt-get install postgresql-15-cron (scripts/deps.sh does)")
    pgdir = tempfile.mkdtemp(prefix="pgqrs-cron-", dir="/tmp")
    shutil.rmtree(pgdir)
    dsn = f"host={pgdir} port=5432 user=postgres dbname=postgres"
    try:
        pg(pgdir, "start")
        # after the line that includes the settings pg.sh writes on each start, so these win
        with open(Path(pgdir) / "postgresql.conf", "a") as conf:
            conf.write("shared_preload_libraries = 'pg_stat_statements, pg_cron'\n"
                       "cron.database_name = 'postgres'\ncron.use_background_workers = on\n")
        pg(pgdir, "stop")
        pg(pgdir, "start")
        yield dsn
    finally:
        pg(pgdir, "stop")
        shutil.rmtree(pgdir, ignore_errors=True)


def test_a_pg_cron_job_fires_due_schedules_without_workers(cron_cluster: str) -> None:
    install_schema(cron_cluster)
    with psycopg.connect(cron_cluster, autocommit=True) as conn:
        conn.execute("create extension pg_cron")
        conn.execute("select pgqrs.create_workflow('report')")
        conn.execute("select pgqrs.create_schedule('every-minute', 'report', '* * * * *')")
        # due now, so that the job's first run (at the next minute boundary) must start it
        conn.execute("update pgqrs.schedule_defs set next_fire_at = date_trunc('minute', now())")
        # the recipe: one job that fires every schedule
        conn.execute("select cron.schedule('pgqrs-fire-schedules', '* * * * *',"
                     " 'select pgqrs.fire_schedules()')")
        deadline = time.monotonic() + 75
        started = None
        while time.monotonic() < deadline:
            started = conn.execute("select last_run_id from pgqrs.schedules").fetchone()[0]  # type: ignore[index]
            if started is not None:
                break
            time.sleep(0.5)
        assert started is not None, conn.execute("select * from cron.job_run_details").fetchall()
        status, message = conn.execute(
            "select status, return_message from cron.job_run_details order by runid desc limit 1"
        ).fetchone()  # type: ignore[misc]
        assert status == "succeeded", message
        assert conn.execute("select status from pgqrs.runs where run_id = %s", (started,)).fetchone() == (
            "QUEUED",
        )
