"""A step body that runs in a thread (a plain function) never runs twice at the same time, and never starts
after its lease is gone, in both flavours (issue 13, class 4). Real worker processes (body_worker.py), real
signals; each body logs when it starts, while it runs (ticks) and when it ends, with its pid.

(a) Frozen while bodies wait for a thread: worker A has more runs in flight than asyncio's default thread pool
    has threads, so with a pool some bodies queue. A is frozen (SIGSTOP) past its lease, B takes every run
    over and finishes it, A thaws: A must not start any body after the thaw.
(b) SIGTERM during a body longer than the shutdown timeout (a deploy): A gives up waiting, but must not hand
    the run back while the body still runs; B may start the body only after A's has stopped running.
The first test checks, in-process, the bookkeeping both rest on: `WorkflowContext.abandon()`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

import pgqrs
import pgqrs.sync
from worker_procs import start_ready, stop_all, wait_for

HERE = Path(__file__).resolve().parent
QUEUE = "bodies"
FLAVOURS = ["async", "sync"]


class Workers:
    """body_worker.py processes writing to one effects file; whatever is left is killed at the end."""

    def __init__(self, dsn: str, tmp: Path) -> None:
        self.dsn = dsn
        self.tmp = tmp
        self.out = tmp / "bodies.txt"
        self.out.touch()
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, flavour: str, name: str, body_seconds: float, *args: str) -> subprocess.Popen[str]:
        argv = [sys.executable, str(HERE / "body_worker.py"), "--dsn", self.dsn, "--name", name,
                "--flavour", flavour, "--out", str(self.out), "--body-seconds", str(body_seconds), *args]
        proc, _ = start_ready(argv, self.tmp / f"{name}.log")
        self.procs.append(proc)
        return proc

    def events(self, pid: int | None = None, kind: str | None = None) -> list[tuple[str, int, int, float]]:
        """(event, run_id, pid, epoch seconds) of the effects file, optionally of one process / event kind."""
        rows = []
        for line in self.out.read_text().splitlines():
            event, run_id, proc_id, at = line.split()
            if (pid is None or int(proc_id) == pid) and (kind is None or event == kind):
                rows.append((event, int(run_id), int(proc_id), float(at)))
        return rows

    def close(self) -> None:
        stop_all(self.procs)


@pytest.fixture
def workers(db: str, tmp_path: Path) -> Iterator[Workers]:
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("select pgqrs.create_workflow(%s)", (QUEUE,))
    w = Workers(db, tmp_path)
    yield w
    w.close()


def trigger(conn: psycopg.Connection[Any], n: int) -> list[int]:
    rows = conn.execute("select (pgqrs.trigger(%s, '{}')).run_id from generate_series(1, %s)", (QUEUE, n))
    return [r[0] for r in rows.fetchall()]


def all_succeeded(conn: psycopg.Connection[Any], run_ids: list[int]) -> bool:
    row = conn.execute("select count(*) from pgqrs.runs where run_id = any(%s) and status = 'SUCCESS'",
                       (run_ids,)).fetchone()
    return row is not None and row[0] == len(run_ids)


def steps_recorded(conn: psycopg.Connection[Any]) -> list[str]:
    return [r[0] for r in conn.execute("select step_id from pgqrs.steps order by step_id").fetchall()]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_abandon_tells_whether_a_body_runs_and_no_body_starts_after_it(
    db: str, conn: psycopg.Connection[Any], flavour: str
) -> None:
    """What a worker that gives a run up relies on: abandon() says whether a plain body is running (a thread
    nothing can stop: then the run must not be handed back), and afterwards no step body starts and nothing
    is written for it, although the lease is still valid."""
    inside, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def long_body() -> str:
        calls.append("long")
        inside.set()
        release.wait(10)
        return "done"

    def later_body() -> str:
        calls.append("later")
        return "never"

    answers: dict[str, Any] = {}

    if flavour == "async":

        async def scenario() -> None:
            async with await pgqrs.connect(db) as store:
                await store.create_workflow(QUEUE)
                await pgqrs.workflow(QUEUE).trigger({}).execute(store)
                (message,) = await (await pgqrs.consumer("g", None, QUEUE).create(store)).dequeue()
                run = pgqrs.Run(store, message, None, None, {message.lease_token: time.monotonic() + 30})
                ctx = pgqrs.WorkflowContext(run, {})
                long_step = asyncio.create_task(ctx.step("long", long_body))
                await asyncio.to_thread(inside.wait, 10)
                answers["running"] = ctx.abandon()
                release.set()
                answers["long"] = await long_step
                with pytest.raises(pgqrs.LeaseLost):
                    await ctx.step("later", later_body)

        asyncio.run(scenario())
    else:
        with pgqrs.sync.connect(db) as store:
            store.create_workflow(QUEUE)
            pgqrs.sync.workflow(QUEUE).trigger({}).execute(store)
            (message,) = pgqrs.sync.consumer("g", None, QUEUE).create(store).dequeue()
            run = pgqrs.sync.Run(store, message, None, None, {message.lease_token: time.monotonic() + 30})
            ctx = pgqrs.sync.WorkflowContext(run, {})
            long_step = threading.Thread(target=lambda: answers.update(long=ctx.step("long", long_body)))
            long_step.start()
            inside.wait(10)
            answers["running"] = ctx.abandon()
            release.set()
            long_step.join(10)
            with pytest.raises(pgqrs.LeaseLost):
                ctx.step("later", later_body)
    assert answers == {"running": True, "long": "done"}  # a body that had started ends and is recorded
    assert calls == ["long"]
    assert steps_recorded(conn) == ["long"]


@pytest.mark.chaos
@pytest.mark.timeout(120)
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_thawed_worker_starts_no_body_that_waited_for_a_thread(
    workers: Workers, conn: psycopg.Connection[Any], flavour: str
) -> None:
    pool = min(32, (os.cpu_count() or 1) + 4)  # asyncio's default executor: bodies once queued behind it
    n = pool + 3
    body_seconds = 3.0
    a = workers.start(flavour, "a", body_seconds, "--concurrency", str(n), "--visibility", "1")
    run_ids = trigger(conn, n)
    wait_for("A to start its first bodies", lambda: len(workers.events(a.pid, "start")) >= min(n, pool))
    started = len(workers.events(a.pid, "start"))
    while True:  # let every body that can start now do so, so that none is caught mid-start by the freeze
        time.sleep(0.5)
        now = len(workers.events(a.pid, "start"))
        if now == started:
            break
        started = now
    os.kill(a.pid, signal.SIGSTOP)
    first_start = min(at for _e, _r, _p, at in workers.events(a.pid, "start"))
    workers.start(flavour, "b", 0.05, "--concurrency", str(n), "--visibility", "1")
    wait_for("B to take every run over and finish it", lambda: all_succeeded(conn, run_ids))
    time.sleep(max(0.0, first_start + body_seconds + 0.3 - time.time()))  # A's bodies are overdue: thaw
    before_thaw = workers.events(a.pid, "start")
    os.kill(a.pid, signal.SIGCONT)
    time.sleep(1.5)
    after_thaw = workers.events(a.pid, "start")
    late = sorted({run_id for _e, run_id, _p, _at in after_thaw} - {r for _e, r, _p, _at in before_thaw})
    assert not late, (
        f"A (pid {a.pid}) was frozen past its lease with {len(before_thaw)} bodies started; B finished all "
        f"{n} runs; after the thaw A started the bodies of runs {late} again"
    )
    assert a.poll() is None  # A lives on: its writes are refused, nothing more


@pytest.mark.chaos
@pytest.mark.timeout(120)
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_sigterm_never_hands_back_a_run_whose_body_still_runs(
    workers: Workers, conn: psycopg.Connection[Any], flavour: str
) -> None:
    # The body outlasts the shutdown timeout. Visibility 3 s: A's lease outlives its exit after the drain
    # (the sync worker's listener thread takes up to a second to stop).
    a = workers.start(flavour, "a", 4.0, "--visibility", "3", "--shutdown-timeout", "0.5")
    (run_id,) = trigger(conn, 1)
    wait_for("A to start the body", lambda: workers.events(a.pid, "start"))
    a.send_signal(signal.SIGTERM)
    b = workers.start(flavour, "b", 0.2, "--visibility", "3")
    wait_for("B to finish the run", lambda: all_succeeded(conn, [run_id]))
    assert a.wait(15) == 0
    a_last = max(at for _e, _r, _p, at in workers.events(a.pid))
    b_starts = [at for _e, _r, _p, at in workers.events(b.pid, "start")]
    assert b_starts, "B never ran the body"
    overlap = a_last - min(b_starts)
    assert overlap < 0, (
        f"B (pid {b.pid}) started the body of run {run_id} while A's (pid {a.pid}) was still running: "
        f"{overlap:.2f} s of overlap"
    )
