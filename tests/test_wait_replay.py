"""Replays of durable waits (issue 15), in-process: a wait whose outcome the delivery's journal holds answers
it without calling the engine, as ctx.step does; and a step id keeps its kind the other way round too:
ctx.step (and the manual step calls) on a wait's step id raise StepKindConflict (QR010), and change nothing.

The engine calls are counted on the store the worker uses: its `call`, wrapped, logs each real call before it
goes to the database (the worker's round trips, as it makes them).
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from typing import Any

import psycopg

import pgqrs
from test_worker_in_process import InProcess

WAITS = ("sleep_step", "wait_event", "recv", "start_child", "wait_children")


def log_engine_calls(store: Any, log: list[Any]) -> None:
    """Append (function, step id) to `log` for every engine call of `store` that names a run's step (the
    first parameters of the step and wait calls are the run and the step id); works for both flavours."""
    real = store.call

    def logged(query: str, params: tuple[Any, ...], conn: Any = None) -> Any:
        name = re.search(r"pgqrs\.(\w+)\(", query)
        if name and name[1] in (*WAITS, "acquire_step", "complete_step", "fail_step", "pause_step"):
            log.append((name[1], params[1]))
        return real(query, params, conn)

    store.call = logged


def by_delivery(log: list[Any]) -> list[list[Any]]:
    """The calls in `log` split at the ("delivery", n) markers the handler appends when it starts."""
    deliveries: list[list[Any]] = []
    for entry in log:
        if entry[0] == "delivery":
            deliveries.append([])
        elif deliveries:
            deliveries[-1].append(entry)
    return deliveries


def test_a_replay_answers_recorded_waits_from_the_journal_without_calling_the_engine(db: str) -> None:
    """Before, every ctx.sleep / wait_for_event / recv called its SQL function on every replay, even when the
    journal dequeue handed out held its outcome: a run with n waits made n round trips per delivery more."""
    log: list[Any] = []

    async def waits(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> list[Any]:
        log.append(("delivery", ctx.attempt))
        await ctx.sleep(0.2)
        paid = await ctx.wait_for_event("paid:1")  # emitted before the run started
        try:
            late: Any = await ctx.wait_for_event("never", timeout=0.2, step_id="late")
        except pgqrs.WaitTimeout:
            late = "timeout"
        order = await ctx.recv("orders")  # sent before the run started
        try:
            refund: Any = await ctx.recv("refunds", timeout=0.2)
        except pgqrs.WaitTimeout:
            refund = "timeout"
        await ctx.sleep(0.2, step_id="last")
        return [paid, late, order, refund]

    async def scenario() -> None:
        async with InProcess(db) as env:
            await env.store.create_workflow("replayed_waits")
            handle = await pgqrs.workflow("replayed_waits").trigger({}).execute(env.store)
            await env.store.emit_event("paid:1", {"amount": 5})
            await env.store.send(handle, "orders", {"sku": "A"})
            log_engine_calls(env.store, log)
            (info,) = await env.drain("replayed_waits", waits, [handle])
            assert info.status == "SUCCESS", info.error
            assert info.output() == [{"amount": 5}, "timeout", {"sku": "A"}, "timeout"]

    asyncio.run(scenario())
    calls = [[c for c in delivery if c[0] in WAITS] for delivery in by_delivery(log)]
    assert calls == [
        [("sleep_step", "sleep")],  # WAITING
        # due; EVENT; WAITING
        [("sleep_step", "sleep"), ("wait_event", "wait_for_event"), ("wait_event", "late")],
        [("wait_event", "late"), ("recv", "recv"), ("recv", "recv#2")],  # TIMEOUT; MESSAGE; WAITING
        [("recv", "recv#2"), ("sleep_step", "last")],  # TIMEOUT; WAITING
        [("sleep_step", "last")],  # due: every other wait answered from the journal
    ], calls


def test_a_wait_value_left_out_of_the_journal_is_asked_for(db: str) -> None:
    """Past pgqrs.max_journal_bytes a recorded outcome is not in the journal: the replay asks the engine."""
    with psycopg.connect(db, autocommit=True) as c:
        dbname = c.execute("select current_database()").fetchone()[0]  # type: ignore[index]
        c.execute(f'alter database "{dbname}" set pgqrs.max_journal_bytes = 1000')
    log: list[Any] = []

    async def receive(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> int:
        log.append(("delivery", ctx.attempt))
        message = await ctx.recv("big")
        await ctx.sleep(0.2, step_id="after")
        return len(message)

    async def scenario() -> None:
        async with InProcess(db) as env:
            await env.store.create_workflow("omitted_wait")
            handle = await pgqrs.workflow("omitted_wait").trigger({}).execute(env.store)
            await env.store.send(handle, "big", "x" * 5000)
            log_engine_calls(env.store, log)
            (info,) = await env.drain("omitted_wait", receive, [handle])
            assert info.status == "SUCCESS", info.error
            assert info.output() == 5000

    asyncio.run(scenario())
    calls = [[c for c in delivery if c[0] in WAITS] for delivery in by_delivery(log)]
    assert calls == [[("recv", "recv"), ("sleep_step", "after")], [("recv", "recv"), ("sleep_step", "after")]]


def test_ctx_step_and_the_step_calls_refuse_a_wait_steps_id(db: str) -> None:
    """Before, ctx.step("nap") on the id of a sleep ran its body and overwrote the sleep's record (and
    acquire_step, complete_step, fail_step, pause_step and update_step wrote over a wait's step alike)."""
    log: list[Any] = []

    async def changed_code(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> list[str]:
        log.append(("delivery", ctx.attempt))
        if ctx.attempt == 1:
            await ctx.sleep(0.2, step_id="nap")  # the first version of the handler slept here
        seen = []
        try:
            await ctx.step("nap", lambda: "the body ran")
            seen.append("ran")
        except pgqrs.StepKindConflict as exc:
            seen.append(str(exc))
        calls = [
            lambda: ctx.run.acquire_step("nap"),
            lambda: ctx.run.complete_step("nap", 1),
            lambda: ctx.run.fail_step("nap", {"e": 1}, transient=False),
            lambda: ctx.run.pause_step("nap"),
            lambda: ctx.run.store.update_step(ctx.run_id, "nap", "SUCCESS", 1),
        ]
        for call in calls:
            try:
                await call()
                seen.append("ok")
            except pgqrs.PgqrsError as exc:
                seen.append(type(exc).__name__)
        return seen

    async def scenario() -> None:
        async with InProcess(db) as env:
            await env.store.create_workflow("kind_kept")
            handle = await pgqrs.workflow("kind_kept").trigger({}).execute(env.store)
            log_engine_calls(env.store, log)
            (info,) = await env.drain("kind_kept", changed_code, [handle])
            assert info.status == "SUCCESS", info.error
            refused, *codes = info.output()
            assert refused.startswith(f"step nap of run {handle.id} is a step of kind sleep"), refused
            assert codes == ["StepKindConflict"] * 5
            (nap,) = await env.store.steps(handle)
            assert (nap.step_id, nap.status) == ("nap", "WAITING"), "the sleep's record is as it was"

    asyncio.run(scenario())
    _first, second = by_delivery(log)
    assert second[0] == ("acquire_step", "nap"), "ctx.step refused from the journal, without a round trip"


def test_the_sync_flavour_answers_waits_from_the_journal_and_keeps_kinds(db: str) -> None:
    import pgqrs.sync as pgqrs_sync

    log: list[Any] = []

    @pgqrs_sync.workflow(name="sync_replay")
    def handler(ctx: Any, params: dict[str, Any]) -> Any:
        log.append(("delivery", ctx.attempt))
        refused = False
        if ctx.attempt == 1:
            ctx.sleep(0, step_id="old")  # the first version of the handler slept here (due at once)
        else:
            try:
                ctx.step("old", lambda: "the body ran")  # a later version made it an ordinary step
            except pgqrs_sync.StepKindConflict:
                refused = True
        ctx.sleep(0.2, step_id="nap")
        payload = ctx.wait_for_event("sync-paid")
        ctx.sleep(0.2, step_id="again")
        return [payload, "refused" if refused else "ran"]

    with pgqrs_sync.connect(db) as store:
        store.create_workflow("sync_replay")
        store.emit_event("sync-paid", 7)
        log_engine_calls(store, log)
        worker = pgqrs_sync.consumer("sync-replayer", None, "sync_replay").handler(handler).create(store)
        thread = threading.Thread(target=worker.poll_forever, daemon=True)
        thread.start()
        try:
            handle = pgqrs_sync.workflow("sync_replay").trigger({}).execute(store)
            started = time.monotonic()
            assert pgqrs_sync.run().status(handle).store(store).result(timeout=30) == [7, "refused"]
            assert time.monotonic() - started >= 0.4
        finally:
            worker.stop()
            thread.join(timeout=60)
        assert not thread.is_alive()
    assert by_delivery(log) == [
        [("sleep_step", "old"), ("sleep_step", "nap")],
        [("sleep_step", "nap"), ("wait_event", "wait_for_event"), ("sleep_step", "again")],
        [("sleep_step", "again")],  # nap and the event from the journal; ctx.step("old") refused from it
    ]
