"""The worker with real processes (tests/worker_proc.py), where a crash or a signal is the point; the rest is
tested in-process (tests/test_worker_in_process.py). Step bodies of worker_proc record each execution in the
table `executions`, committed on its own connection before the body does anything else, so an execution
counts even when its worker is then killed.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

import pgqrs
from worker_procs import WorkerProcs, sigkill, wait_for

WORKER = Path(__file__).with_name("worker_proc.py")
SIDE_TABLE = """
create table executions (
    run_id bigint not null, step_id text not null, pid integer not null, delivery integer not null,
    at timestamptz not null default clock_timestamp()
)"""


class Workers(WorkerProcs):
    """worker_proc.py processes (tests/worker_procs.py); whatever is left is killed at the end of the test."""

    def __init__(self, dsn: str, tmp: Path) -> None:
        super().__init__(WORKER, dsn, tmp)


@pytest.fixture
def workers(db: str, tmp_path: Path) -> Iterator[Workers]:
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(SIDE_TABLE)
        c.execute("select pgqrs.create_workflow('probe')")
    w = Workers(db, tmp_path)
    yield w
    w.close()


def trigger(conn: psycopg.Connection[Any], params: dict[str, Any]) -> int:
    row = conn.execute("select run_id from pgqrs.trigger('probe', %s)", (psycopg.types.json.Jsonb(params),))
    return int(row.fetchone()[0])  # type: ignore[index]


def status(conn: psycopg.Connection[Any], run_id: int) -> str:
    return str(conn.execute("select status from pgqrs.runs where run_id = %s", (run_id,)).fetchone()[0])  # type: ignore[index]


def wait_status(conn: psycopg.Connection[Any], run_id: int, want: str, timeout: float = 30.0) -> None:
    wait_for(f"run {run_id} {want}", lambda: status(conn, run_id) == want, timeout)


def executions(conn: psycopg.Connection[Any], run_id: int) -> list[tuple[str, int, int]]:
    """(step_id, pid, delivery) of every execution of the run's step bodies, in order."""
    rows = conn.execute(
        "select step_id, pid, delivery from executions where run_id = %s order by at", (run_id,)
    )
    return [(r[0], r[1], r[2]) for r in rows.fetchall()]


def run_row(conn: psycopg.Connection[Any], run_id: int) -> tuple[Any, ...]:
    row = conn.execute("select status, attempt, output, error from pgqrs.runs where run_id = %s", (run_id,))
    result = row.fetchone()
    assert result is not None
    return tuple(result)


# ---- crashes, leases, heartbeats --------------------------------------------------------------------------


def test_sigkill_mid_step_then_another_worker_finishes_without_rerunning_completed_steps(
    workers: Workers, conn: psycopg.Connection[Any]
) -> None:
    run_id = trigger(conn, {"steps": ["a", "b", "c"], "sleep": {"b": 60}, "sleep_attempts": [1]})
    first, _ = workers.start("w1", "--visibility", "2")
    wait_for("step b to start", lambda: ("b", first.pid, 1) in executions(conn, run_id))
    sigkill(first)
    assert status(conn, run_id) == "RUNNING"  # nobody told the database: only the lease will run out

    second, _ = workers.start("w2", "--visibility", "2")
    wait_status(conn, run_id, "SUCCESS")
    assert executions(conn, run_id) == [
        ("a", first.pid, 1),
        ("b", first.pid, 1),  # the step in flight when the worker died ...
        ("b", second.pid, 2),  # ... is the only one that runs again
        ("c", second.pid, 2),
    ]
    status_, attempt, output, _error = run_row(conn, run_id)
    assert (status_, attempt) == ("SUCCESS", 2)
    assert output["steps"]["a"] == {"step": "a", "pid": first.pid}  # replayed from the journal
    assert output["pid"] == second.pid
    steps = conn.execute(
        "select step_id, status, attempt from pgqrs.steps where run_id = %s order by step_order", (run_id,)
    ).fetchall()
    assert steps == [("a", "SUCCESS", 1), ("b", "SUCCESS", 1), ("c", "SUCCESS", 1)]


def test_a_step_slower_than_the_visibility_timeout_is_not_taken_over(
    workers: Workers, conn: psycopg.Connection[Any]
) -> None:
    """Visibility 3 s, a sync step body of 7 s (in a thread), a second worker waiting: heartbeats hold on."""
    one, _ = workers.start("w1", "--visibility", "3")
    two, _ = workers.start("w2", "--visibility", "3")
    run_id = trigger(conn, {"steps": ["slow", "after"], "sleep": {"slow": 7}, "sync": True})
    wait_status(conn, run_id, "SUCCESS")
    runs = executions(conn, run_id)
    assert [(s, d) for s, _pid, d in runs] == [("slow", 1), ("after", 1)]
    assert runs[0][1] == runs[1][1] and runs[0][1] in (one.pid, two.pid)
    assert run_row(conn, run_id)[1] == 1  # delivered once
    assert one.poll() is None and two.poll() is None


def test_transient_error_is_retried_after_retry_after(
    workers: Workers, conn: psycopg.Connection[Any]
) -> None:
    workers.start("w1", "--visibility", "5")
    run_id = trigger(conn, {"steps": ["a", "b", "c"], "transient": {"b": 1.5}})
    wait_status(conn, run_id, "SUCCESS")
    assert [(s, d) for s, _pid, d in executions(conn, run_id)] == [("a", 1), ("b", 1), ("b", 2), ("c", 2)]
    # the database's own clock: the second attempt of b started at least retry_after after the first
    gap = conn.execute(
        "select max(at) - min(at) from executions where run_id = %s and step_id = 'b'", (run_id,)
    ).fetchone()[0]  # type: ignore[index]
    assert gap.total_seconds() >= 1.5
    steps = dict(
        conn.execute("select step_id, attempt from pgqrs.steps where run_id = %s", (run_id,)).fetchall()
    )
    assert steps == {"a": 1, "b": 2, "c": 1}


def test_pause_then_update_step_and_resume_run(
    workers: Workers, conn: psycopg.Connection[Any], db: str
) -> None:
    workers.start("w1", "--visibility", "5")
    run_id = trigger(conn, {"steps": ["ask", "approval", "act"], "pause": "approval"})
    wait_status(conn, run_id, "PAUSED")
    assert conn.execute(
        "select status from pgqrs.steps where run_id = %s and step_id = 'approval'", (run_id,)
    ).fetchone() == ("PAUSED",)

    async def webhook() -> None:
        async with await pgqrs.connect(db) as store:
            await store.update_step(run_id, "approval", pgqrs.StepStatus.SUCCESS, {"approved_by": "bob"})
            assert await store.resume_run(run_id) == "QUEUED"

    asyncio.run(webhook())
    wait_status(conn, run_id, "SUCCESS")
    assert [s for s, _pid, _d in executions(conn, run_id)] == ["ask", "approval", "act"]  # nothing twice
    output = run_row(conn, run_id)[2]
    assert output["steps"]["approval"] == {"approved_by": "bob"}


def test_a_restarted_worker_with_the_same_name_gets_its_id_back_and_works(
    workers: Workers, conn: psycopg.Connection[Any]
) -> None:
    first, first_id = workers.start("same-name")
    run_one = trigger(conn, {"steps": ["a"]})
    wait_status(conn, run_one, "SUCCESS")
    first.send_signal(signal.SIGTERM)
    assert first.wait(30) == 0
    assert conn.execute("select status from pgqrs.workers where worker_id = %s", (first_id,)).fetchone() == (
        "STOPPED",
    )

    second, second_id = workers.start("same-name")
    assert second_id == first_id
    run_two = trigger(conn, {"steps": ["a"]})
    wait_status(conn, run_two, "SUCCESS")
    assert executions(conn, run_two) == [("a", second.pid, 1)]
    assert conn.execute(
        "select count(*), min(status) from pgqrs.workers where name = 'same-name'"
    ).fetchone() == (1, "ACTIVE")


def test_an_idle_worker_issues_at_most_about_one_query_per_second(
    workers: Workers, conn: psycopg.Connection[Any]
) -> None:
    preload = str(conn.execute("show shared_preload_libraries").fetchone()[0])  # type: ignore[index]
    workers.start("idle")
    time.sleep(1.0)  # past start-up (register, LISTEN, the first look at the queue)
    window = 6.0
    if "pg_stat_statements" in preload:
        conn.execute("create extension if not exists pg_stat_statements")
        count = (
            "select coalesce(sum(calls), 0)::bigint from pg_stat_statements"
            " where dbid = (select oid from pg_database where datname = current_database())"
            " and query not like '%%pg_stat_statements%%'"  # not our own measuring
        )
        before = conn.execute(count).fetchone()[0]  # type: ignore[index]
        time.sleep(window)
        queries = conn.execute(count).fetchone()[0] - before  # type: ignore[index]
    else:  # transactions instead, less our own two readings
        count = "select xact_commit from pg_stat_database where datname = current_database()"
        conn.execute("select pg_stat_force_next_flush()")
        before = conn.execute(count).fetchone()[0]  # type: ignore[index]
        time.sleep(window)
        conn.execute("select pg_stat_clear_snapshot()")
        queries = conn.execute(count).fetchone()[0] - before - 2  # type: ignore[index]
    print(f"idle worker: {queries} queries in {window} s")
    assert queries / window <= 1.0, f"an idle worker issued {queries} queries in {window} s"


# ---- the loop survives errors; graceful shutdown ----------------------------------------------------------


def test_a_handler_exception_does_not_stop_the_loop(workers: Workers, conn: psycopg.Connection[Any]) -> None:
    proc, _ = workers.start("w1", "--visibility", "5")
    bad_handler = trigger(conn, {"handler_raise": "boom in the handler"})
    bad_step = trigger(conn, {"steps": ["a", "b"], "raise": {"b": "boom in a step"}})
    good = trigger(conn, {"steps": ["a"]})
    wait_status(conn, good, "SUCCESS")
    status_, _attempt, _output, error = run_row(conn, bad_handler)
    assert status_ == "ERROR" and error["type"] == "ValueError" and error["message"] == "boom in the handler"
    status_, _attempt, _output, error = run_row(conn, bad_step)
    assert status_ == "ERROR" and error["type"] == "RuntimeError" and error["message"] == "boom in a step"
    assert conn.execute(
        "select status from pgqrs.steps where run_id = %s and step_id = 'b'", (bad_step,)
    ).fetchone() == ("ERROR",)
    assert conn.execute(
        "select outcome from pgqrs.messages_archive where message_id = %s", (bad_step,)
    ).fetchone() == ("DEAD_LETTER",)
    assert proc.poll() is None
    assert {pid for _s, pid, _d in executions(conn, good)} == {proc.pid}


def test_sigterm_lets_the_run_in_flight_finish_and_takes_no_new_work(
    workers: Workers, conn: psycopg.Connection[Any]
) -> None:
    proc, _ = workers.start("w1", "--visibility", "10")
    in_flight = trigger(conn, {"steps": ["slow", "next"], "sleep": {"slow": 2}})
    wait_for("the slow step to start", lambda: executions(conn, in_flight))
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)  # the worker handles the signal at once; the margin is for a loaded machine
    later = trigger(conn, {"steps": ["a"]})
    assert proc.wait(30) == 0, workers.log(proc)
    assert status(conn, in_flight) == "SUCCESS", workers.log(proc)
    assert run_row(conn, later)[:2] == ("QUEUED", 0), workers.log(proc)  # a stopping worker takes nothing new
    other, _ = workers.start("w2")
    wait_status(conn, later, "SUCCESS")
    assert executions(conn, later) == [("a", other.pid, 1)]


def test_sigterm_hands_the_run_back_when_it_cannot_finish_in_time(
    workers: Workers, conn: psycopg.Connection[Any]
) -> None:
    proc, _ = workers.start("w1", "--visibility", "30", "--shutdown-timeout", "0.5")
    run_id = trigger(conn, {"steps": ["a", "slow", "c"], "sleep": {"slow": 60}, "sleep_attempts": [1]})
    wait_for("the slow step to start", lambda: [s for s, _p, _d in executions(conn, run_id)] == ["a", "slow"])
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert time.monotonic() - started < 15  # it did not sit out its 30 s lease
    # handed back (release_run): queued and visible now, not waiting for the lease to expire
    assert conn.execute(
        "select r.status, m.lease_token is null, m.visible_at <= pgqrs.now() from pgqrs.runs r"
        " join pgqrs.messages m on m.message_id = r.run_id where r.run_id = %s",
        (run_id,),
    ).fetchone() == ("QUEUED", True, True)
    other, _ = workers.start("w2", "--visibility", "30")
    wait_status(conn, run_id, "SUCCESS", timeout=15)
    assert [(s, pid) for s, pid, _d in executions(conn, run_id)] == [
        ("a", proc.pid),
        ("slow", proc.pid),
        ("slow", other.pid),
        ("c", other.pid),
    ]
