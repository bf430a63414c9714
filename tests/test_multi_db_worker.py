"""A worker process serving several databases (docs/scaling.md, "Separate databases"): a store and a consumer
per database, gathered on one event loop, all stopped by one SIGTERM."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import pgqrs.sync as pgqrs_sync
from conftest import drop_db, fresh_db
from worker_procs import start_ready, stop_all, wait_for

WORKER = Path(__file__).resolve().parent / "multi_db_worker.py"


@pytest.fixture
def two_dbs(pg_dsn: str) -> Iterator[list[str]]:
    names = [f"multi_db_{i}_{id(pg_dsn) % 10_000}" for i in range(2)]
    yield [fresh_db(name, pg_dsn) for name in names]
    for name in names:
        drop_db(name, pg_dsn)


def test_one_process_serves_two_databases_and_stops_on_sigterm(two_dbs: list[str], tmp_path: Path) -> None:
    for dsn in two_dbs:
        with pgqrs_sync.connect(dsn) as store:
            store.create_workflow("scale")
            for i in range(20):
                store.trigger("scale", {"i": i})
    proc, _ = start_ready([sys.executable, str(WORKER), *two_dbs], tmp_path / "multi.log")
    try:
        for dsn in two_dbs:
            dbname = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
            with psycopg.connect(dsn) as conn:
                wait_for(f"the runs of {dbname}", lambda conn=conn: conn.execute(
                    "select count(*) = 20 from pgqrs.runs where status = 'SUCCESS'").fetchone()[0])
                outputs = conn.execute("select output from pgqrs.runs order by run_id").fetchall()
            assert [o for (o,) in outputs] == [{"db": dbname, "i": i} for i in range(20)]
        proc.send_signal(signal.SIGTERM)  # stops both consumers, not only the last one that started
        assert proc.wait(15) == 0, (tmp_path / "multi.log").read_text()
    finally:
        stop_all([proc])
    for dsn in two_dbs:
        with psycopg.connect(dsn) as conn:
            assert conn.execute("select status from pgqrs.workers").fetchall() == [("STOPPED",)]
