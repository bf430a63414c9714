"""Programs written for pgqrs 0.15's Python workflow API, run unchanged on ours against a real database
(issue 21): the seeds' samples in that dialect (decorators taking the run handle, `store.consumer(queue)`, the
manual loop with `consumer.archive(msg.id)`), decorated workflows called directly with a run, the worker loop
`pgqrs.dequeue()...handle_workflow(f).poll(store)` with `consumer.interrupt()`, a crash simulated with a
BaseException, transient and permanent step failures, and the record listings a 0.15 program inspects."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import pgqrs
from pgqrs.decorators import step, workflow

CALLS: list[tuple[Any, ...]] = []


def scenario(db: str, body: Callable[[pgqrs.Store], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        CALLS.clear()
        store = await pgqrs.connect(db)
        try:
            await pgqrs.admin(store).install()
            return await asyncio.wait_for(body(store), 60)
        finally:
            await store.close()

    return asyncio.run(main())


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 15.0) -> Any:
    """Poll `check` until it returns something truthy (a 0.15 test's wait loop)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await check()
        if found:
            return found
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def stop(consumer: Any, task: "asyncio.Task[Any]") -> None:
    """0.15's way to end a worker: interrupt, then the poll task ends with an error."""
    await consumer.interrupt()
    with pytest.raises(pgqrs.WorkerInterrupted):
        await asyncio.wait_for(task, 5)


# ---- the seed's zip_files workflow, in 0.15's dialect ------------------------------------------------------


@workflow(name="zip_files")
async def zip_files(run: Any, params: dict[str, str]) -> dict[str, Any]:
    @step
    async def list_files(run: Any) -> list[str]:
        CALLS.append(("list_files", params["bucket"], params["prefix"]))
        return [f"{params['prefix']}a.txt", f"{params['prefix']}b.txt"]

    @step
    async def create_archive(run: Any, files: list[str]) -> str:
        CALLS.append(("create_archive", files))
        return f"/tmp/archive-{len(files)}.zip"

    files = await list_files(run)
    archive_path = await create_archive(run, files)
    return {"archive_path": archive_path, "file_count": len(files)}


def test_decorated_workflow_called_directly_with_a_run(db: str) -> None:
    async def body(store: pgqrs.Store) -> None:
        run = await pgqrs.admin(store).create_workflow("zip_files", {"bucket": "b", "prefix": "p/"})
        result = await zip_files(run, {"bucket": "b", "prefix": "p/"})
        assert result == {"archive_path": "/tmp/archive-2.zip", "file_count": 2}
        assert await pgqrs.run().message(run.id()).store(store).result() == result
        # called again: the run succeeded, its output comes back and no step body runs again
        CALLS.clear()
        again = await pgqrs.run().message(run.id()).store(store).execute()
        assert await zip_files(again, {"bucket": "b", "prefix": "p/"}) == result
        assert CALLS == []
        steps = await (await store.get_workflow_steps()).list()
        assert [(s.step_name, s.status, s.output) for s in steps if s.run_id == run.id()] == [
            ("list_files", pgqrs.WorkflowStatus.Success, ["p/a.txt", "p/b.txt"]),
            ("create_archive", pgqrs.WorkflowStatus.Success, "/tmp/archive-2.zip")]
        assert zip_files.name == "zip_files"
        with pytest.raises(TypeError, match="must be a Run"):
            await zip_files({"bucket": "b"}, {})

    scenario(db, body)


def test_decorated_step_replays_a_recorded_result(db: str) -> None:
    """A step recorded before (a crash after it) is not run again: its stored value is returned."""

    async def body(store: pgqrs.Store) -> None:
        run = await pgqrs.admin(store).create_workflow("zip_files", {"bucket": "b", "prefix": "q/"})
        await run.start()
        await run.complete_step("list_files", ["recorded.txt"])
        result = await zip_files(run, {"bucket": "b", "prefix": "q/"})
        assert result == {"archive_path": "/tmp/archive-1.zip", "file_count": 1}
        assert [c[0] for c in CALLS] == ["create_archive"]

    scenario(db, body)


def test_workflow_exception_fails_the_run(db: str) -> None:
    @workflow(name="boom")
    async def boom(run: Any, data: Any) -> None:
        raise ValueError(f"cannot handle {data}")

    async def body(store: pgqrs.Store) -> None:
        run = await pgqrs.admin(store).create_workflow("boom", 7)
        with pytest.raises(ValueError):
            await boom(run, 7)
        info = await pgqrs.run().status(run).store(store).get()
        assert (info.status, info.error) == ("ERROR", "cannot handle 7")
        with pytest.raises(pgqrs.WorkflowFailed):
            await pgqrs.run().message(run.id()).store(store).result()

    scenario(db, body)


def test_step_exception_is_a_permanent_failure(db: str) -> None:
    @workflow(name="perm")
    async def perm(run: Any, data: Any) -> None:
        @step
        async def validate(run: Any) -> None:
            raise ValueError("invalid")

        await validate(run)

    async def body(store: pgqrs.Store) -> None:
        await store.create_workflow("perm", pgqrs.StepRetryPolicy(max_attempts=5))
        run = await pgqrs.admin(store).create_workflow("perm", {})
        with pytest.raises(ValueError):
            await perm(run)  # called with the run alone: the input comes from the run
        info = await pgqrs.run().status(run).store(store).get()
        assert info.status == "ERROR"  # retries were left, but guard.fail is permanent
        [s] = await store.steps(run)
        assert (s.step_id, s.status, s.error, s.attempt) == ("validate", "ERROR", "invalid", 1)

    scenario(db, body)


def test_transient_step_failure_is_retried_from_the_queue(db: str) -> None:
    """TransientStepError(code, retry_after) is recorded as {is_transient, code, message}: the run goes back
    to the queue (QUEUED here; 0.15 said RUNNING) until its retry is due, then succeeds."""
    attempts: list[int] = []

    @workflow(name="flaky")
    async def flaky(run: Any, data: Any) -> str:
        @step
        async def api_call(run: Any) -> str:
            attempts.append(1)
            if len(attempts) == 1:
                err = pgqrs.TransientStepError("Connection timed out")
                err.code = "TIMEOUT"
                err.retry_after = 0.5
                raise err
            return "ok"

        return await api_call(run)

    async def body(store: pgqrs.Store) -> None:
        await pgqrs.workflow().name("flaky").store(store).create()
        msg = await pgqrs.workflow().name("flaky").store(store).trigger(True).execute()
        consumer = await store.consumer("flaky")
        task = asyncio.create_task(pgqrs.dequeue().worker(consumer).poll_interval(50)
                                   .handle_workflow(flaky).poll(store))

        async def errored() -> Any:
            steps = await (await store.get_workflow_steps()).list()
            return next((s for s in steps if s.step_name == "api_call"
                         and s.status == pgqrs.WorkflowStatus.Error), None)

        step_rec = await until(errored)
        assert step_rec.error == {"is_transient": True, "code": "TIMEOUT", "message": "Connection timed out"}
        assert step_rec.retry_at is not None
        assert await pgqrs.run().message(msg).store(store).result(timeout=10) == "ok"
        assert len(attempts) == 2
        runs = await (await store.get_workflow_runs()).list()
        workflow_rec = await (await store.get_workflows()).get_by_name("flaky")
        [run_rec] = [r for r in runs if r.workflow_id == workflow_rec.id]
        assert (run_rec.id, run_rec.status, run_rec.input, run_rec.output) == (msg.id, "SUCCESS", True, "ok")
        await stop(consumer, task)

    scenario(db, body)


def test_worker_loop_runs_decorated_workflows_and_interrupt_stops_it(db: str) -> None:
    """0.15's quick start: a worker task polling with handle_workflow, a trigger, result(), interrupt()."""

    async def body(store: pgqrs.Store) -> None:
        await pgqrs.workflow().name("zip_files").store(store).create()
        consumer = await store.consumer("zip_files")
        worker_task = asyncio.create_task(
            pgqrs.dequeue().worker(consumer).batch(2).handle_workflow(zip_files).poll(store))
        messages = [await pgqrs.workflow().name("zip_files").store(store)
                    .trigger({"bucket": "b", "prefix": f"{n}/"}).execute() for n in range(3)]
        results = [await pgqrs.run().message(m).store(store).result(timeout=10) for m in messages]
        assert [r["archive_path"] for r in results] == ["/tmp/archive-2.zip"] * 3
        await stop(consumer, worker_task)
        archived = await (await store.get_messages()).list_archived_by_queue(messages[0].queue_id)
        assert sorted(m.id for m in archived) == sorted(m.id for m in messages)
        assert {m.consumer_worker_id for m in archived} == {consumer.worker_id}
        assert await (await store.get_messages()).count() == 0

    scenario(db, body)


def test_crash_simulated_with_a_base_exception_then_another_worker_finishes(db: str) -> None:
    """0.15's crash recovery test: the handler raises BaseException after step1; poll() hands the run back
    and re-raises it; release_worker_messages finds nothing left; a second worker replays step1 and
    finishes."""
    crashed = {"done": False}

    @workflow(name="crash_recovery_wf")
    async def crash_recovery_wf(run: Any, input_data: dict[str, Any]) -> dict[str, Any]:
        @step
        async def step1(run: Any) -> dict[str, str]:
            CALLS.append(("step1",))
            return {"data": "from step 1"}

        await step1(run)
        if not crashed["done"]:
            crashed["done"] = True
            raise BaseException("TestCrash")

        @step
        async def step2(run: Any) -> str:
            CALLS.append(("step2",))
            return "step2_done"

        await step2(run)
        return {"done": True}

    async def body(store: pgqrs.Store) -> None:
        await pgqrs.workflow().name("crash_recovery_wf").store(store).create()
        consumer = await store.consumer("crash_recovery_wf")
        task = asyncio.create_task(
            pgqrs.dequeue().worker(consumer).handle_workflow(crash_recovery_wf).poll(store))
        msg = await pgqrs.workflow().name("crash_recovery_wf").store(store).trigger({"test": True}).execute()
        with pytest.raises(BaseException, match="TestCrash"):
            await asyncio.wait_for(task, 10)
        info = await pgqrs.run().status(msg).store(store).get()
        assert info.status == "QUEUED"  # handed back, visible at once
        assert await pgqrs.admin(store).release_worker_messages(consumer.worker_id) == 0

        consumer_2 = await store.consumer("crash_recovery_wf")
        task_2 = asyncio.create_task(
            pgqrs.dequeue().worker(consumer_2).handle_workflow(crash_recovery_wf).poll(store))
        assert await pgqrs.run().message(msg).store(store).result(timeout=10) == {"done": True}
        assert CALLS == [("step1",), ("step2",)]  # step1 ran once
        await stop(consumer_2, task_2)

    scenario(db, body)


def test_pause_inside_a_step_and_resume(db: str) -> None:
    """0.15's pause guide: run.pause() inside a step, then PausedError; the run is PAUSED until the step is
    recorded from outside and the run resumed."""

    @workflow(name="pause_wf")
    async def pause_wf(run: Any, input_data: Any) -> dict[str, Any]:
        @step
        async def approval(run: Any) -> Any:
            await run.pause("Waiting for approval", 60)
            raise pgqrs.PausedError("Waiting for approval")

        decision = await approval(run)
        return {"approved": decision}

    async def body(store: pgqrs.Store) -> None:
        await pgqrs.workflow().name("pause_wf").store(store).create()
        consumer = await store.consumer("pause_wf")
        task = asyncio.create_task(pgqrs.dequeue().worker(consumer).poll_interval(50)
                                   .handle_workflow(pause_wf).poll(store))
        msg = await pgqrs.workflow().name("pause_wf").store(store).trigger(True).execute()

        async def paused() -> Any:
            runs = await (await store.get_workflow_runs()).list()
            return next((r for r in runs if r.id == msg.id and r.status == pgqrs.WorkflowStatus.Paused), None)

        await until(paused)
        assert not task.done()  # the loop goes on
        await store.update_step(msg.id, "approval", "SUCCESS", "yes")
        await store.resume_run(msg.id)
        assert await pgqrs.run().message(msg).store(store).result(timeout=10) == {"approved": "yes"}
        await stop(consumer, task)

    scenario(db, body)


def test_seed_manual_loop_in_015_dialect(db: str) -> None:
    """The seed's manual worker loop as a 0.15 program writes it: store.consumer(queue), dequeue, run handle,
    acquire_step / guard.success, complete, and archive(msg.id) answering True to this worker."""

    async def body(store: pgqrs.Store) -> None:
        await pgqrs.workflow().name("zip_files").store(store).create()
        msg_trigger = await pgqrs.workflow().name("zip_files").store(store) \
            .trigger({"bucket": "b", "prefix": "x/"}).execute()
        consumer = await store.consumer("zip_files")
        for _ in range(20):
            messages = await pgqrs.dequeue(consumer, 1)
            if not messages:
                await asyncio.sleep(0.05)
                continue
            msg = messages[0]
            run = await pgqrs.run().message(msg).store(store).execute()
            step_res = await run.acquire_step("list_files", current_time=run.current_time)
            if step_res.status == pgqrs.StepResultStatus.Skipped:
                files = step_res.value
            elif step_res.status == pgqrs.StepResultStatus.Execute:
                files = [f"{msg.payload['prefix']}a.txt"]
                await step_res.guard.success(files)
            await run.complete({"file_count": len(files)})
            assert await consumer.archive(msg.id) is True
            break
        assert await pgqrs.run().message(msg_trigger).store(store).get() == {"file_count": 1}
        other = await store.consumer("zip_files")
        assert await other.archive(msg_trigger.id) is False  # it did not hold the run

    scenario(db, body)


def test_seed_pipeline_in_015_dialect_with_step_builder(db: str) -> None:
    """The guide's 3-step data pipeline as a 0.15 program: steps through pgqrs.step() builders, one transient
    failure (fail_transient) retried from the queue."""
    failures: list[str] = []

    async def pipeline(run: Any) -> None:
        await run.start()
        data = await pgqrs.step().run(run).name("fetch_data").execute()
        if data.status == pgqrs.StepResultStatus.Execute:
            if not failures:
                failures.append("fetch")
                await data.guard.fail_transient("TIMEOUT", "upstream slow", retry_after=0.2)
                return
            await data.guard.success([1, 2, 3])
            rows = [1, 2, 3]
        else:
            rows = data.value
        squared = await pgqrs.step().run(run).name("transform_data").execute()
        await squared.guard.success([r * r for r in rows])
        await run.success({"processed_count": len(rows)})

    async def body(store: pgqrs.Store) -> None:
        await pgqrs.workflow().name("data_pipeline").store(store).create()
        consumer = await store.consumer("data_pipeline")
        task = asyncio.create_task(pgqrs.dequeue().worker(consumer).poll_interval(50)
                                   .handle_workflow(pipeline).poll(store))
        msg = await pgqrs.workflow().name("data_pipeline").store(store).trigger({"url": "u"}).execute()
        assert await pgqrs.run().message(msg).store(store).result(timeout=10) == {"processed_count": 3}
        assert failures == ["fetch"]
        steps = {s.step_id: s for s in await store.steps(msg)}
        assert (steps["fetch_data"].status, steps["fetch_data"].attempt) == ("SUCCESS", 2)
        await stop(consumer, task)

    scenario(db, body)
