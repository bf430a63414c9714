"""Transactional steps with real worker processes (tests/txn_worker.py): a worker killed inside the step's
transaction, after its write and before the COMMIT, leaves nothing behind; the run is taken over by another
worker and its row exists exactly once at the end.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from test_worker import wait_status
from txn_worker import TABLES
from worker_procs import WorkerProcs, sigkill, wait_for

WORKER = Path(__file__).with_name("txn_worker.py")


@pytest.fixture
def ledger_workers(db: str, tmp_path: Path) -> Iterator[WorkerProcs]:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(TABLES)
        conn.execute("select pgqrs.create_workflow('ledger')")
    workers = WorkerProcs(WORKER, db, tmp_path)
    yield workers
    workers.close()


def rows(conn: psycopg.Connection[Any], query: str, run_id: int) -> list[tuple[Any, ...]]:
    return conn.execute(query, (run_id,)).fetchall()


def test_sigkill_inside_the_transaction_applies_nothing_and_the_retry_applies_it_once(
    ledger_workers: WorkerProcs, conn: psycopg.Connection[Any]
) -> None:
    first, _ = ledger_workers.start("w1", "--visibility", "2")
    trigger = "select run_id from pgqrs.trigger('ledger', '{\"sleep\": 60}')"
    (run_id,) = conn.execute(trigger).fetchone() or (0,)
    marks = "select pid, delivery from marks where run_id = %s"
    wait_for("the body to write", lambda: rows(conn, marks, run_id) == [(first.pid, 1)])
    sigkill(first)  # after the insert, before complete_step and the COMMIT
    ledger = "select pid from ledger where run_id = %s"
    assert rows(conn, ledger, run_id) == []
    assert rows(conn, "select status from pgqrs.steps where run_id = %s and status = 'SUCCESS'", run_id) == []

    second, _ = ledger_workers.start("w2", "--visibility", "2")
    wait_status(conn, run_id, "SUCCESS")
    assert rows(conn, ledger, run_id) == [(second.pid,)]  # exactly once, by the worker that committed
    assert rows(conn, marks, run_id) == [(first.pid, 1), (second.pid, 2)]
    output = conn.execute("select output from pgqrs.runs where run_id = %s", (run_id,)).fetchone()
    assert output == ({"pid": second.pid},)


def test_a_frozen_worker_whose_run_was_taken_over_commits_nothing(
    ledger_workers: WorkerProcs, conn: psycopg.Connection[Any]
) -> None:
    """SIGSTOP inside the transaction, past the lease: another worker takes the run over and commits the step;
    woken up, the first one cannot commit its row (its lease is gone: QR004, or the heartbeat's cancel)."""
    first, _ = ledger_workers.start("w1", "--visibility", "1")
    trigger = "select run_id from pgqrs.trigger('ledger', '{\"sleep\": 2}')"
    (run_id,) = conn.execute(trigger).fetchone() or (0,)
    marks = "select pid, delivery from marks where run_id = %s"
    wait_for("the body to write", lambda: rows(conn, marks, run_id) == [(first.pid, 1)])
    first.send_signal(signal.SIGSTOP)
    try:
        second, _ = ledger_workers.start("w2", "--visibility", "1")
        wait_status(conn, run_id, "SUCCESS")
    finally:
        first.send_signal(signal.SIGCONT)
    open_transactions = ("select count(*) from pg_stat_activity where datname = current_database()"
                         " and state like 'idle in transaction%%' and pid <> pg_backend_pid()")
    wait_for("the frozen worker's transaction to end",
             lambda: conn.execute(open_transactions).fetchone() == (0,))
    assert rows(conn, "select pid from ledger where run_id = %s", run_id) == [(second.pid,)]
    assert rows(conn, marks, run_id) == [(first.pid, 1), (second.pid, 2)]
    assert first.poll() is None  # the worker lives on: it dropped the run, nothing else
