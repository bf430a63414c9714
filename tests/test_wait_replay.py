"""Replays of durable waits (issue 15), in-process: a wait whose outcome the delivery's journal holds answers
it without calling the engine, as ctx.step does.

The engine calls are counted on the store the worker uses: its `call`, wrapped, logs each real call before it
goes to the database (the worker's round trips, as it makes them).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import psycopg

import pgqrs
from test_worker_in_process import InProcess

WAITS = ("sleep_step", "wait_event", "recv")


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
