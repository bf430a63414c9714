"""Durable waits (issue 15): sleep and events, with real worker processes (tests/worker_proc.py, its "plan"
input) where a crash or the wake-up is the point, in SQL for the races, in-process for bad input.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

import pgqrs
from test_cli import assert_one_line_error, lease, ok_json, sql_exec
from test_cli import pgqrs as cli
from test_worker import Workers, executions, run_row, status, trigger, wait_status
from test_worker import workers as workers  # the fixture: real worker processes
from test_worker_in_process import InProcess


def waiting(conn: psycopg.Connection[Any], run_id: int) -> tuple[Any, ...] | None:
    return conn.execute(
        "select kind, key, until is not null, step_id from pgqrs.waiting_runs where run_id = %s", (run_id,)
    ).fetchone()


def step_rows(conn: psycopg.Connection[Any], run_id: int) -> list[tuple[Any, ...]]:
    return conn.execute(
        "select step_id, status, kind from pgqrs.steps where run_id = %s order by step_order", (run_id,)
    ).fetchall()


def test_a_sleep_releases_the_worker_and_the_run_finishes_after_it(
    workers: Workers, conn: psycopg.Connection[Any]
) -> None:
    run_id = trigger(conn, {"plan": [["step", "a"], ["sleep", 1.5], ["step", "b"]]})
    started = time.monotonic()
    worker, _ = workers.start("w1", "--visibility", "5")
    wait_status(conn, run_id, "WAITING")
    assert waiting(conn, run_id) == ("sleep", None, True, "sleep")
    lease = conn.execute("select lease_token from pgqrs.messages where message_id = %s", (run_id,)).fetchone()
    assert lease == (None,), "a sleeping run holds no lease"
    wait_status(conn, run_id, "SUCCESS")
    assert time.monotonic() - started >= 1.5
    assert [s for s, _p, _d in executions(conn, run_id)] == ["a", "b"], "a ran once, b after the sleep"
    assert run_row(conn, run_id)[1] == 2, "one delivery before the sleep, one after: the replay did not sleep"
    assert step_rows(conn, run_id) == [
        ("a", "SUCCESS", None), ("sleep", "SUCCESS", "sleep"), ("b", "SUCCESS", None)
    ]
    assert waiting(conn, run_id) is None
    assert worker.poll() is None


def test_sigkill_during_a_sleep_changes_nothing(workers: Workers, conn: psycopg.Connection[Any]) -> None:
    run_id = trigger(conn, {"plan": [["step", "a"], ["sleep", 2], ["step", "b"]]})
    first, _ = workers.start("w1", "--visibility", "5")
    wait_status(conn, run_id, "WAITING")
    before = conn.execute("select * from pgqrs.messages where message_id = %s", (run_id,)).fetchone()
    first.send_signal(signal.SIGKILL)
    assert first.wait(10) == -signal.SIGKILL
    assert status(conn, run_id) == "WAITING"
    assert conn.execute("select * from pgqrs.messages where message_id = %s", (run_id,)).fetchone() == before
    second, _ = workers.start("w2", "--visibility", "5")
    wait_status(conn, run_id, "SUCCESS")
    assert executions(conn, run_id) == [("a", first.pid, 1), ("b", second.pid, 2)]
    assert run_row(conn, run_id)[2]["pid"] == second.pid


def test_an_event_wakes_the_waiting_run_and_a_timeout_is_the_handlers_to_catch(
    workers: Workers, conn: psycopg.Connection[Any]
) -> None:
    paid = trigger(conn, {"plan": [["event", "order-7", None], ["step", "ship"]]})
    late = trigger(conn, {"plan": [["event", "never", 1]]})
    workers.start("w1", "--visibility", "5", "--concurrency", "2")
    wait_status(conn, paid, "WAITING")
    assert waiting(conn, paid) == ("event", "order-7", False, "wait_for_event")

    async def emit() -> list[bool]:
        async with await pgqrs.connect(conn.info.dsn) as store:
            first = await store.emit_event("order-7", {"paid": 12})
            return [first, await store.emit_event("order-7", {"x": 1})]

    emitted = time.monotonic()
    assert asyncio.run(emit()) == [True, False], "the first emit wins"
    wait_status(conn, paid, "SUCCESS")
    assert time.monotonic() - emitted < 3, "woken by NOTIFY, not by polling"
    assert run_row(conn, paid)[2]["steps"]["event:order-7"] == {"paid": 12}
    wait_status(conn, late, "SUCCESS")
    assert run_row(conn, late)[2]["steps"] == {"event:never": "timeout"}


def leased_runs(conn: psycopg.Connection[Any], n: int) -> list[tuple[int, Any]]:
    conn.execute("select pgqrs.create_workflow('ev')")
    worker = conn.execute("select pgqrs.register_worker('ev_w', 'h', 1, 'ev')").fetchone()[0]  # type: ignore[index]
    conn.execute("select pgqrs.trigger_batch('ev', %s)", (Jsonb([{}] * n),))
    rows = conn.execute(
        "select run_id, lease_token from pgqrs.dequeue('ev', %s, %s, '1 hour') order by run_id", (worker, n)
    ).fetchall()
    assert len(rows) == n
    return [(r[0], r[1]) for r in rows]


def test_an_emit_racing_a_wait_gives_exactly_one_outcome(db: str, conn: psycopg.Connection[Any]) -> None:
    """Without the lock on the key, a wait that has not seen the event could commit WAITING after the emit
    found no waiter: the run would wait forever. Either order must end with the payload recorded."""
    runs = leased_runs(conn, 150)
    with psycopg.connect(db, autocommit=True) as waiter, psycopg.connect(db, autocommit=True) as emitter:
        outcomes = []
        for i, (run_id, token) in enumerate(runs):
            key = f"race-{i}"
            barrier = threading.Barrier(2)
            result: dict[str, Any] = {}

            def emit(key: str = key, barrier: threading.Barrier = barrier, result: dict[str, Any] = result
                     ) -> None:
                barrier.wait()
                query = "select pgqrs.emit_event(%s, '{\"n\": 1}')"
                result["emit"] = emitter.execute(query, (key,)).fetchone()

            thread = threading.Thread(target=emit)
            thread.start()
            barrier.wait()
            got = waiter.execute(
                "select status, payload from pgqrs.wait_event(%s, 'w', %s, %s)", (run_id, token, key)
            ).fetchone()
            thread.join()
            assert result["emit"] == (True,)
            step = conn.execute(
                "select status, value from pgqrs.steps where run_id = %s and step_id = 'w'", (run_id,)
            ).fetchone()
            assert step == ("SUCCESS", {"payload": {"n": 1}}), f"run {run_id}: {got}, step {step}"
            run = status(conn, run_id)
            assert (got, run) in [(("EVENT", {"n": 1}), "RUNNING"), (("WAITING", None), "QUEUED")]
            outcomes.append(got[0])  # type: ignore[index]
    assert conn.execute("select count(*) from pgqrs.waits").fetchone() == (0,)
    print({o: outcomes.count(o) for o in set(outcomes)})


def test_every_waiter_on_a_key_is_woken_by_one_emit(conn: psycopg.Connection[Any]) -> None:
    runs = leased_runs(conn, 300)
    for run_id, token in runs:
        conn.execute("select pgqrs.wait_event(%s, 'w', %s, 'all', '1 hour')", (run_id, token))
    assert conn.execute("select count(*) from pgqrs.waiting_runs where key = 'all'").fetchone() == (300,)
    conn.execute("listen " + conn.execute("select pgqrs.queue_channel('ev')").fetchone()[0])  # type: ignore[index]
    assert conn.execute("select pgqrs.emit_event('all', '\"go\"')").fetchone() == (True,)
    assert conn.execute(
        "select r.status, s.value, m.visible_at <= pgqrs.now(), count(*) from pgqrs.runs as r"
        " join pgqrs.steps as s using (run_id) join pgqrs.messages as m on m.message_id = r.run_id"
        " group by 1, 2, 3"
    ).fetchall() == [("QUEUED", {"payload": "go"}, True, 300)]
    assert len(list(conn.notifies(timeout=1, stop_after=1))) == 1, "one NOTIFY for the queue"
    assert conn.execute("select count(*) from pgqrs.waiting_runs").fetchone() == (0,)


def test_bad_input_to_sleep_and_wait_for_event(db: str) -> None:
    async def bad(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> list[str]:
        calls = [
            lambda: ctx.sleep(-1),
            lambda: ctx.sleep(float("nan")),
            lambda: ctx.sleep(float("inf")),
            lambda: ctx.sleep(timedelta(days=366)),
            lambda: ctx.sleep_until(datetime(2030, 1, 1)),  # naive
            lambda: ctx.wait_for_event(""),
            lambda: ctx.wait_for_event("k" * 256),
            lambda: ctx.wait_for_event("k", timeout=0),
            lambda: ctx.wait_for_event("k", timeout=-1),
            lambda: ctx.step("plain", lambda: 1),
            lambda: ctx.sleep(0, step_id="plain"),  # DuplicateStepId: in this execution
            lambda: ctx.run.sleep_step("plain", seconds=0),  # QR010: recorded as an ordinary step
            lambda: ctx.sleep(0),  # due at once: no error
        ]
        seen = []
        for call in calls:
            try:
                await call()
                seen.append("ok")
            except pgqrs.PgqrsError as exc:
                seen.append(type(exc).__name__)
        return seen

    async def scenario() -> None:
        async with InProcess(db) as env:
            await env.store.create_workflow("bad_waits")
            handle = await pgqrs.workflow("bad_waits").trigger({}).execute(env.store)
            (info,) = await env.drain("bad_waits", bad, [handle])
            assert info.status == "SUCCESS", info.error
            expected = ["InvalidArgument"] * 9 + ["ok", "DuplicateStepId", "StepKindConflict", "ok"]
            assert info.output() == expected
            assert [(s.step_id, s.status) for s in await env.store.steps(handle)] == [
                ("plain", "SUCCESS"), ("sleep#2", "SUCCESS")  # "sleep": the 366 days the engine refused
            ]
            with pytest.raises(pgqrs.InvalidArgument):
                await env.store.emit_event("", 1)
            with pytest.raises(pgqrs.NotSerializable):
                await env.store.emit_event("k", {1, 2})

    asyncio.run(scenario())


def test_cli_emit_wakes_a_waiting_run_and_runs_lists_it(db: str) -> None:
    sql_exec(db, "select pgqrs.create_workflow('cli_wait')")
    run_id = int(cli("trigger", "cli_wait", dsn=db).stdout)
    _, token = lease(db, "cli_wait")
    sql_exec(db, "select pgqrs.wait_event(%s, 'paid', %s::uuid, 'order-9')", (run_id, token))
    assert [r["run_id"] for r in ok_json("runs", "--status", "WAITING", dsn=db)] == [run_id]
    stats = ok_json("stats", dsn=db)
    assert stats["queues"][0]["waiting"] == 1, stats

    assert ok_json("emit", "order-9", '{"amount": 5}', dsn=db) == {"key": "order-9", "emitted": True}
    again = cli("emit", "order-9", '{"amount": 6}', dsn=db)
    assert again.returncode == 0 and "already emitted" in again.stdout
    shown = ok_json("run", str(run_id), dsn=db)
    assert shown["run"]["status"] == "QUEUED"
    assert shown["steps"][0]["value"] == {"payload": {"amount": 5}}
    assert_one_line_error(cli("emit", "", dsn=db), 2, "event key")
    assert_one_line_error(cli("emit", "k", "{nope", dsn=db), 2, "not valid JSON")


def test_a_run_waiting_without_timeout_can_be_read(db: str) -> None:
    """A message no time makes visible (a pause without timeout, since version 1; an event wait without one)
    has visible_at 'infinity'. run_status and pgqrs.run_overview handed it out as is, and Python cannot read
    it (psycopg: "timestamp too large"): `result()`, `run().get()` and `pgqrs runs` / `pgqrs run` failed for
    such a run. They show NULL now."""
    sql_exec(db, "select pgqrs.create_workflow('forever')")
    paused = int(cli("trigger", "forever", dsn=db).stdout)
    _, token = lease(db, "forever")
    sql_exec(db, "select pgqrs.pause_step(%s, 'approval', %s::uuid)", (paused, token))
    waiting_ = int(cli("trigger", "forever", dsn=db).stdout)
    _, token = lease(db, "forever")
    sql_exec(db, "select pgqrs.wait_event(%s, 'paid', %s::uuid, 'never')", (waiting_, token))

    async def read() -> list[Any]:
        async with await pgqrs.connect(db) as store:
            return [await pgqrs.run().status(r).store(store).get() for r in (paused, waiting_)]

    infos = asyncio.run(read())
    assert [(i.status, i.visible_at) for i in infos] == [("PAUSED", None), ("WAITING", None)]
    assert {r["status"] for r in ok_json("runs", dsn=db)} == {"PAUSED", "WAITING"}
    assert ok_json("run", str(paused), dsn=db)["run"]["visible_at"] is None


def test_the_sync_flavour_sleeps_and_waits_for_events_too(db: str) -> None:
    import pgqrs.sync as pgqrs_sync

    @pgqrs_sync.workflow(name="sync_waits")
    def handler(ctx: Any, params: dict[str, Any]) -> Any:
        ctx.sleep(0.3)
        return ctx.wait_for_event("sync-key", timeout=30)

    with pgqrs_sync.connect(db) as store:
        store.create_workflow("sync_waits")
        worker = pgqrs_sync.consumer("sync-waiter", None, "sync_waits").handler(handler).create(store)
        thread = threading.Thread(target=worker.poll_forever, daemon=True)
        thread.start()
        try:
            handle = pgqrs_sync.workflow("sync_waits").trigger({}).execute(store)
            deadline = time.monotonic() + 30
            while pgqrs_sync.run().status(handle).store(store).get().current_step != "wait_for_event":
                assert time.monotonic() < deadline, "the run never reached its event wait"
                time.sleep(0.05)
            assert store.emit_event("sync-key", [1, 2])
            assert pgqrs_sync.run().status(handle).store(store).result(timeout=30) == [1, 2]
        finally:
            worker.stop()
            thread.join(timeout=60)
        assert not thread.is_alive()
