"""Forking a run after a fix (pgqrs.fork_run via Store.fork_run), with real worker processes
(tests/worker_proc.py): the fork replays the steps before the chosen one without running their bodies, runs
the chosen step and the rest with the fixed code, and the failed original stays as it was.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import psycopg
import pytest

import pgqrs
from test_worker import Workers, executions, run_row, trigger, wait_status, workers  # noqa: F401 (fixture)


def test_fork_from_the_failed_step_after_a_fix_replays_the_steps_before_it(
    workers: Workers, conn: psycopg.Connection[Any], db: str  # noqa: F811 (the fixture)
) -> None:
    buggy, _ = workers.start("buggy", "--visibility", "5")
    run_id = trigger(conn, {"steps": ["s1", "s2", "s3", "s4"], "raise": {"s3": "bug"}})
    wait_status(conn, run_id, "ERROR")
    assert [s for s, _pid, _d in executions(conn, run_id)] == ["s1", "s2", "s3"]
    original = run_row(conn, run_id)
    original_steps = conn.execute("select * from pgqrs.steps where run_id = %s order by step_order",
                                  (run_id,)).fetchall()

    buggy.send_signal(signal.SIGTERM)  # the release with the fix replaces the buggy worker
    buggy.wait(30)
    fixed, _ = workers.start("fixed", "--visibility", "5", "--fixed", "s3")

    async def fork() -> int:
        async with await pgqrs.connect(db) as store:
            with pytest.raises(pgqrs.InvalidArgument, match="has no step s9"):
                await store.fork_run(run_id, "s9")
            handle = await store.fork_run(run_id, "s3")
            assert handle.created and handle.run_id != run_id
            return int(handle)

    fork_id = asyncio.run(fork())
    wait_status(conn, fork_id, "SUCCESS")
    # s1 and s2 were replayed from the copies, not run: only the fixed s3 and s4 ran, in the fixed worker
    assert executions(conn, fork_id) == [("s3", fixed.pid, 1), ("s4", fixed.pid, 1)]
    output = run_row(conn, fork_id)[2]
    assert output["steps"]["s1"] == {"step": "s1", "pid": buggy.pid}  # the original's recorded value
    assert output["steps"]["s3"] == {"step": "s3", "pid": fixed.pid}
    # the original: still ERROR, its steps and executions as they were
    assert run_row(conn, run_id) == original
    assert conn.execute("select * from pgqrs.steps where run_id = %s order by step_order",
                        (run_id,)).fetchall() == original_steps
    assert [s for s, _pid, _d in executions(conn, run_id)] == ["s1", "s2", "s3"]
