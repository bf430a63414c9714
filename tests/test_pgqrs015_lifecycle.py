"""pgqrs 0.15's lifecycle of a run driven by hand, against a real database (issue 21): Config / connect_with /
admin, admin.create_workflow(name, input) -> a run handle, start / acquire_step / complete_step / success /
fail / pause, run.id(), current_time as an ISO text, trigger results as messages, run().message(m).get(), run
inputs of any JSON value, and the lease start() takes (pgqrs.lease_run), fenced like every other lease."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import pytest

import pgqrs


def scenario(db: str, body: Callable[[pgqrs.Store], Awaitable[Any]]) -> Any:
    """Run body(store) on a Store of 0.15's making (Config + connect_with) after admin.install()."""

    async def main() -> Any:
        store = await pgqrs.connect_with(pgqrs.Config(db, max_connections=4))
        try:
            admin = pgqrs.admin(store)
            await admin.install()
            await admin.verify()
            return await body(store)
        finally:
            await store.close()

    return asyncio.run(main())


def test_create_workflow_run_driven_by_hand_to_success(db: str) -> None:
    async def body(store: pgqrs.Store) -> None:
        run = await pgqrs.admin(store).create_workflow("by_hand", {"n": 2})
        assert run.id() == run.id == run.run_id > 0  # 0.15's method and our property, one value
        info = await pgqrs.run().status(run.id()).store(store).get()
        assert info.status == pgqrs.WorkflowStatus.Queued == "QUEUED"

        await run.start()
        step = await run.acquire_step("double", current_time="2000-01-01T00:00:00Z")  # an ISO text
        assert step.status == pgqrs.StepResultStatus.Execute == "EXECUTE"
        await step.guard.success(4)
        again = await pgqrs.step().run(run).name("double").execute()  # 0.15's step builder
        assert again.status == pgqrs.StepResultStatus.Skipped and again.value == 4
        await run.complete_step("recorded", {"by": "hand"})
        await run.success({"result": 4})

        assert await pgqrs.run().message(run.id()).store(store).result() == {"result": 4}
        info = await pgqrs.run().status(run).store(store).get()
        assert info.status == pgqrs.WorkflowStatus.Success
        assert [(s.step_id, s.status) for s in await store.steps(run)] == [
            ("double", "SUCCESS"), ("recorded", "SUCCESS")]

    scenario(db, body)


def test_fail_ends_the_run_error_with_the_message(db: str) -> None:
    async def body(store: pgqrs.Store) -> None:
        run = await pgqrs.admin(store).create_workflow("failing", None)
        await run.start()
        await run.fail("bad input")
        info = await pgqrs.run().status(run).store(store).get()
        assert (info.status, info.error) == ("ERROR", "bad input")
        again = await pgqrs.run().message(run.id()).store(store).execute()
        with pytest.raises(pgqrs.StateTransitionError):  # terminal: no second start
            await again.start()

    scenario(db, body)


def test_pause_at_the_step_in_progress_then_resume(db: str) -> None:
    async def body(store: pgqrs.Store) -> None:
        run = await pgqrs.admin(store).create_workflow("approval", {"who": "ann"})
        await run.start()
        with pytest.raises(pgqrs.StateTransitionError, match="no step in progress"):
            await run.pause("waiting for approval", 60)
        step = await run.acquire_step("approve")
        assert step.status == "EXECUTE"
        assert await run.pause("waiting for approval", 60) == "PAUSED"
        info = await pgqrs.run().status(run).store(store).get()
        assert (info.status, info.current_step) == ("PAUSED", "approve")
        with pytest.raises(pgqrs.LeaseLost):  # the pause released the lease
            await run.complete_step("approve", True)

        await store.update_step(run.id(), "approve", "SUCCESS", {"approved": True})
        await store.resume_run(run.id())
        later = await pgqrs.run().message(run.id()).store(store).execute()
        await later.start()
        replay = await later.acquire_step("approve")
        assert (replay.status, replay.value) == ("SKIPPED", {"approved": True})
        await later.success("done")
        assert await pgqrs.run().message(run.id()).store(store).get() == "done"

    scenario(db, body)


def test_trigger_result_is_a_message_and_get_is_none_until_finished(db: str) -> None:
    async def body(store: pgqrs.Store) -> None:
        await pgqrs.workflow().name("msgs").store(store).create()
        msg = await pgqrs.workflow().name("msgs").store(store).trigger([1, 2, 3]).execute()
        assert msg.id == int(msg) > 0 and msg.payload == [1, 2, 3] and msg.queue_id == "msgs"
        assert await pgqrs.run().message(msg).store(store).get() is None  # not finished yet
        run = await pgqrs.run().message(msg).store(store).execute()
        assert run.id() == msg.id
        await run.start()
        assert run.message.input == [1, 2, 3]  # the input as given: an array
        assert await pgqrs.run().message(msg).store(store).get() is None  # running
        await run.success(sum(run.message.input))
        assert await pgqrs.run().message(msg).store(store).get() == 6
        archived = await (await store.get_messages()).list_archived_by_queue(msg.queue_id)
        assert [(m.id, m.payload) for m in archived] == [(msg.id, [1, 2, 3])]

    scenario(db, body)


@pytest.mark.parametrize("value", [[1, "a"], 42, "text", True, 2.5, {"k": [None]}])
def test_run_inputs_may_be_any_json_value(db: str, value: Any) -> None:
    async def body(store: pgqrs.Store) -> None:
        run = await pgqrs.admin(store).create_workflow("any_input", value)
        await run.start()
        assert run.message.input == value
        info = await pgqrs.run().status(run).store(store).get()
        assert info.input == value

    scenario(db, body)


def test_start_is_fenced_like_any_lease(db: str) -> None:
    """Two handles of one run: the second start() is refused while the first holds the lease; once that
    lease expires the second takes the run, and the first's writes are fenced (LeaseLost)."""

    async def body(store: pgqrs.Store) -> None:
        first = await pgqrs.admin(store).create_workflow("fenced", {})
        second = await pgqrs.run().message(first.id()).store(store).execute()
        await first.start(visibility=0.5)
        with pytest.raises(pgqrs.StateTransitionError, match="leased until"):
            await second.start()
        await asyncio.sleep(0.6)
        await second.start()
        with pytest.raises(pgqrs.LeaseLost):
            await first.acquire_step("a")
        assert (await second.acquire_step("a")).status == "EXECUTE"
        await second.success(1)
        with pytest.raises(pgqrs.StateTransitionError):
            await first.success(2)
        assert await pgqrs.run().message(first.id()).store(store).result() == 1

    scenario(db, body)


def test_a_handle_not_started_writes_nothing(db: str) -> None:
    async def body(store: pgqrs.Store) -> None:
        run = await pgqrs.admin(store).create_workflow("unstarted", {})
        with pytest.raises(pgqrs.LeaseLost):
            await run.acquire_step("a")
        with pytest.raises(pgqrs.LeaseLost):
            await run.success(1)
        assert (await pgqrs.run().status(run).store(store).get()).status == "QUEUED"
        assert await store.steps(run) == []

    scenario(db, body)


def test_config_refuses_another_schema(db: str) -> None:
    with pytest.raises(pgqrs.ConfigError, match="schema 'tenant_a'"):
        pgqrs.Config(db, schema="tenant_a")
    config = pgqrs.Config.from_dsn(db)
    assert config.schema == "pgqrs"
    with pytest.raises(pgqrs.ConfigError):
        config.schema = "public"
    assert pgqrs.Config(db, schema="pgqrs").schema == "pgqrs"


def test_release_worker_messages_makes_a_gone_workers_runs_deliverable(db: str) -> None:
    async def body(store: pgqrs.Store) -> None:
        await pgqrs.workflow().name("gone").store(store).create()
        msg = await pgqrs.workflow().name("gone").store(store).trigger({"x": 1}).execute()
        gone = await store.consumer("gone")
        held = await gone.dequeue(1)
        assert [m.id for m in held] == [msg.id]
        other = await store.consumer("gone")
        assert await other.dequeue(1) == []  # leased for 30 s
        assert await pgqrs.admin(store).release_worker_messages(gone.worker_id) == 1
        again = await other.dequeue(1)
        assert [m.id for m in again] == [msg.id]
        stale = await pgqrs.run().message(held[0]).store(store).execute()
        with pytest.raises(pgqrs.LeaseLost):
            await stale.success("late")
        with pytest.raises(pgqrs.WorkerNotFoundError):
            await pgqrs.admin(store).release_worker_messages(-1)

    scenario(db, body)


def test_verify_refuses_another_schema_version(db: str) -> None:
    async def body(store: pgqrs.Store) -> None:
        await pgqrs.admin(store).verify()
        async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
            await conn.execute("update pgqrs.schema_version set version = version - 1")
        with pytest.raises(pgqrs.PgqrsError, match="schema version"):
            await pgqrs.admin(store).verify()

    scenario(db, body)


def test_start_of_a_handle_that_holds_its_lease_changes_nothing(db: str) -> None:
    """A dequeued run's handle (and a handle started twice) keeps its lease: start() gives it back as is."""

    async def body(store: pgqrs.Store) -> None:
        await pgqrs.workflow().name("held").store(store).create()
        msg = await pgqrs.workflow().name("held").store(store).trigger({}).execute()
        consumer = await store.consumer("held")
        [leased] = await consumer.dequeue(1)
        run = await pgqrs.run().message(leased).store(store).execute()
        await run.start()
        await run.start()
        assert (run.lease_token, run.message.fencing_token) == (leased.lease_token, leased.fencing_token)
        await run.success("ok")
        assert await consumer.archive(msg.id) is True

    scenario(db, body)
