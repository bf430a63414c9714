"""The transactional step for other languages (docs/transactions.md), run in psql exactly as documented: its
first block leases a run, its second is `begin; <write>; select pgqrs.complete_step(...); commit;`. With the
lease held, the row and the step commit together; with the lease expired or taken over, complete_step raises
QR004 and the row is not there after the rollback.
"""

from __future__ import annotations

import subprocess
import time
from typing import Any

import psycopg

from conftest import REPO
from pg_binaries import pg_tool
from test_readme import blocks

DOC = REPO / "docs" / "transactions.md"


def psql(dsn: str, script: str, **variables: Any) -> subprocess.CompletedProcess[str]:
    args = [pg_tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose", "-d", dsn]
    for name, value in variables.items():
        args += ["-v", f"{name}={value}"]
    return subprocess.run(args + ["-f", "-"], input=script, capture_output=True, text=True, timeout=60)


def lease_and_transaction() -> tuple[str, str]:
    lease, transaction = blocks(DOC, "sql")
    assert transaction.startswith("begin;\n") and transaction.endswith("commit;\n")
    assert "select pgqrs.complete_step(" in transaction
    return lease, transaction


def recorded(conn: psycopg.Connection[Any]) -> tuple[list[Any], list[Any]]:
    payments = conn.execute("select order_id, amount from payments").fetchall()
    steps = conn.execute("select run_id, step_id, status, value from pgqrs.steps").fetchall()
    return payments, steps


def test_with_the_lease_held_the_row_and_the_step_commit_together(
    db: str, conn: psycopg.Connection[Any]
) -> None:
    leasing, transaction = lease_and_transaction()
    done = psql(db, leasing + transaction)
    assert done.returncode == 0, done.stderr
    (run_id,) = conn.execute("select run_id from pgqrs.runs").fetchone() or (None,)
    assert recorded(conn) == ([(42, 10)], [(run_id, "debit", "SUCCESS", {"paid": 10})])


def lease(conn: psycopg.Connection[Any], worker: str, seconds: float) -> tuple[int, str]:
    """Lease the queue's run for `seconds` as `worker`: (run id, lease token)."""
    row = conn.execute("select run_id, lease_token::text from pgqrs.dequeue('checkout',"
                       " pgqrs.register_worker(%s, p_queue => 'checkout'),"
                       " p_visibility => %s * interval '1 s')", (worker, seconds)).fetchone()
    assert row is not None
    return row[0], row[1]


def setup_without_lease(db: str, conn: psycopg.Connection[Any]) -> None:
    """The documented set-up, up to the dequeue (the test leases the run itself, briefly)."""
    leasing, _transaction = lease_and_transaction()
    setup = "\n".join(line for line in leasing.splitlines() if "pgqrs.dequeue" not in line)
    done = psql(db, setup)
    assert done.returncode == 0, done.stderr


def test_with_the_lease_expired_complete_step_raises_qr004_and_the_row_rolls_back(
    db: str, conn: psycopg.Connection[Any]
) -> None:
    _lease, transaction = lease_and_transaction()
    setup_without_lease(db, conn)
    run_id, token = lease(conn, "slow", 0.2)
    time.sleep(0.4)
    failed = psql(db, transaction, run_id=run_id, lease_token=token)
    assert failed.returncode == 3 and "QR004" in failed.stderr and "expired" in failed.stderr, failed.stderr
    assert recorded(conn) == ([], [])


def test_with_the_lease_taken_over_complete_step_raises_qr004_and_only_the_new_holder_commits(
    db: str, conn: psycopg.Connection[Any]
) -> None:
    _lease, transaction = lease_and_transaction()
    setup_without_lease(db, conn)
    run_id, stale = lease(conn, "slow", 0.2)
    time.sleep(0.4)
    taken_over, current = lease(conn, "fast", 30)  # another worker's dequeue of the expired lease
    assert taken_over == run_id and current != stale
    failed = psql(db, transaction, run_id=run_id, lease_token=stale)
    assert failed.returncode == 3 and "QR004" in failed.stderr, failed.stderr
    assert "does not match" in failed.stderr  # the detail: taken over, not expired
    assert recorded(conn) == ([], [])
    done = psql(db, transaction, run_id=run_id, lease_token=current)  # the new holder's
    assert done.returncode == 0, done.stderr
    assert recorded(conn) == ([(42, 10)], [(run_id, "debit", "SUCCESS", {"paid": 10})])
