"""The engine under hostile conditions (issue 13), with real worker processes (tests/hostile_worker.py):
every run ends, a hung connection does not freeze a run, an operator can cancel anything and sees the step in
flight, and no single run can wedge its queue."""

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
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

import pgqrs
from worker_procs import WorkerProcs, wait_for

WORKER = Path(__file__).with_name("hostile_worker.py")
REPO = Path(__file__).resolve().parent.parent
Conn = psycopg.Connection[tuple[Any, ...]]

pytestmark = pytest.mark.timeout(120)


class Workers(WorkerProcs):
    """hostile_worker.py processes (tests/worker_procs.py) whose step executions go to one log file."""

    def __init__(self, dsn: str, tmp: Path) -> None:
        self.executions = tmp / "executions.log"
        self.executions.touch()
        super().__init__(WORKER, dsn, tmp, env={"HOSTILE_LOG": str(self.executions)})

    def start_one(self, *args: str, dsn: str | None = None) -> subprocess.Popen[str]:
        """Start a worker named after its rank (w0, w1, ...)."""
        return self.start(f"w{len(self.procs)}", *args, dsn=dsn)[0]

    def executed(self, run_id: int, step_id: str | None = None) -> list[str]:
        lines = [line.split() for line in self.executions.read_text().splitlines()]
        return [s for r, s, _pid in lines if int(r) == run_id and (step_id is None or s == step_id)]


@pytest.fixture
def workers(db: str, tmp_path: Path) -> Iterator[Workers]:
    w = Workers(db, tmp_path)
    yield w
    w.close()


def create_workflow(conn: Conn, policy: dict[str, Any] | None = None) -> None:
    conn.execute("select pgqrs.create_workflow('hostile', %s)", (Jsonb(policy) if policy else None,))


def trigger(conn: Conn, params: dict[str, Any], workflow: str = "hostile") -> int:
    row = conn.execute("select run_id from pgqrs.trigger(%s, %s)", (workflow, Jsonb(params))).fetchone()
    assert row is not None
    return int(row[0])


def run_row(conn: Conn, run_id: int) -> tuple[Any, ...]:
    row = conn.execute("select status, attempt, output, error from pgqrs.runs where run_id = %s", (run_id,))
    result = row.fetchone()
    assert result is not None
    return tuple(result)


def finished(conn: Conn, run_id: int) -> bool:
    return run_row(conn, run_id)[0] in ("SUCCESS", "ERROR", "CANCELLED")


# ---- every run ends ----------------------------------------------------------------------------------------


def test_a_step_body_that_kills_its_process_ends_the_run_as_a_lease_expired_dead_letter(
    workers: Workers, conn: Conn
) -> None:
    """os._exit (or the OOM killer) in a step body: each delivery kills its worker, and the run used to be
    delivered forever. Now the lost leases are counted and the run ends ERROR (kind lease_expired)."""
    create_workflow(conn, {"max_attempts": 2})
    run_id = trigger(conn, {"exit": True})
    starts = 0
    while not finished(conn, run_id) and starts < 6:
        proc = workers.start_one("--visibility", "1")
        starts += 1
        wait_for("the worker to die or the run to end",
                 lambda p=proc: p.poll() is not None or finished(conn, run_id), timeout=15)
    status, _attempt, _output, error = run_row(conn, run_id)
    assert status == "ERROR", f"run {run_id} still {status} after {starts} worker starts"
    assert error["kind"] == "lease_expired"
    assert len(workers.executed(run_id, "exit")) == 2, "the body ran once per allowed attempt"
    dead = conn.execute("select count(*) from pgqrs.dead_letters where run_id = %s", (run_id,)).fetchone()
    assert dead == (1,)
    assert workers.procs[-1].poll() is None, "the last worker did not get the run: it is alive and idle"


def test_an_engine_call_that_times_out_every_time_backs_off_and_ends_the_run(
    workers: Workers, conn: Conn
) -> None:
    """A step value too big for the worker's statement_timeout: complete_step fails the same way on every
    delivery. It used to be handed back at once, forever; now each such delivery is counted and backed off,
    and the run ends ERROR (kind engine_call_failed) naming the cause."""
    create_workflow(conn, {"max_attempts": 3, "backoff": "fixed", "base_seconds": 0.2, "jitter": 0})
    run_id = trigger(conn, {"big_mb": 60})
    slow_dsn = make_conninfo(workers.dsn, options="-c statement_timeout=100")
    proc = workers.start_one("--visibility", "5", dsn=slow_dsn)
    wait_for(f"run {run_id} to end", lambda: finished(conn, run_id), timeout=60)
    status, attempt, _output, error = run_row(conn, run_id)
    assert status == "ERROR", workers.log(proc)
    assert error["kind"] == "engine_call_failed"
    assert error["cause"]["sqlstate"] == "57014", error
    assert attempt == 3, "three deliveries, then the run ended"
    assert len(workers.executed(run_id, "big")) == 3
    assert proc.poll() is None, "the worker survived"


# ---- a hung connection -------------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", ["async", "sync"])
def test_a_run_whose_connection_hangs_is_taken_over(
    workers: Workers, conn: Conn, tmp_path: Path, flavour: str
) -> None:
    """Only the backend of the connection the run writes on hangs (SIGSTOP: a stuck backend, a half-open
    connection) while the heartbeat connection is healthy. The heartbeat used to keep the lease alive for as
    long as the hang lasted; now a call pending for longer than a lease stops the heartbeat of that run, so
    its lease expires and the run is taken over (here by the same worker, whose slot was freed)."""
    create_workflow(conn)
    pid_file = tmp_path / "backend.pid"
    run_id = trigger(conn, {"pid_file": str(pid_file), "wait": 1.0})
    workers.start_one("--visibility", "1.5", *(["--sync"] if flavour == "sync" else []))
    backend = int(wait_for("the run's backend pid", lambda: pid_file.exists() and pid_file.read_text()))
    os.kill(backend, signal.SIGSTOP)
    try:
        wait_for(f"run {run_id} to succeed", lambda: run_row(conn, run_id)[0] == "SUCCESS", timeout=20)
    finally:
        os.kill(backend, signal.SIGCONT)
    status, attempt, output, _error = run_row(conn, run_id)
    assert attempt == 2 and output["attempt"] == 2, "delivered a second time after the hang"


# ---- cancel ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", ["async", "sync"])
def test_cancel_run_stops_the_running_handler_and_result_raises_run_cancelled(
    workers: Workers, conn: Conn, db: str, flavour: str
) -> None:
    create_workflow(conn)
    run_id = trigger(conn, {"steps": 30, "nap": 0.3})
    proc = workers.start_one("--visibility", "1.5", *(["--sync"] if flavour == "sync" else []))
    wait_for("two steps to run", lambda: len(workers.executed(run_id)) >= 2)

    async def cancel_and_wait() -> BaseException:
        async with await pgqrs.connect(db) as store:
            assert await store.cancel_run(run_id, reason="operator says stop") == "CANCELLED"
            with pytest.raises(pgqrs.RunCancelled) as caught:
                await pgqrs.run().status(run_id).store(store).result(timeout=5)
            return caught.value

    cancelled = asyncio.run(cancel_and_wait())
    assert cancelled.error["reason"] == "operator says stop"
    ran_at_cancel = len(workers.executed(run_id))
    time.sleep(1.5)  # a heartbeat interval (0.5 s) and more
    assert len(workers.executed(run_id)) <= ran_at_cancel + 1, "at most the step in flight finished"
    assert run_row(conn, run_id)[0] == "CANCELLED"

    other = trigger(conn, {"steps": 1})
    wait_for("the worker to serve the next run", lambda: run_row(conn, other)[0] == "SUCCESS")
    assert proc.poll() is None


def test_pgqrs_cancel_cancels_from_the_command_line(conn: Conn, db: str) -> None:
    create_workflow(conn)
    run_id = trigger(conn, {})
    out = subprocess.run([sys.executable, "-m", "pgqrs", "--dsn", db, "cancel", str(run_id), "--reason", "x"],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"run {run_id}: CANCELLED"
    again = subprocess.run([sys.executable, "-m", "pgqrs", "--dsn", db, "cancel", str(run_id)],
                           capture_output=True, text=True, check=False)
    assert again.returncode == 1 and "CANCELLED" in again.stderr


# ---- the step in flight, the fencing token -----------------------------------------------------------------


def test_ops_see_the_step_in_flight_and_since_when(workers: Workers, conn: Conn, db: str) -> None:
    create_workflow(conn)
    run_id = trigger(conn, {"wait": 4.0})
    workers.start_one("--visibility", "1.5")
    row = wait_for("the step in flight to be reported", lambda: conn.execute(
        "select current_step, current_step_status, current_step_since from pgqrs.run_status(%s)"
        " where current_step is not null", (run_id,)).fetchone(), timeout=10)
    assert row[0] == "wait" and row[1] == "RUNNING" and row[2] is not None
    out = subprocess.run([sys.executable, "-m", "pgqrs", "--dsn", db, "run", str(run_id)],
                         capture_output=True, text=True, check=True)
    assert "current step: wait (RUNNING since" in out.stdout
    wait_for(f"run {run_id} to succeed", lambda: run_row(conn, run_id)[0] == "SUCCESS")
    step = conn.execute("select status, attempt from pgqrs.steps where run_id = %s", (run_id,)).fetchone()
    assert step == ("SUCCESS", 1), "reporting the step in flight did not count another attempt"


def test_the_fencing_token_increases_with_each_delivery(workers: Workers, conn: Conn, db: str) -> None:
    create_workflow(conn)
    run_id = trigger(conn, {"wait": 30.0})
    proc = workers.start_one("--visibility", "1")
    wait_for("the step to start", lambda: workers.executed(run_id))
    first = conn.execute("select read_count from pgqrs.messages where message_id = %s", (run_id,)).fetchone()
    proc.kill()
    proc.wait()
    conn.execute("select pgqrs.update_step(%s, 'wait', 'SUCCESS', '\"skip\"')", (run_id,))
    workers.start_one("--visibility", "1")
    wait_for(f"run {run_id} to succeed", lambda: run_row(conn, run_id)[0] == "SUCCESS", timeout=15)
    output = run_row(conn, run_id)[2]
    assert first == (1,) and output["fencing_token"] == 2


# ---- no queue can be wedged by one run's size --------------------------------------------------------------


def test_a_run_whose_journal_exceeds_jsonb_limits_does_not_wedge_its_queue(conn: Conn) -> None:
    """Three 100 MB step values: the whole journal in one jsonb would pass jsonb's 256 MB limit, and every
    dequeue of the queue failed. The journal handed out is bounded: the big values are left out."""
    create_workflow(conn)
    big = trigger(conn, {})
    for step in ("a", "b", "c"):
        conn.execute("select pgqrs.update_step(%s, %s, 'SUCCESS', to_jsonb(repeat('x', 100000000)))",
                     (big, step))
    ordinary = [trigger(conn, {}) for _ in range(3)]
    worker = conn.execute("select pgqrs.register_worker('w', 'h', null, 'hostile')").fetchone()[0]  # type: ignore[index]
    delivered = []
    for _ in range(4):
        row = conn.execute("select run_id, steps from pgqrs.dequeue('hostile', %s)", (worker,)).fetchone()
        assert row is not None
        delivered.append(row[0])
        if row[0] == big:
            assert {s: v.get("value_omitted") for s, v in row[1].items()} == {"a": True, "b": True, "c": True}
    assert delivered == [big, *ordinary]


def test_ctx_step_reads_a_value_left_out_of_the_journal(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("select pgqrs.create_workflow('wf')")
        run_id = trigger(c, {}, "wf")
        c.execute("select pgqrs.update_step(%s, 'a', 'SUCCESS', to_jsonb(repeat('y', 5000)))", (run_id,))
        c.execute("select set_config('pgqrs.max_journal_bytes', '1000', false)")
        dbname = c.execute("select current_database()").fetchone()[0]  # type: ignore[index]
        c.execute(f'alter database "{dbname}" set pgqrs.max_journal_bytes = 1000')

    async def scenario() -> Any:
        async def replay(ctx: pgqrs.WorkflowContext, params: Any) -> int:
            assert ctx.journal["a"].get("value_omitted") is True
            value = await ctx.step("a", lambda: "not run again")
            return len(value)

        async with await pgqrs.connect(db) as store:
            worker = await pgqrs.consumer("w", None, "wf").handler(replay).create(store)
            task = asyncio.create_task(worker.poll_forever())
            try:
                return await pgqrs.run().status(run_id).store(store).result(timeout=10)
            finally:
                worker.stop()
                await task

    assert asyncio.run(scenario()) == 5000


# ---- a stuck call does not stop the heartbeat of the worker's other runs -----------------------------------


def test_a_heartbeat_never_waits_for_a_run_whose_call_holds_its_message(db: str) -> None:
    """A run's complete_step locks its message row, then waits for a webhook's open transaction on the step.
    The heartbeat used to wait for that row too, so the leases of the worker's other runs ran out while their
    bodies still ran. It now skips the busy row (held = NULL: not known this time) and extends the others."""
    with psycopg.connect(db, autocommit=True) as conn, psycopg.connect(db) as webhook, \
            psycopg.connect(db, autocommit=True) as run_conn:
        create_workflow(conn)
        first, second = trigger(conn, {}), trigger(conn, {})
        register = "select pgqrs.register_worker('w', 'h', null, 'hostile')"
        worker = conn.execute(register).fetchone()[0]  # type: ignore[index]
        dequeue = "select run_id, lease_token from pgqrs.dequeue('hostile', %s, 2, '30 seconds')"
        leases = dict(conn.execute(dequeue, (worker,)).fetchall())
        webhook.execute("select pgqrs.update_step(%s, 's1', 'RUNNING')", (first,))  # left open
        stuck = threading.Thread(target=lambda: run_conn.execute(
            "select pgqrs.complete_step(%s, 's1', %s, '1')", (first, leases[first])))
        stuck.start()
        waiting = "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and query like %s"
        wait_for("complete_step to wait on the webhook's lock",
                 lambda: conn.execute(waiting, ("%complete_step%",)).fetchone()[0] == 1)  # type: ignore[index]
        conn.execute("set statement_timeout = '3s'")
        rows = conn.execute("select * from pgqrs.heartbeat(%s, %s::uuid[])",
                            (worker, [leases[first], leases[second]])).fetchall()
        beat = {str(token): held for token, held, _until in rows}
        assert beat == {str(leases[first]): None, str(leases[second]): True}
        webhook.rollback()
        stuck.join(10)
        assert run_row(conn, first)[0] == "RUNNING"


def test_another_runs_cancellation_is_the_handlers_error_not_this_runs(db: str) -> None:
    """A handler that awaits result() of a run that was cancelled gets RunCancelled about that run: its own
    run fails at once with that error. It used to be taken for the run's own cancellation: the worker stopped
    the handler and the run stayed RUNNING until its lease expired, again and again."""
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("select pgqrs.create_workflow('child')")
        child = trigger(c, {}, "child")
        c.execute("select pgqrs.cancel_run(%s, 'not wanted')", (child,))

    async def scenario() -> tuple[Any, ...]:
        async with await pgqrs.connect(db) as store:
            async def parent(ctx: pgqrs.WorkflowContext, params: Any) -> Any:
                return await pgqrs.run().status(child).store(store).result(timeout=5)

            await store.create_workflow("parent")
            run_id = await store.trigger("parent", {})
            worker = await pgqrs.consumer("w", None, "parent").handler(parent).visibility(2).create(store)
            task = asyncio.create_task(worker.poll_forever())
            try:
                with pytest.raises(pgqrs.WorkflowFailed) as failed:
                    await pgqrs.run().status(run_id).store(store).result(timeout=10)
            finally:
                worker.stop()
                await task
            info = await pgqrs.run().status(run_id).store(store).get()
            return info.status, info.attempt, failed.value.error["type"]

    assert asyncio.run(scenario()) == ("ERROR", 1, "RunCancelled")
