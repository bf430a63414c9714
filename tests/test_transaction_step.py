"""Transactional steps (`ctx.transaction_step`), in-process: the application's row and the step's record
commit together or not at all (both flavours), a replay does not run the body again (both flavours), a
transient failure rolls back and retries, a lease taken over while the body runs rolls its writes back. The
crash of a real worker process inside the body is in tests/test_transaction_crash.py; the plain-SQL
pattern for other languages in tests/test_transaction_sql.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

import pgqrs
import pgqrs.sync as pgqrs_sync

LEDGER = "create table ledger (run_id bigint not null, note text not null)"
INSERT = "insert into ledger (run_id, note) values (%s, %s)"


def ledger(db: str, run_id: int) -> list[str]:
    with psycopg.connect(db, autocommit=True) as conn:
        rows = conn.execute("select note from ledger where run_id = %s", (run_id,)).fetchall()
    return [r[0] for r in rows]


def step_row(db: str, run_id: int, step_id: str) -> tuple[Any, ...] | None:
    with psycopg.connect(db, autocommit=True) as conn:
        return conn.execute("select status, value, attempt from pgqrs.steps"
                            " where run_id = %s and step_id = %s", (run_id, step_id)).fetchone()


def serve_async(db: str, queue: str, handler: Callable[..., Any], params: dict[str, Any],
                visibility: float = 30.0) -> pgqrs.RunInfo:
    """Trigger one run of `queue` and serve it with an in-process async worker until it has finished."""

    async def scenario() -> pgqrs.RunInfo:
        async with await pgqrs.connect(db) as store:
            await store.create_workflow(queue, {"base_seconds": 0.05, "jitter": 0})
            handle = await store.trigger(queue, params)
            worker = await (pgqrs.consumer(f"{queue}-w", None, queue).handler(handler).visibility(visibility)
                            .poll_interval(0.05).create(store))
            task = asyncio.create_task(worker.poll_forever())
            try:
                for _ in range(600):
                    info = await pgqrs.run().status(handle).store(store).get()
                    if info.status in ("SUCCESS", "ERROR"):
                        return info
                    await asyncio.sleep(0.05)
                raise AssertionError(f"run {handle.run_id} did not finish: {info}")
            finally:
                worker.stop()
                await asyncio.wait_for(task, 30)

    return asyncio.run(scenario())


def serve_sync(db: str, queue: str, handler: Callable[..., Any], params: dict[str, Any]) -> pgqrs.RunInfo:
    """serve_async with pgqrs.sync: the worker in a thread."""
    with pgqrs_sync.connect(db) as store:
        store.create_workflow(queue, {"base_seconds": 0.05, "jitter": 0})
        handle = store.trigger(queue, params)
        worker = (pgqrs_sync.consumer(f"{queue}-w", None, queue).handler(handler).poll_interval(0.05)
                  .create(store))
        thread = threading.Thread(target=worker.poll_forever, daemon=True)
        thread.start()
        try:
            for _ in range(600):
                info = pgqrs_sync.run().status(handle).store(store).get()
                if info.status in ("SUCCESS", "ERROR"):
                    return info
                time.sleep(0.05)
            raise AssertionError(f"run {handle.run_id} did not finish: {info}")
        finally:
            worker.stop()
            thread.join(60)


def fail_once() -> None:
    raise pgqrs.TransientError("once", retry_after=0)


@pytest.fixture
def db_ledger(db: str) -> str:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(LEDGER)
    return db


# ---- (1) the row and the step commit together; (4) a replay does not run the body again -------------------


def test_async_transaction_step_commits_the_row_with_the_step_and_replays_it(db_ledger: str) -> None:
    calls: list[int] = []

    async def handler(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> Any:
        async def debit(conn: psycopg.AsyncConnection[Any]) -> dict[str, Any]:
            calls.append(ctx.attempt)
            await conn.execute(INSERT, (ctx.run_id, "debit"))
            status = (await (await conn.execute("select pg_catalog.txid_status(txid_current())")).fetchone())
            return {"debited": 10, "in_transaction": status is not None and status[0] == "in progress"}

        value = await ctx.transaction_step("debit", debit)
        if ctx.attempt == 1:  # a later step fails once: the second delivery replays "debit" from the journal
            await ctx.step("flaky", fail_once)
        return value

    info = serve_async(db_ledger, "txn_async", handler, {})
    assert info.status == "SUCCESS" and info.output_value == {"debited": 10, "in_transaction": True}
    assert info.attempt == 2
    assert calls == [1]  # not run again on the second delivery
    assert ledger(db_ledger, info.run_id) == ["debit"]
    assert step_row(db_ledger, info.run_id, "debit") == ("SUCCESS", info.output_value, 1)


def test_sync_transaction_step_commits_the_row_with_the_step_and_replays_it(db_ledger: str) -> None:
    calls: list[int] = []

    def handler(ctx: Any, params: dict[str, Any]) -> Any:
        def debit(conn: psycopg.Connection[Any]) -> dict[str, Any]:
            calls.append(ctx.attempt)
            conn.execute(INSERT, (ctx.run_id, "debit"))
            return {"debited": 10, "thread": threading.current_thread().name}

        value = ctx.transaction_step("debit", debit)
        if ctx.attempt == 1:
            ctx.step("flaky", fail_once)
        return value

    info = serve_sync(db_ledger, "txn_sync", handler, {})
    assert info.status == "SUCCESS" and info.output_value["debited"] == 10
    assert info.attempt == 2 and calls == [1]
    assert ledger(db_ledger, info.run_id) == ["debit"]
    assert step_row(db_ledger, info.run_id, "debit") is not None


# ---- failures roll back ------------------------------------------------------------------------------------


def test_a_transient_error_rolls_back_and_the_retry_commits_once(db_ledger: str) -> None:
    async def handler(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> Any:
        async def debit(conn: psycopg.AsyncConnection[Any]) -> int:
            await conn.execute(INSERT, (ctx.run_id, f"attempt {ctx.attempt}"))
            if ctx.attempt == 1:
                raise pgqrs.TransientError("the bank is busy", retry_after=0.1)
            return ctx.attempt

        return await ctx.transaction_step("debit", debit)

    info = serve_async(db_ledger, "txn_transient", handler, {})
    assert (info.status, info.output_value, info.attempt) == ("SUCCESS", 2, 2)
    assert ledger(db_ledger, info.run_id) == ["attempt 2"]  # the first attempt's row rolled back
    assert step_row(db_ledger, info.run_id, "debit") == ("SUCCESS", 2, 2)


def test_a_permanent_error_rolls_back_and_fails_the_run(db_ledger: str) -> None:
    async def handler(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> Any:
        async def debit(conn: psycopg.AsyncConnection[Any]) -> int:
            await conn.execute(INSERT, (ctx.run_id, "debit"))
            raise ValueError("no such account")

        return await ctx.transaction_step("debit", debit)

    info = serve_async(db_ledger, "txn_error", handler, {})
    assert info.status == "ERROR" and info.error["type"] == "ValueError"
    assert ledger(db_ledger, info.run_id) == []
    row = step_row(db_ledger, info.run_id, "debit")
    assert row is not None and row[0] == "ERROR"


def test_a_lease_taken_over_while_the_body_runs_rolls_its_writes_back(db_ledger: str) -> None:
    """Another worker takes the run over (its lease had expired by that worker's clock) while the body runs:
    complete_step raises LeaseLost (QR004) on the body's connection and the body's row is rolled back."""
    outcome: list[BaseException] = []

    def take_over(run_id: int) -> None:
        with psycopg.connect(db_ledger, autocommit=True) as conn:
            conn.execute("set pgqrs.now = '2100-01-01 00:00+00'")  # past the lease, for this session only
            worker = conn.execute("select pgqrs.register_worker('thief', 'h', 1, 'txn_lost')").fetchone()
            assert worker is not None
            taken = conn.execute("select run_id from pgqrs.dequeue('txn_lost', %s, 1, interval '1 hour')",
                                 (worker[0],)).fetchall()
            assert taken == [(run_id,)]

    async def handler(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> Any:
        async def debit(conn: psycopg.AsyncConnection[Any]) -> str:
            await conn.execute(INSERT, (ctx.run_id, "debit"))
            await asyncio.to_thread(take_over, ctx.run_id)
            return "debited"

        try:
            return await ctx.transaction_step("debit", debit)
        except BaseException as exc:
            outcome.append(exc)
            raise

    async def scenario() -> int:
        async with await pgqrs.connect(db_ledger) as store:
            await store.create_workflow("txn_lost")
            handle = await store.trigger("txn_lost", {})
            worker = await (pgqrs.consumer("txn_lost-w", None, "txn_lost").handler(handler)
                            .poll_interval(0.05).create(store))
            task = asyncio.create_task(worker.poll_forever())
            try:
                for _ in range(200):
                    if outcome:
                        break
                    await asyncio.sleep(0.05)
            finally:
                worker.stop()
                await asyncio.wait_for(task, 30)
            return handle.run_id

    run_id = asyncio.run(scenario())
    assert len(outcome) == 1 and isinstance(outcome[0], pgqrs.LeaseLost)
    assert ledger(db_ledger, run_id) == []  # rolled back with the failed complete_step
    assert step_row(db_ledger, run_id, "debit") is None


def test_a_commit_that_fails_leaves_the_step_unrecorded(db_ledger: str) -> None:
    """The body's write breaks a deferred constraint, checked only at COMMIT, after complete_step: the step's
    record rolls back with the write (it was made on the same connection, in the same transaction), and the
    COMMIT's error fails the step like one the body raised."""
    with psycopg.connect(db_ledger, autocommit=True) as conn:
        conn.execute("create table accounts (id int primary key deferrable initially deferred)")
        conn.execute("insert into accounts values (1)")

    async def handler(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> Any:
        async def open_account(conn: psycopg.AsyncConnection[Any]) -> str:
            await conn.execute("insert into accounts values (1)")  # a duplicate, not checked until COMMIT
            return "opened"

        return await ctx.transaction_step("open", open_account)

    info = serve_async(db_ledger, "txn_commit", handler, {})
    assert info.status == "ERROR" and info.error["type"] == "UniqueViolation", info.error
    row = step_row(db_ledger, info.run_id, "open")
    assert row is not None and row[0] == "ERROR"
