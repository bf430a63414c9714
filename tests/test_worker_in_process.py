"""The worker in-process (tests/test_worker.py has the real processes, for crashes and signals): results and
their wait, step ids (explicit, and the @step decorator's), values JSON cannot hold, and the schema version
check.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
import pytest

import pgqrs
from pgqrs import step

# ---- in-process: results, step ids, serialisation ---------------------------------------------------------


class InProcess:
    """A store plus an in-process worker for one queue."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    async def __aenter__(self) -> InProcess:
        self.store = await pgqrs.connect(self.dsn)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.store.close()

    async def drain(self, queue: str, handler: Any, run_ids: list[int]) -> list[pgqrs.RunInfo]:
        """Serve `queue` with `handler` until every run in `run_ids` is finished; their final status."""
        worker = await pgqrs.consumer(f"{queue}-worker", None, queue).handler(handler).create(self.store)
        task = asyncio.create_task(worker.poll_forever())
        try:
            infos = []
            for run_id in run_ids:
                for _ in range(600):
                    info = await pgqrs.run().status(run_id).store(self.store).get()
                    if info.status in ("SUCCESS", "ERROR"):
                        break
                    await asyncio.sleep(0.05)
                infos.append(info)
            return infos
        finally:
            worker.stop()
            await asyncio.wait_for(task, 30)


def test_result_times_out_and_raises_workflow_failed_for_an_error_run(db: str) -> None:
    async def failing(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> None:
        await ctx.step("explode", lambda: 1 / 0)

    async def scenario() -> None:
        async with InProcess(db) as env:
            store = env.store
            await store.create_workflow("results")
            handle = await pgqrs.workflow("results").trigger({}).execute(store)
            started = time.monotonic()
            with pytest.raises(pgqrs.ResultTimeout) as timeout:
                await pgqrs.run().status(handle).store(store).result(timeout=0.3)
            assert 0.3 <= time.monotonic() - started < 5
            assert isinstance(timeout.value, TimeoutError) and "QUEUED" in str(timeout.value)

            (info,) = await env.drain("results", failing, [handle])
            assert info.status == "ERROR"
            with pytest.raises(pgqrs.WorkflowFailed) as failed:
                await pgqrs.run().status(handle).store(store).result(timeout=5)
            assert failed.value.run_id == handle
            assert failed.value.error["type"] == "ZeroDivisionError"
            (explode,) = await store.steps(handle)
            assert (explode.step_id, explode.status) == ("explode", "ERROR")  # a sync body, run in a thread

    asyncio.run(scenario())


def test_result_wakes_on_the_notification(db: str) -> None:
    async def quick(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> dict[str, int]:
        return {"n": await ctx.step("one", lambda: 1)}

    async def scenario() -> None:
        async with InProcess(db) as env:
            await env.store.create_workflow("quick")
            handle = await pgqrs.workflow("quick").trigger({}).execute(env.store)
            waiter = asyncio.create_task(pgqrs.run().status(handle).store(env.store).result(timeout=30))
            await asyncio.sleep(0.2)
            assert not waiter.done()
            await env.drain("quick", quick, [handle])
            assert await asyncio.wait_for(waiter, 2) == {"n": 1}  # not the 5 s safety-net re-check

    asyncio.run(scenario())


def test_the_same_explicit_step_id_twice_is_an_error(db: str) -> None:
    seen: list[str] = []

    async def twice(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> None:
        await ctx.step("fetch", lambda: seen.append("first") or 1)
        try:
            await ctx.step("fetch", lambda: seen.append("second") or 2)
        except pgqrs.DuplicateStepId as exc:
            seen.append(str(exc))
            raise

    async def scenario() -> None:
        async with InProcess(db) as env:
            await env.store.create_workflow("dup")
            handle = await pgqrs.workflow("dup").trigger({}).execute(env.store)
            (info,) = await env.drain("dup", twice, [handle])
            assert info.status == "ERROR" and info.error["type"] == "DuplicateStepId"
            assert [(s.step_id, s.status, s.value) for s in await env.store.steps(handle)] == [
                ("fetch", "SUCCESS", 1)
            ]

    asyncio.run(scenario())
    assert seen[0] == "first" and len(seen) == 2 and "'fetch'" in seen[1] and "twice" in seen[1]


def test_a_result_json_cannot_hold_is_not_serialisable_names_the_step_and_stores_nothing(db: str) -> None:
    caught: list[pgqrs.NotSerializable] = []

    async def returns_a_set(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> None:
        await ctx.step("fine", lambda: {"ok": True})
        try:
            await ctx.step("bad_value", lambda: {"tags": {"a", "b"}})
        except pgqrs.NotSerializable as exc:
            caught.append(exc)
            raise

    async def scenario() -> None:
        async with InProcess(db) as env:
            await env.store.create_workflow("unserialisable")
            handle = await pgqrs.workflow("unserialisable").trigger({}).execute(env.store)
            (info,) = await env.drain("unserialisable", returns_a_set, [handle])
            assert info.status == "ERROR" and info.error["type"] == "NotSerializable"
            assert [s.step_id for s in await env.store.steps(handle)] == ["fine"]  # no row for bad_value
            # the same check guards inputs: nothing is sent
            with pytest.raises(pgqrs.NotSerializable):
                await pgqrs.workflow("unserialisable").trigger({"when": object()}).execute(env.store)

    asyncio.run(scenario())
    (exc,) = caught
    assert isinstance(exc, pgqrs.PgqrsError) and isinstance(exc, TypeError)
    assert "'bad_value'" in str(exc) and "set" in str(exc)


@step
async def fetch_page(n: int) -> dict[str, int]:
    return {"page": n}


@step(name="tidy")
def cleanup() -> str:
    return "clean"


def test_step_decorator_ids_are_the_name_then_name_hash_n(db: str) -> None:
    async def pages(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> list[Any]:
        out = [await fetch_page(1), await fetch_page(2), await fetch_page(3)]
        out.append(await cleanup())
        out.append(await ctx.step("fetch_page#5", lambda: "explicit"))  # an explicit id in the same space
        out.append(await fetch_page(4))
        return out

    async def scenario() -> None:
        async with InProcess(db) as env:
            await env.store.create_workflow("pages")
            handle = await pgqrs.workflow("pages").trigger({}).execute(env.store)
            (info,) = await env.drain("pages", pages, [handle])
            assert info.status == "SUCCESS", info.error
            assert info.output() == [{"page": 1}, {"page": 2}, {"page": 3}, "clean", "explicit", {"page": 4}]
            assert [s.step_id for s in await env.store.steps(handle)] == [
                "fetch_page",
                "fetch_page#2",
                "fetch_page#3",
                "tidy",
                "fetch_page#5",
                "fetch_page#4",
            ]

    asyncio.run(scenario())
    with pytest.raises(RuntimeError, match="outside a running workflow"):
        asyncio.run(fetch_page(1))


def test_a_worker_refuses_a_database_with_another_schema_version(db: str) -> None:
    """A worker built for one schema version takes no work from another: its calls would fail every run."""
    from pgqrs.install import SchemaMismatch

    async def scenario() -> None:
        store = await pgqrs.connect(db)
        try:
            await store.create_workflow("versioned")
            with psycopg.connect(db, autocommit=True) as conn:
                conn.execute("insert into pgqrs.schema_version (version) values (999)")
            with pytest.raises(SchemaMismatch, match="999"):
                await pgqrs.consumer("w-version", None, "versioned").create(store)
        finally:
            await store.close()

    asyncio.run(scenario())
