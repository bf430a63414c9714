"""A frozen worker (SIGSTOP: a stop-the-world pause, a suspended VM) must not run a step body whose success
another worker recorded while it was frozen (DESIGN.md §4.1).

Worker A records step s1 and is frozen between s1 and s2, longer than its visibility timeout. Worker B takes
the run over after the lease expires, replays s1, runs s2 and finishes the run. Then A thaws. Its writes are
fenced (its lease is gone), and it must not even start s2's body: ctx.step would run a body its journal
snapshot (from dequeue) lacks, and on thaw the handler's overdue timer runs before the heartbeat that would
cancel it has had its answer. The worker keeps a monotonic lease deadline and refuses to start a body past it.
Seen in `make chaos` (scenario sigstop) before that fix; this test makes it deterministic.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

HERE = Path(__file__).resolve().parent
VISIBILITY = 1.5
GAP = 3.0  # A waits this long between s1 and s2; it is frozen during it


def _spawn(dsn: str, name: str, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                str(HERE / "freeze_worker.py"),
                "--dsn",
                dsn,
                "--name",
                name,
                "--visibility",
                str(VISIBILITY),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def _one(conn: psycopg.Connection[Any], sql: str, args: tuple[Any, ...]) -> Any:
    row = conn.execute(sql, args).fetchone()
    assert row is not None
    return row[0] if len(row) == 1 else row


def _wait(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


@pytest.mark.chaos
@pytest.mark.timeout(120)
def test_a_thawed_worker_does_not_run_a_step_recorded_while_it_was_frozen(db: str, tmp_path: Path) -> None:
    out = tmp_path / "effects.txt"
    out.touch()
    procs: list[subprocess.Popen[bytes]] = []
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("select pgqrs.create_workflow('freeze')")
        try:
            a = _spawn(db, "freeze-a", tmp_path / "a.log")
            procs.append(a)
            run_id = _one(
                conn,
                "select run_id from pgqrs.trigger('freeze', %s::jsonb)",
                (json.dumps({"out": str(out), "gap": GAP}),),
            )

            def step_done(step: str) -> bool:
                sql = "select exists (select from pgqrs.steps where (run_id, step_id, status) = (%s, %s, %s))"
                return bool(_one(conn, sql, (run_id, step, "SUCCESS")))

            def run_done() -> bool:
                return bool(
                    _one(conn, "select status = 'SUCCESS' from pgqrs.runs where run_id = %s", (run_id,))
                )

            _wait(lambda: step_done("s1"), 60, "A to record s1")
            s1_at = time.monotonic()
            os.kill(a.pid, signal.SIGSTOP)  # A is inside the gap between s1 and s2
            procs.append(_spawn(db, "freeze-b", tmp_path / "b.log"))
            _wait(run_done, 60, "B to take the run over and finish it")
            time.sleep(max(0.0, s1_at + GAP + 0.5 - time.monotonic()))  # A's gap is over while it is frozen
            os.kill(a.pid, signal.SIGCONT)
            time.sleep(2.0)
        finally:
            for p in procs:
                if p.poll() is None:
                    os.kill(p.pid, signal.SIGCONT)
                    p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        completed_at, value = _one(
            conn,
            "select completed_at, value from pgqrs.steps where run_id = %s and step_id = 's2'",
            (run_id,),
        )
        output = _one(conn, "select output from pgqrs.runs where run_id = %s", (run_id,))
    assert (value, output) == (2, 3)  # the engine's record is intact either way: A's writes were fenced
    effects = [line.split() for line in out.read_text().splitlines()]
    s2 = [
        (int(pid), datetime.fromtimestamp(float(t), UTC))
        for rid, step, pid, t in effects
        if int(rid) == run_id and step == "s2"
    ]
    late = [(pid, t) for pid, t in s2 if t > completed_at]
    assert s2, f"s2 never ran: {effects}"
    assert not late, (
        f"s2 of run {run_id} recorded at {completed_at:%H:%M:%S.%f} by B; the thawed worker A (pid {a.pid}) "
        f"then started its body again at {', '.join(f'{t:%H:%M:%S.%f}' for _p, t in late)}"
    )
