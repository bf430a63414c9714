"""The dispatch loop's leases (pgqrs/_poller.py): its dequeues on a connection it keeps."""

from __future__ import annotations

import asyncio
import json
import logging
import select
from typing import Any

import psycopg
import pytest

import pgqrs


async def _wait_finished(store: pgqrs.Store, run_ids: list[int], seconds: float) -> list[pgqrs.RunInfo]:
    infos = []
    for run_id in run_ids:
        for _ in range(int(seconds / 0.05)):
            info = await pgqrs.run().status(run_id).store(store).get()
            if info.status in ("SUCCESS", "ERROR", "CANCELLED"):
                break
            await asyncio.sleep(0.05)
        infos.append(info)
    return infos


def test_the_dispatch_loop_replaces_its_connection_when_the_server_closed_it(db: str, caplog: Any) -> None:
    """The dispatch loop keeps one pooled connection for its dequeues. When the server closes it while the
    worker is idle (pg_terminate_backend, a restart), the next dequeue takes another connection at once: no
    failed dequeue, no loop error, and the run that woke the worker runs."""

    async def one(ctx: pgqrs.WorkflowContext, params: dict[str, int]) -> int:
        return params["n"]

    async def scenario() -> None:
        async with await pgqrs.connect(db) as store:
            await store.create_workflow("pfk")
            worker = await pgqrs.consumer("pfk-worker", None, "pfk").handler(one).create(store)
            task = asyncio.create_task(worker.poll_forever())
            try:
                for _ in range(100):  # the first (empty) dequeue took the connection
                    if worker._poller._conn is not None:
                        break
                    await asyncio.sleep(0.05)
                held = worker._poller._conn
                assert held is not None
                pid = held.info.backend_pid
                with psycopg.connect(db, autocommit=True) as admin:
                    admin.execute("select pg_terminate_backend(%s)", (pid,))
                    while admin.execute("select 1 from pg_stat_activity where pid = %s", (pid,)).fetchone():
                        await asyncio.sleep(0.02)
                # the server's goodbye has reached the worker's end (a backend leaves pg_stat_activity before
                # its socket closes): from now on the check before the next dequeue must see it
                readable, _, _ = select.select([held.pgconn.socket], [], [], 5)
                assert readable
                run = int((await pgqrs.workflow("pfk").trigger({"n": 7}).execute(store)).id)
                (info,) = await _wait_finished(store, [run], 10)
            finally:
                worker.stop()
                await asyncio.wait_for(task, 30)
            assert (info.status, info.output_value) == ("SUCCESS", 7)
            assert worker._poller._conn is None  # given back to the pool when the loop ended
            assert not [r for r in caplog.records if "dequeue failed" in r.getMessage()]

    asyncio.run(scenario())


def _xid(db: str) -> int:
    """The next transaction id (taking one: each call counts once)."""
    with psycopg.connect(db, autocommit=True) as conn:
        row = conn.execute("select pg_current_xact_id()::text::bigint").fetchone()
        assert row is not None
        return int(row[0])


async def _idle_worker(store: pgqrs.Store, queue: str, handler: Any) -> tuple[Any, asyncio.Task[None]]:
    """A worker at concurrency 1 whose first (empty) dequeue has been made."""
    worker = await pgqrs.consumer(f"{queue}-worker", None, queue).handler(handler).create(store)
    task = asyncio.create_task(worker.poll_forever())
    for _ in range(200):
        if worker._poller._conn is not None:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # past the startup's own writes (schedules, history partitions)
    return worker, task


@pytest.mark.parametrize("max_concurrency", [None, 1])
def test_one_run_at_a_time_leases_the_next_run_with_the_completion(
    db: str, max_concurrency: int | None
) -> None:
    """At concurrency 1 a run's completion and the next dequeue share one transaction: a one-step run costs
    two write transactions (the step, the completion with the next lease), not three. Counted in transaction
    ids taken while 20 queued runs drain. With max_concurrency 1 the dequeue leases the next run only if it
    sees the completion, which frees the workflow's one slot: made in the same statement, it must."""

    async def one(ctx: pgqrs.WorkflowContext, params: dict[str, int]) -> int:
        return int(await ctx.step("s", lambda: params["n"] * 2))

    async def scenario() -> None:
        async with await pgqrs.connect(db) as store:
            await store.create_workflow("pgt", max_concurrency=max_concurrency)
            worker, task = await _idle_worker(store, "pgt", one)
            try:
                before = _xid(db)
                with psycopg.connect(db, autocommit=True) as conn:  # all 20 queued at once (one transaction)
                    ids = [r[0] for r in conn.execute(
                        "select run_id from pgqrs.trigger_batch(p_workflow => 'pgt', p_inputs => %s::jsonb)",
                        (json.dumps([{"n": n} for n in range(20)]),))]
                infos = await _wait_finished(store, ids, 30)
                used = _xid(db) - before - 2  # the measuring call, the trigger
            finally:
                worker.stop()
                await asyncio.wait_for(task, 30)
            assert [(i.status, i.output_value, i.attempt) for i in infos] == [
                ("SUCCESS", 2 * n, 1) for n in range(20)
            ]
            # the first lease alone, then 2 per run (the step; the completion with the next lease): 41. With
            # a dequeue of its own per run it would be 60.
            assert 40 <= used <= 2 * 20 + 3, used

    asyncio.run(scenario())


def test_a_stopping_worker_leases_nothing_with_its_last_completion(db: str) -> None:
    """Once the worker is told to stop, its run's completion goes alone: the next queued run is not leased,
    so it is neither delayed nor charged a delivery."""

    async def scenario() -> None:
        async with await pgqrs.connect(db) as store:
            await store.create_workflow("pgs")
            holder: list[Any] = []

            async def stop_then_finish(ctx: pgqrs.WorkflowContext, params: dict[str, int]) -> int:
                holder[0].stop()
                return params["n"]

            first = int((await pgqrs.workflow("pgs").trigger({"n": 1}).execute(store)).id)
            second = int((await pgqrs.workflow("pgs").trigger({"n": 2}).execute(store)).id)
            worker = await pgqrs.consumer("pgs-worker", None, "pgs").handler(stop_then_finish).create(store)
            holder.append(worker)
            await asyncio.wait_for(worker.poll_forever(), 30)
            done = await pgqrs.run().status(first).store(store).get()
            left = await pgqrs.run().status(second).store(store).get()
            assert (done.status, done.output_value) == ("SUCCESS", 1)
            assert (left.status, left.attempt) == ("QUEUED", 0)

    asyncio.run(scenario())


def test_a_refused_completion_leases_nothing_and_raises_its_own_error(db: str, caplog: Any) -> None:
    """A completion the engine refuses (here the run was cancelled) rolls back the dequeue sent with it and
    is sent again alone, so the worker sees its own error (RunCancelled); the next run is leased afterwards
    by a dequeue of its own, once, and runs."""
    caplog.set_level(logging.INFO, "pgqrs.worker")

    async def scenario() -> None:
        async with await pgqrs.connect(db) as store:
            await store.create_workflow("pgr")

            async def cancel_self_first(ctx: pgqrs.WorkflowContext, params: dict[str, int]) -> int:
                if params["n"] == 1:
                    await store.cancel_run(ctx.run_id, "refuse the completion")
                return params["n"]

            first = int((await pgqrs.workflow("pgr").trigger({"n": 1}).execute(store)).id)
            second = int((await pgqrs.workflow("pgr").trigger({"n": 2}).execute(store)).id)
            worker = await pgqrs.consumer("pgr-worker", None, "pgr").handler(cancel_self_first).create(store)
            task = asyncio.create_task(worker.poll_forever())
            try:
                cancelled, done = await _wait_finished(store, [first, second], 30)
            finally:
                worker.stop()
                await asyncio.wait_for(task, 30)
            assert cancelled.status == "CANCELLED"
            assert (done.status, done.output_value, done.attempt) == ("SUCCESS", 2, 1)
            said = [r.getMessage() for r in caplog.records]
            assert f"run {first} stopped: " in "\n".join(said)
            assert not [m for m in said if "unexpected error" in m]

    asyncio.run(scenario())


def test_one_run_at_a_time_runs_on_the_dispatch_loops_connection(db: str) -> None:
    """At concurrency 1 the run's calls go to the connection that leased it (Poller.lend): 20 runs of one
    step drain without a pool check-out per run (before, each run took one)."""

    async def one(ctx: pgqrs.WorkflowContext, params: dict[str, int]) -> int:
        return int(await ctx.step("s", lambda: params["n"] + 1))

    async def scenario() -> None:
        async with await pgqrs.connect(db) as store:
            await store.create_workflow("pgl")
            worker, task = await _idle_worker(store, "pgl", one)
            try:
                held = worker._poller._conn
                before = store.pool.get_stats().get("requests_num", 0)
                with psycopg.connect(db, autocommit=True) as conn:
                    ids = [r[0] for r in conn.execute(
                        "select run_id from pgqrs.trigger_batch(p_workflow => 'pgl', p_inputs => %s::jsonb)",
                        (json.dumps([{"n": n} for n in range(20)]),))]
                infos = await _wait_finished(store, ids, 30)
                checkouts = store.pool.get_stats().get("requests_num", 0) - before
                kept = worker._poller._conn
            finally:
                worker.stop()
                await asyncio.wait_for(task, 30)
            assert [(i.status, i.output_value) for i in infos] == [("SUCCESS", n + 1) for n in range(20)]
            assert kept is held  # one connection all along
            # the status reads of this test take one each (20); the runs themselves none
            assert checkouts <= 20 + 2, checkouts

    asyncio.run(scenario())


def test_a_lent_connection_given_back_in_a_transaction_goes_back_to_the_pool(db: str) -> None:
    """A run that leaves the lent connection in a transaction (or mid-call, or broken) does not leave it to
    the dispatch loop: it goes back to the pool, which rolls it back, and the next call takes another. While
    a run holds the connection (its call hanging, the run given up) a dequeue takes another one, rather than
    wait for the run's."""

    async def scenario() -> None:
        async with await pgqrs.connect(db) as store:
            await store.create_workflow("pgb")
            worker = await pgqrs.consumer("pgb-worker", None, "pgb").handler(lambda ctx, p: p).create(store)
            poller = worker._poller
            async with poller.lend() as conn:
                assert poller._conn is None  # the run's
            assert poller._conn is conn  # given back idle: kept
            async with poller.lend() as conn:
                await conn.execute("begin")
                await conn.execute("create temporary table left_open (x int)")
            assert poller._conn is None
            idle = psycopg.pq.TransactionStatus.IDLE
            assert conn.info.transaction_status == idle  # the pool rolled it back
            async with poller.lend() as lent:
                messages, _ = await poller.dequeue(1)
                assert messages == [] and poller._conn is not None and poller._conn is not lent
                other = poller._conn
            assert poller._conn is other  # the loop's connection stays; the run's went back to the pool
            await poller.close()

    asyncio.run(scenario())
