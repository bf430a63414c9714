"""Edges of the step protocol found in review: errors from the user's own database, results recorded from
outside while the body runs, and update_step racing a worker's step write."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import psycopg
import pytest

import pgqrs


async def _with_worker(db: str, workflow: str, handler: Any, body: Any, **policy: Any) -> Any:
    """Run `body(store)` while a worker of `workflow` (handler) polls in the background."""
    store = await pgqrs.connect(db)
    try:
        await store.create_workflow(workflow, policy or None)
        builder = pgqrs.consumer(f"w-{workflow}", None, workflow).handler(handler).visibility(5)
        worker = await builder.create(store)
        polling = asyncio.create_task(worker.poll_forever())
        try:
            return await body(store)
        finally:
            worker.stop()
            await polling
    finally:
        await store.close()


def test_an_error_from_the_users_own_database_is_a_bounded_transient_failure(db: str) -> None:
    """psycopg.OperationalError raised by a step body (the user's database is down) is recorded as a
    transient step failure and retried under the policy, then dead-letters the run: never an endless silent
    redelivery."""
    calls = 0

    async def handler(ctx: Any, params: Any) -> Any:
        def query_elsewhere() -> None:
            nonlocal calls
            calls += 1
            psycopg.connect("host=/nonexistent-pgqrs-test dbname=x connect_timeout=1")

        return await ctx.step("query", query_elsewhere)

    async def body(store: pgqrs.Store) -> pgqrs.RunInfo:
        handle = await pgqrs.workflow("user_db").trigger({}).execute(store)
        with pytest.raises(pgqrs.WorkflowFailed):
            await pgqrs.run().status(handle).store(store).result(timeout=30)
        return await pgqrs.run().status(handle).store(store).get()

    policy = {"max_attempts": 2, "backoff": "fixed", "base_seconds": 0.1, "jitter": 0}
    info = asyncio.run(_with_worker(db, "user_db", handler, body, **policy))
    assert info.status == "ERROR"
    assert info.error["type"] == "OperationalError"
    assert calls == 2  # two attempts, as the policy says
    with psycopg.connect(db) as conn:
        row = conn.execute("select status, attempt from pgqrs.steps where run_id = %s", (info.run_id,))
        assert row.fetchone() == ("ERROR", 2)


def test_a_result_recorded_from_outside_while_the_body_runs_wins(db: str) -> None:
    """update_step records the step while the worker still runs its body: the worker takes the recorded value
    (a success is final) and the run succeeds, instead of failing with a step conflict."""
    started = asyncio.Event()
    release = asyncio.Event()

    async def handler(ctx: Any, params: Any) -> Any:
        async def slow() -> str:
            started.set()
            await release.wait()
            return "from-the-body"

        return {"approval": await ctx.step("approval", slow)}

    async def body(store: pgqrs.Store) -> Any:
        handle = await pgqrs.workflow("outside").trigger({}).execute(store)
        await asyncio.wait_for(started.wait(), 20)
        await store.update_step(handle, "approval", pgqrs.StepStatus.SUCCESS, "from-the-webhook")
        release.set()
        return await pgqrs.run().status(handle).store(store).result(timeout=20)

    assert asyncio.run(_with_worker(db, "outside", handler, body)) == {"approval": "from-the-webhook"}


def test_update_step_and_a_workers_step_write_do_not_deadlock(db: str, conn: psycopg.Connection[Any]) -> None:
    """update_step holds the run's lock (here: a transaction that recorded another step) when a worker's
    complete_step inserts step s, whose foreign-key check needs the run's key; then update_step records s too.
    With a key-blocking run lock the two wait for each other (40P01); the engine's lock lets complete_step go
    first, and update_step then meets a recorded success with another value (QR005)."""
    conn.execute("select pgqrs.create_workflow('dl')")
    worker = conn.execute("select pgqrs.register_worker('w-dl', 'h', null, 'dl')").fetchone()[0]
    conn.execute("select pgqrs.trigger('dl', '{}')")
    lease = conn.execute("select run_id, lease_token from pgqrs.dequeue('dl', %s)", (worker,)).fetchone()
    run_id, token = lease
    outcome: dict[str, Any] = {}

    def complete() -> None:
        with psycopg.connect(db, autocommit=True) as c:
            c.execute("select pgqrs.complete_step(%s, 's', %s, '\"worker\"')", (run_id, token))
            outcome["worker"] = "recorded"

    with psycopg.connect(db) as outside:
        outside.execute("set lock_timeout = '10s'")
        outside.execute("select pgqrs.update_step(%s, 'other', 'SUCCESS', '1')", (run_id,))  # holds the run
        thread = threading.Thread(target=complete)
        thread.start()
        thread.join(20)
        assert outcome.get("worker") == "recorded", "complete_step waited on update_step's run lock"
        with pytest.raises(pgqrs.StepConflict):
            with pgqrs.errors.mapped_errors():
                outside.execute("select pgqrs.update_step(%s, 's', 'SUCCESS', '\"outside\"')", (run_id,))
    row = conn.execute("select status, value from pgqrs.steps where run_id = %s and step_id = 's'", (run_id,))
    assert row.fetchone() == ("SUCCESS", "worker")
