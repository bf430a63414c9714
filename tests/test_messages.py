"""Messages to a run (issue 15): pgqrs.send / pgqrs.recv, store.send, ctx.recv, ctx.send, `pgqrs send`.
Real worker processes (tests/worker_proc.py, its "plan" input) where a crash or the wake-up is the point, SQL
for the race, in-process for bad input.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

import pgqrs
from test_cli import assert_one_line_error, lease, ok_json, sql_exec
from test_cli import pgqrs as cli
from test_waits import waiting
from test_worker import Workers, executions, run_row, status, trigger, wait_status
from test_worker import workers as workers  # the fixture: real worker processes
from test_worker_in_process import InProcess


def consumed(conn: psycopg.Connection[Any], run_id: int) -> list[tuple[Any, ...]]:
    """(topic, payload, consumed_by) of the run's messages in the order sent."""
    return conn.execute(
        "select topic, payload, consumed_by from pgqrs.run_messages where run_id = %s order by message_id",
        (run_id,),
    ).fetchall()


def message_row(conn: psycopg.Connection[Any], run_id: int) -> Any:
    return conn.execute("select m::text from pgqrs.messages as m where message_id = %s", (run_id,)).fetchone()


def step_value(conn: psycopg.Connection[Any], run_id: int, step_id: str) -> Any:
    row = conn.execute("select value from pgqrs.steps where run_id = %s and step_id = %s", (run_id, step_id))
    return row.fetchone()[0]  # type: ignore[index]


def send(dsn: str, run_id: int, topic: str, message: Any, key: str | None = None) -> int:
    async def go() -> int:
        async with await pgqrs.connect(dsn) as store:
            return await store.send(run_id, topic, message, idempotency_key=key)

    return asyncio.run(go())


def test_a_run_receives_messages_sent_before_and_after_it_waits_in_order_each_once(
    workers: Workers, conn: psycopg.Connection[Any]
) -> None:
    plan = [["recv", "t", None], ["recv", "t", None], ["recv", "t", None], ["step", "done"]]
    run_id = trigger(conn, {"plan": plan})
    sender = trigger(conn, {"plan": [["send", run_id, "t", {"n": 3}]]})
    send(conn.info.dsn, run_id, "t", {"n": 1})
    send(conn.info.dsn, run_id, "other", "not for these recv steps")
    worker, _ = workers.start("w1", "--visibility", "5")
    wait_status(conn, sender, "SUCCESS")  # ctx.send: its message is the second of the topic
    wait_status(conn, run_id, "WAITING")
    assert waiting(conn, run_id) == ("message", "t", False, "recv#3")
    held = conn.execute("select lease_token from pgqrs.messages where message_id = %s", (run_id,))
    assert held.fetchone() == (None,), "a run waiting for a message holds no lease"
    sent = time.monotonic()
    send(conn.info.dsn, run_id, "t", {"n": 4})
    wait_status(conn, run_id, "SUCCESS")
    assert time.monotonic() - sent < 3, "woken by the send's NOTIFY, not by polling"
    assert run_row(conn, run_id)[2]["steps"]["recv:t"] == [{"n": 1}, {"n": 3}, {"n": 4}]
    assert consumed(conn, run_id) == [
        ("t", {"n": 1}, "recv"), ("other", "not for these recv steps", None), ("t", {"n": 3}, "recv#2"),
        ("t", {"n": 4}, "recv#3"),
    ]
    assert [s for s, _p, _d in executions(conn, run_id)] == ["done"]
    assert worker.poll() is None


def test_sigkill_during_a_recv_wait_loses_nothing_and_consumes_nothing_twice(
    workers: Workers, conn: psycopg.Connection[Any]
) -> None:
    run_id = trigger(conn, {"plan": [["step", "a"], ["recv", "t", None], ["recv", "t", None], ["step", "b"]]})
    send(conn.info.dsn, run_id, "t", "first")
    first, _ = workers.start("w1", "--visibility", "5")
    wait_status(conn, run_id, "WAITING")
    before = message_row(conn, run_id)
    first.send_signal(signal.SIGKILL)
    assert first.wait(10) == -signal.SIGKILL
    assert status(conn, run_id) == "WAITING"
    assert message_row(conn, run_id) == before
    send(conn.info.dsn, run_id, "t", "second")  # no worker alive: the run is queued, the message kept
    assert status(conn, run_id) == "QUEUED"
    second, _ = workers.start("w2", "--visibility", "5")
    wait_status(conn, run_id, "SUCCESS")
    assert executions(conn, run_id) == [("a", first.pid, 1), ("b", second.pid, 2)]
    assert run_row(conn, run_id)[2]["steps"]["recv:t"] == ["first", "second"]
    assert consumed(conn, run_id) == [("t", "first", "recv"), ("t", "second", "recv#2")]


def test_a_recv_timeout_is_the_handlers_to_catch(workers: Workers, conn: psycopg.Connection[Any]) -> None:
    run_id = trigger(conn, {"plan": [["recv", "t", 1], ["step", "after"]]})
    workers.start("w1", "--visibility", "5")
    wait_status(conn, run_id, "SUCCESS")
    assert run_row(conn, run_id)[2]["steps"]["recv:t"] == ["timeout"]
    recorded = {"topic": "t", "timeout": True}
    assert step_value(conn, run_id, "recv") == recorded, "the timeout is recorded: a replay raises it again"


def leased_runs(conn: psycopg.Connection[Any], n: int) -> list[tuple[int, Any]]:
    conn.execute("select pgqrs.create_workflow('msg')")
    worker = conn.execute("select pgqrs.register_worker('msg_w', 'h', 1, 'msg')").fetchone()[0]  # type: ignore[index]
    conn.execute("select pgqrs.trigger_batch('msg', %s)", (Jsonb([{}] * n),))
    rows = conn.execute(
        "select run_id, lease_token from pgqrs.dequeue('msg', %s, %s, '1 hour') order by run_id", (worker, n)
    ).fetchall()
    assert len(rows) == n
    return [(r[0], r[1]) for r in rows]


def test_a_send_racing_a_recv_is_consumed_exactly_once_and_nothing_is_left_waiting(
    db: str, conn: psycopg.Connection[Any]
) -> None:
    """Without the lock on (run, topic), a recv that has not seen the message could commit WAITING after the
    send found no waiter: the run would wait although its message is there. Either order must end with the
    message taken by the recv or the run woken, and the replay taking it once."""
    runs = leased_runs(conn, 150)
    woken = []
    with psycopg.connect(db, autocommit=True) as receiver, psycopg.connect(db, autocommit=True) as sender:
        for run_id, token in runs:
            barrier = threading.Barrier(2)
            result: dict[str, Any] = {}

            def send_it(run_id: int = run_id, barrier: threading.Barrier = barrier,
                        result: dict[str, Any] = result) -> None:
                barrier.wait()
                query = "select pgqrs.send(%s, 't', %s)"
                result["sent"] = sender.execute(query, (run_id, Jsonb(run_id))).fetchone()

            thread = threading.Thread(target=send_it)
            thread.start()
            barrier.wait()
            got = receiver.execute(
                "select status, message from pgqrs.recv(%s, 'r', %s, 't')", (run_id, token)
            ).fetchone()
            thread.join()
            assert result["sent"] is not None
            run = status(conn, run_id)
            assert (got, run) in [(("MESSAGE", run_id), "RUNNING"), (("WAITING", None), "QUEUED")], (got, run)
            if got[0] == "WAITING":  # type: ignore[index]
                woken.append(run_id)
    assert conn.execute("select count(*) from pgqrs.waits").fetchone() == (0,), "nothing left waiting"
    worker = conn.execute("select pgqrs.register_worker('msg_w', 'h', 1, 'msg')").fetchone()[0]  # type: ignore[index]
    again = conn.execute(
        "select d.run_id, r.status, r.message from pgqrs.dequeue('msg', %s, 1000, '1 hour') as d,"
        " lateral pgqrs.recv(d.run_id, 'r', d.lease_token, 't') as r order by 1", (worker,)
    ).fetchall()
    assert again == [(r, "MESSAGE", r) for r in woken], "each woken run takes its message on the replay"
    assert conn.execute(
        "select count(*), count(*) filter (where consumed_by = 'r') from pgqrs.run_messages"
    ).fetchone() == (150, 150), "each message consumed exactly once"
    print({"received at once": 150 - len(woken), "woken": len(woken)})


def test_send_to_an_unknown_or_finished_run_and_bad_input(db: str) -> None:
    async def receive(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> list[str]:
        calls = [
            lambda: ctx.recv(""),
            lambda: ctx.recv("t" * 256),
            lambda: ctx.recv("t", timeout=0),
            lambda: ctx.recv("t", timeout=-1),
            lambda: ctx.step("plain", lambda: 1),
            lambda: ctx.recv("t", step_id="plain"),  # DuplicateStepId: in this execution
            lambda: ctx.run.recv("plain", "t", 1),  # QR010: recorded as an ordinary step
            lambda: ctx.send(ctx.run_id, "t", {"to": "myself"}),
            lambda: ctx.recv("t"),  # takes it at once
        ]
        seen = []
        for call in calls:
            try:
                seen.append(await call())
            except pgqrs.PgqrsError as exc:
                seen.append(type(exc).__name__)
        return seen

    async def scenario() -> None:
        async with InProcess(db) as env:
            await env.store.create_workflow("bad_msgs")
            handle = await pgqrs.workflow("bad_msgs").trigger({}).execute(env.store)
            (info,) = await env.drain("bad_msgs", receive, [handle])
            assert info.status == "SUCCESS", info.error
            output = info.output()
            assert output[:7] == ["InvalidArgument"] * 4 + [1, "DuplicateStepId", "StepKindConflict"]
            assert isinstance(output[7], int) and output[8] == {"to": "myself"}
            store = env.store
            with pytest.raises(pgqrs.InvalidState, match="has finished"):
                await store.send(handle, "t", 1)
            with pytest.raises(pgqrs.UnknownRun):
                await store.send(10**12, "t", 1)
            live = await pgqrs.workflow("bad_msgs").trigger({"n": 2}).execute(store)
            with pytest.raises(pgqrs.InvalidArgument):
                await store.send(live, "", 1)
            with pytest.raises(pgqrs.NotSerializable):
                await store.send(live, "t", {1, 2})
            first = await store.send(live, "t", 1, idempotency_key="k")
            assert await store.send(live, "t", 1, idempotency_key="k") == first
            with pytest.raises(pgqrs.IdempotencyConflict):
                await store.send(live, "t", 2, idempotency_key="k")

    asyncio.run(scenario())


def test_cli_send_wakes_a_waiting_run(db: str) -> None:
    sql_exec(db, "select pgqrs.create_workflow('cli_msg')")
    run_id = int(cli("trigger", "cli_msg", dsn=db).stdout)
    _, token = lease(db, "cli_msg")
    sql_exec(db, "select pgqrs.recv(%s, 'inbox', %s::uuid, 'orders')", (run_id, token))
    assert [r["run_id"] for r in ok_json("runs", "--status", "WAITING", dsn=db)] == [run_id]
    sent = ok_json("send", str(run_id), "orders", '{"sku": 5}', dsn=db)
    assert sent["run_id"] == run_id and sent["topic"] == "orders" and isinstance(sent["message_id"], int)
    assert ok_json("run", str(run_id), dsn=db)["run"]["status"] == "QUEUED"
    assert_one_line_error(cli("send", str(run_id), "", "1", dsn=db), 2, "topic")
    assert_one_line_error(cli("send", str(run_id), "t", "{nope", dsn=db), 2, "not valid JSON")
    sql_exec(db, "select pgqrs.cancel_run(%s)", (run_id,))
    finished = cli("send", str(run_id), "orders", "1", dsn=db)
    assert finished.returncode != 0 and "has finished" in finished.stderr, finished.stderr


def test_the_sync_flavour_receives_and_sends_too(db: str) -> None:
    import pgqrs.sync as pgqrs_sync

    @pgqrs_sync.workflow(name="sync_msgs")
    def handler(ctx: Any, params: dict[str, Any]) -> Any:
        ctx.send(ctx.run_id, "self", "note")
        return [ctx.recv("self"), ctx.recv("in", timeout=30)]

    with pgqrs_sync.connect(db) as store:
        store.create_workflow("sync_msgs")
        worker = pgqrs_sync.consumer("sync-receiver", None, "sync_msgs").handler(handler).create(store)
        thread = threading.Thread(target=worker.poll_forever, daemon=True)
        thread.start()
        try:
            handle = pgqrs_sync.workflow("sync_msgs").trigger({}).execute(store)
            deadline = time.monotonic() + 30
            while pgqrs_sync.run().status(handle).store(store).get().current_step != "recv#2":
                assert time.monotonic() < deadline, "the run never reached its second recv"
                time.sleep(0.05)
            store.send(handle, "in", [1, 2])
            assert pgqrs_sync.run().status(handle).store(store).result(timeout=30) == ["note", [1, 2]]
        finally:
            worker.stop()
            thread.join(timeout=60)
        assert not thread.is_alive()
