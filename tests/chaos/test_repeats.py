"""How the chaos harness explains a repeated step execution (tests/chaos/repeats.py), on the mechanism behind
the repeat that issue 13 (class 10) found unexplained.

A chaos step body first inserts its start into chaos.side on a connection of its own, then works. When its
process is SIGKILLed while that insert is on its way, the server still runs the insert (a backend only
notices its client is gone when it next talks to it) and records a start *later than the kill*. The run's
next delivery runs the step again: a repeat whose earlier execution seems to have started after the fault
that ended it. Here the insert is held back by a table lock while its process is killed, so the order is
certain.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from chaos_cluster import SIDE_DDL
from repeats import (
    ACKED,
    FAULT_DURING_STEP,
    LEASE_LOG_DDL,
    LEASE_LOG_QUERY,
    NO_FAULT,
    STARTED_AFTER_KILL,
    Execution,
    FaultWindow,
    executions,
    explain,
    lease_violations,
    load_events,
)

HERE = Path(__file__).resolve().parent

# One step body of tests/chaos/chaos_worker.py, cut down: the same events and the same side insert.
BODY = textwrap.dedent(
    """
    import os, sys, time, types, uuid
    sys.path.insert(0, sys.argv[3])
    import psycopg
    from chaos_worker import SIDE_INSERT, Events

    dsn, path, token = sys.argv[1], sys.argv[2], uuid.UUID(sys.argv[4])
    events = Events(path, "wA")
    ctx = types.SimpleNamespace(run_id=1, attempt=1, run=types.SimpleNamespace(lease_token=token))
    with psycopg.connect(dsn, autocommit=True, application_name="chaos-test-body") as side:
        events("handler_start", ctx, journal=[])
        events("body_enter", ctx, step="s1")
        side.execute(SIDE_INSERT, (1, "s1", 1, os.getpid(), "wA", token))
        events("body_start", ctx, step="s1")
        time.sleep(60)
    """
)


def _wait_for(conn: psycopg.Connection[Any], sql: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not conn.execute(sql).fetchone()[0]:  # type: ignore[index]
        assert time.monotonic() < deadline, f"timed out waiting for: {sql}"
        time.sleep(0.02)


def test_a_start_recorded_after_its_process_was_killed_is_explained_by_that_kill(
    db: str, tmp_path: Path
) -> None:
    events_path = tmp_path / "events-wA.jsonl"
    token_a, token_b = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(db, autocommit=True) as conn, psycopg.connect(db, autocommit=True) as holder:
        conn.execute(SIDE_DDL)
        holder.execute("begin")
        holder.execute("lock table chaos.side in share mode")  # the body's insert waits for it
        body = subprocess.Popen(
            [sys.executable, "-c", BODY, db, str(events_path), str(HERE), str(token_a)],
            stdin=subprocess.DEVNULL,
        )
        try:
            _wait_for(
                conn,
                "select exists (select from pg_stat_activity where application_name = 'chaos-test-body'"
                " and wait_event_type = 'Lock')",
            )
            killed_at = time.time()
            os.kill(body.pid, signal.SIGKILL)
            body.wait()
            killed_until = time.time()
        finally:
            if body.poll() is None:
                body.kill()
                body.wait()
        holder.execute("commit")  # the orphaned backend now runs the insert, then finds its client gone
        _wait_for(conn, "select exists (select from chaos.side)")
        # the repeat: the run's next delivery, on another worker, runs s1 again
        conn.execute(
            "insert into chaos.side (run_id, step_id, run_attempt, pid, worker, lease_token, started_at)"
            " values (1, 's1', 2, 2, 'wB', %s, clock_timestamp())",
            (token_b,),
        )
        side = conn.execute(
            "select run_id, step_id, run_attempt, pid, worker, lease_token, started_at from chaos.side"
            " order by started_at"
        ).fetchall()

    recorded_start = side[0][6].timestamp()
    assert side[0][3] == body.pid
    assert recorded_start > killed_until, "the server recorded the start after the process was dead"

    execs = executions(side, load_events([events_path]))
    first = execs[(1, "s1")][0]
    assert first.entered is not None and first.entered < killed_at  # the body had begun before the kill
    kill = FaultWindow("sigkill", killed_at, killed_until, [body.pid], ["wA"])
    [repeat] = explain(execs, [kill], [], [], "")
    assert (repeat.cause, repeat.explained) == (STARTED_AFTER_KILL, True), repeat.reason
    assert repeat.prev.pid == body.pid and repeat.execution.worker == "wB"
    assert repeat.evidence, "a repeat that is not the plain case is printed in full"

    # without the kill nothing explains it: it is reported as unexplained, with the evidence
    [bare] = explain(execs, [], [], [], "")
    assert (bare.cause, bare.explained) == (NO_FAULT, False)
    assert any("execution 1: wA" in line for line in bare.evidence)


def _execution(worker: str, pid: int, attempt: int, started: float, **kw: Any) -> Execution:
    return Execution(1, "s0", pid, worker, attempt, f"token-{attempt}", started, **kw)


@pytest.mark.parametrize(
    ("prev", "faults", "cause", "explained"),
    [
        # killed while the body slept: the plain case
        (
            _execution("wA", 10, 1, 100.0, entered=99.99, delivery_start=99.9),
            [FaultWindow("sigkill", 100.1, 100.11, [10], ["wA"])],
            FAULT_DURING_STEP,
            True,
        ),
        # the body ended, its result write was cut off by a server restart
        (
            _execution("wA", 10, 1, 100.0, body_end=100.2, outcome="step_raised: OperationalError",
                       outcome_at=100.4, delivery_start=99.9),
            [FaultWindow("pg_restart", 100.3, 100.5, [10, 11], ["wA", "wB"])],
            FAULT_DURING_STEP,
            True,
        ),
        # a fault on another worker explains nothing
        (
            _execution("wA", 10, 1, 100.0, delivery_start=99.9),
            [FaultWindow("sigkill", 100.1, 100.11, [11], ["wB"])],
            NO_FAULT,
            False,
        ),
        # complete_step answered: the result was durable, a repeat is a bug whatever else happened
        (
            _execution("wA", 10, 1, 100.0, body_end=100.2, outcome="step_done", outcome_at=100.25),
            [FaultWindow("sigkill", 100.3, 100.31, [10], ["wA"])],
            ACKED,
            False,
        ),
    ],
)
def test_repeat_classes(prev: Execution, faults: list[FaultWindow], cause: str, explained: bool) -> None:
    again = _execution("wB", 11, 2, 104.0, delivery_start=103.9)
    [repeat] = explain({(1, "s0"): [prev, again]}, faults, [], [], "")
    assert (repeat.cause, repeat.explained) == (cause, explained), repeat.reason


def test_the_lease_log_tells_a_takeover_after_expiry_from_one_before(db: str) -> None:
    """The lease check of the chaos harness, on the engine's own calls: a run taken over after its lease
    expired passes; one taken over while its lease was still valid by the server's clock (the taker's
    pgqrs.now moved ahead, as in the race scenario) is reported."""
    dequeue = (
        "select lease_token from pgqrs.dequeue(p_queue => 'lq', p_worker => %s, p_batch_size => 1,"
        " p_visibility => %s * interval '1 second')"
    )
    with psycopg.connect(db, autocommit=True) as a, psycopg.connect(db, autocommit=True) as b:
        a.execute("set client_min_messages = warning")
        a.execute(SIDE_DDL)
        a.execute(LEASE_LOG_DDL)
        a.execute("select pgqrs.create_workflow('lq')")
        register = "select pgqrs.register_worker(%s, 'h', null, 'lq')"
        wa, wb = (a.execute(register, (n,)).fetchone()[0] for n in ("la", "lb"))  # type: ignore[index]
        a.execute("select pgqrs.trigger('lq', '{}'::jsonb)")
        assert a.execute(dequeue, (wa, 0.2)).fetchall()
        time.sleep(0.3)
        assert b.execute(dequeue, (wb, 60)).fetchall()  # after the expiry: fine
        assert lease_violations(a.execute(LEASE_LOG_QUERY).fetchall()) == []
        a.execute("select set_config('pgqrs.now', (now() + interval '2 minutes')::text, false)")
        assert a.execute(dequeue, (wa, 60)).fetchall()  # b's lease still has a minute by the real clock
        [bad] = lease_violations(a.execute(LEASE_LOG_QUERY).fetchall())
        assert "taken over" in bad
