"""Every Python sample of the two seed documents, each as its own test, run as written on a fresh install.

The samples are copied from ../shared/seeds/ with three edits only, each marked `# edited:`:
  - the DSN literal "postgresql://localhost/mydb" becomes `DSN` (this test's database);
  - the manual consumer's `while True:` runs a bounded number of times;
  - the guide's `retry_after=30` becomes `retry_after=1`, so the test waits one second, not thirty.
The user's helpers (s3, download_all, zip, fetch_from_api, is_transient, transform_logic, save_to_db,
send_email, process) are fakes that record their calls in CALLS (tests/seed_fakes.py, with the harness).
The guide's approval workflow is Rust there; it is translated to the Python API here (the guide's `main` is
`guide_main`: the Workflows API has one too).
"""

import ast
import asyncio
import dataclasses
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

import pgqrs
from pgqrs import Step, StepStatus, TransientError, connect, run, step, workflow  # noqa: F401 (seed imports)
from seed_fakes import (
    CALLS,
    FlakyNetwork,
    calls,
    download_all,
    is_transient,
    process,
    queued_ids,
    s3,
    save_to_db,
    send_email,
    transform_logic,
    wait_status,
    worker_running,
    zip,
)

DSN = ""  # this test's database: set by the `dsn` fixture


@pytest.fixture(autouse=True)
def dsn(db: str) -> Iterator[str]:
    globals()["DSN"] = db
    CALLS.clear()
    yield db
    globals()["DSN"] = ""


# ---- the user's helpers that read this test's database (the others: tests/seed_fakes.py) -------------------


async def db_clock() -> datetime:
    """The database's clock at the moment of the call (not the client's)."""
    async with await psycopg.AsyncConnection.connect(DSN) as c:
        row = await (await c.execute("select clock_timestamp()")).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


FETCH_FAILURES = {"count": 0}  # how many fetches fail with a transient error before one succeeds


async def fetch_from_api(url: str) -> list[dict[str, int]]:
    CALLS.append(("fetch_from_api", url, await db_clock()))
    if FETCH_FAILURES["count"] > 0:
        FETCH_FAILURES["count"] -= 1
        raise FlakyNetwork("connection reset by peer")
    if url.endswith("/bad"):
        raise ValueError(f"no such dataset: {url}")
    return [{"n": 1}, {"n": 2}, {"n": 3}, {"n": 4}]


# ---- Workflows API: defining workflows ---------------------------------------------------------------------


@dataclass
class ZipParams:
    bucket: str
    prefix: str


@dataclass
class ZipResult:
    archive_path: str
    file_count: int


# Workflow handler
@workflow(name="zip_files")
async def zip_files_handler(ctx, params: ZipParams) -> ZipResult:
    # Step 1: List files
    files = await ctx.step("list_files", lambda: s3.list_objects(params.bucket, params.prefix))

    # Step 2: Download
    local_files = await ctx.step("download_files", lambda: download_all(files))

    # Step 3: Create archive
    archive_path = await ctx.step("create_archive", lambda: zip.create(local_files))

    return ZipResult(archive_path=archive_path, file_count=len(files))


# ---- Workflows API: worker registration (the manual consumer loop) ----------------------------------------

LOOPS = 4  # edited: how many times the seed's `while True:` body runs


async def main():
    store = await pgqrs.connect(DSN)  # edited: DSN

    # Setup (idempotent)
    await pgqrs.workflow().name("zip_files").store(store).create()

    # Register worker for the workflow queue
    consumer = await pgqrs.consumer("worker-1", 8080, "zip_files").create(store)

    for _ in range(LOOPS):  # edited: was `while True:`
        messages = await consumer.dequeue(batch_size=1)
        if not messages:
            continue

        msg = messages[0]
        run = await pgqrs.run().message(msg).store(store).execute()

        step = await run.acquire_step("list_files", current_time=run.current_time)  # noqa: F811
        if step.status == "SKIPPED":
            files = step.value
        elif step.status == "EXECUTE":
            files = await s3.list_objects(msg.payload["bucket"], msg.payload["prefix"])
            await step.guard.success(files)

        step = await run.acquire_step("create_archive", current_time=run.current_time)
        if step.status == "SKIPPED":
            archive_path = step.value
        elif step.status == "EXECUTE":
            archive_path = await zip.create(files)
            await step.guard.success(archive_path)

        await run.complete({"archive_path": archive_path, "file_count": len(files)})
        await consumer.archive(msg.id)


# ---- Workflows API: triggering -----------------------------------------------------------------------------


async def handle_upload(bucket: str, prefix: str):
    store = await connect(DSN)  # edited: DSN

    message = await pgqrs.workflow() \
        .name("zip_files") \
        .store(store) \
        .trigger(ZipParams(bucket=bucket, prefix=prefix)) \
        .execute()

    print(f"Queued message: {message.id}")


# ---- Workflows API: checking status & results --------------------------------------------------------------


async def check_status(message, store):
    run_info = await run() \
        .status(message) \
        .store(store) \
        .get()

    if run_info.status == "SUCCESS":
        print(f"Done: {run_info.output()}")
    elif run_info.status == "ERROR":
        print(f"Failed: {run_info.error}")
    else:
        print(f"Status: {run_info.status}")


async def wait_for_result(message, store):
    # Blocking wait
    result = await run() \
        .status(message) \
        .store(store) \
        .result()
    return result


# ---- Durable Workflows Guide: the data pipeline ------------------------------------------------------------


# The workflow handler
async def data_pipeline_handler(ctx, params):
    print(f"[workflow] Starting pipeline for {params['url']}")

    # Step 1: Fetch data
    async def fetch():
        try:
            return await fetch_from_api(params['url'])
        except Exception as e:
            if is_transient(e):
                # Retry in 30 seconds
                raise TransientError(retry_after=1)  # noqa: B904  # edited: was retry_after=30
            raise e

    data = await ctx.step("fetch_data", fetch)

    # Step 2: Transform data
    async def transform():
        print(f"[transform_data] Processing {len(data)} records")
        return transform_logic(data)

    transformed = await ctx.step("transform_data", transform)

    # Step 3: Save results
    async def save():
        print(f"[save_results] Saving {len(transformed)} records")
        await save_to_db(transformed)

    await ctx.step("save_results", save)

    return {"processed_count": len(transformed)}


async def guide_main():  # the guide's `async def main()` (renamed: the Workflows API has a main too)
    store = await pgqrs.connect(DSN)  # edited: DSN

    # Setup workflow definition
    await store.create_workflow("data_pipeline")

    # Register worker
    worker = await pgqrs.consumer("worker-1", 8080, "data_pipeline") \
        .handler(data_pipeline_handler) \
        .create(store)

    print("Worker started. Waiting for runs...")
    await worker.poll_forever()


async def handle_request(url):
    store = await pgqrs.connect(DSN)  # edited: DSN

    run_id = await pgqrs.workflow("data_pipeline") \
        .trigger({"url": url}) \
        .execute(store)

    return run_id


# ---- Durable Workflows Guide: pausing for an external event (the guide's Rust, in Python) ------------------

PAUSE_FOR: Any = 3600  # seconds or a timedelta, as Step.pause accepts both


async def approval_workflow(ctx, params):
    # Step 1: Send approval request
    await ctx.step("send_request", lambda: send_email(params["approver"]))

    # Step 2: Pause until approval received
    async def wait_for_approval():
        # This will pause the run and release the worker
        raise Step.pause(PAUSE_FOR)

    approval_data = await ctx.step("wait_for_approval", wait_for_approval)

    # Step 3: Process approval
    await ctx.step("process_approval", lambda: process(approval_data))


# ---- the tests ---------------------------------------------------------------------------------------------


def test_zip_files_handler_runs_in_a_worker_with_dataclass_params_and_result() -> None:
    async def scenario() -> None:
        async with await pgqrs.connect(DSN) as store:
            await pgqrs.workflow().name("zip_files").store(store).create()
            handle = await pgqrs.workflow().name("zip_files").store(store) \
                .trigger(ZipParams(bucket="photos", prefix="2024/")).execute()
            async with worker_running(store, "worker-1", "zip_files", zip_files_handler):
                result = await asyncio.wait_for(wait_for_result(handle, store), 30)
            assert result == {"archive_path": "/tmp/archive-3.zip", "file_count": 3}
            info = await run().status(handle).store(store).get()
            assert info.status == "SUCCESS"
            assert info.input == {"bucket": "photos", "prefix": "2024/"}
            assert info.output(ZipResult) == ZipResult(archive_path="/tmp/archive-3.zip", file_count=3)
            assert [(s.step_id, s.status) for s in await store.steps(handle)] == [
                ("list_files", "SUCCESS"), ("download_files", "SUCCESS"), ("create_archive", "SUCCESS")]

    asyncio.run(scenario())
    assert [c[0] for c in CALLS] == ["list_objects", "download_all", "zip.create"]
    assert CALLS[0] == ("list_objects", "photos", "2024/")  # params arrived as a ZipParams (attribute access)


def test_manual_consumer_loop_processes_queued_runs(capsys: pytest.CaptureFixture[str]) -> None:
    async def scenario() -> None:
        async with await pgqrs.connect(DSN) as store:
            await pgqrs.workflow().name("zip_files").store(store).create()
            await handle_upload("b1", "x/")
            await handle_upload("b2", "y/")
            first, second = queued_ids(capsys)
            await main()  # LOOPS = 4 iterations: two runs, then two empty dequeues
            for run_id, prefix in ((first, "x/"), (second, "y/")):
                info = await run().status(run_id).store(store).get()
                assert info.status == "SUCCESS"
                assert info.output() == {"archive_path": "/tmp/archive-3.zip", "file_count": 3}
                steps = {s.step_id: s for s in await store.steps(run_id)}
                assert steps["list_files"].value == [f"{prefix}a.txt", f"{prefix}b.txt", f"{prefix}c.txt"]
                assert steps["create_archive"].status == "SUCCESS"
            # archiving after run.complete is a no-op, and the message is in the archive as a success
            async with store.pool.connection() as c:
                cur = await c.execute("select message_id, outcome from pgqrs.messages_archive order by 1")
                assert await cur.fetchall() == [(first, "SUCCESS"), (second, "SUCCESS")]

    asyncio.run(scenario())
    assert len(calls("list_objects")) == 2 and len(calls("zip.create")) == 2


def test_manual_consumer_replay_skips_the_recorded_step(capsys: pytest.CaptureFixture[str]) -> None:
    """A first delivery records list_files and 'dies'; after its lease expires the seed's loop SKIPs it."""

    async def scenario() -> None:
        async with await pgqrs.connect(DSN) as store:
            await pgqrs.workflow().name("zip_files").store(store).create()
            await handle_upload("bucket", "q/")
            (run_id,) = queued_ids(capsys)
            consumer = await pgqrs.consumer("worker-1", 8080, "zip_files").create(store)
            (msg,) = await consumer.dequeue(batch_size=1, visibility=1)
            crashed = await pgqrs.run().message(msg).store(store).execute()
            step = await crashed.acquire_step("list_files", current_time=crashed.current_time)
            assert step.status == "EXECUTE"
            await step.guard.success(await s3.list_objects(msg.payload["bucket"], msg.payload["prefix"]))
            # ... the worker dies here. Nothing but its 1 s lease running out hands the run on.
            await asyncio.sleep(1.2)
            with pytest.raises(pgqrs.LeaseLost):  # the dead worker is fenced off
                await crashed.acquire_step("create_archive", current_time=crashed.current_time)
            await main()  # the seed's loop: list_files SKIPPED (from the journal), create_archive EXECUTE
            info = await run().status(run_id).store(store).get()
            assert info.status == "SUCCESS" and info.attempt == 2
            assert info.output() == {"archive_path": "/tmp/archive-3.zip", "file_count": 3}
            with pytest.raises(pgqrs.InvalidState):  # and a finished run takes no more writes
                await crashed.complete({"late": True})

    asyncio.run(scenario())
    assert len(calls("list_objects")) == 1  # executed once, replayed after
    assert calls("zip.create") == [("zip.create", ["q/a.txt", "q/b.txt", "q/c.txt"])]


def test_trigger_with_the_builder_and_a_dataclass_prints_the_message_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def scenario() -> None:
        async with await pgqrs.connect(DSN) as store:
            await pgqrs.workflow().name("zip_files").store(store).create()
            await handle_upload("uploads", "2024/07/")
            (message_id,) = queued_ids(capsys)
            info = await run().status(message_id).store(store).get()
            assert (info.run_id, info.status, info.workflow) == (message_id, "QUEUED", "zip_files")
            assert info.input == {"bucket": "uploads", "prefix": "2024/07/"}

    asyncio.run(scenario())


def test_trigger_with_the_named_builder_returns_the_run_id() -> None:
    async def scenario() -> None:
        async with await pgqrs.connect(DSN) as store:
            await store.create_workflow("data_pipeline")
            run_id = await handle_request("https://example.test/data")
            assert run_id.id == int(run_id) == run_id.run_id  # the handle: message id = run id
            info = await run().status(run_id).store(store).get()
            assert (info.run_id, info.status, info.input) == (run_id, "QUEUED", {"url": "https://example.test/data"})
            again = await handle_request("https://example.test/data")
            assert again != run_id  # no idempotency key: a second run

    asyncio.run(scenario())


def test_check_status_and_wait_for_result(capsys: pytest.CaptureFixture[str]) -> None:
    async def scenario() -> None:
        async with await pgqrs.connect(DSN) as store:
            await pgqrs.workflow().name("zip_files").store(store).create()
            message = await pgqrs.workflow().name("zip_files").store(store) \
                .trigger(ZipParams(bucket="b", prefix="p/")).execute()
            await check_status(message, store)
            assert capsys.readouterr().out == "Status: QUEUED\n"

            async with worker_running(store, "worker-1", "zip_files", zip_files_handler):
                result = await asyncio.wait_for(wait_for_result(message, store), 30)
            assert result == {"archive_path": "/tmp/archive-3.zip", "file_count": 3}
            await check_status(message, store)
            out = capsys.readouterr().out
            assert out.startswith("Done: ")  # jsonb keeps its own key order: compare the value
            assert ast.literal_eval(out[6:]) == {"archive_path": "/tmp/archive-3.zip", "file_count": 3}

            # an ERROR run: a permanent error (no such dataset) in the guide's pipeline
            await store.create_workflow("data_pipeline")
            bad = await pgqrs.workflow("data_pipeline").trigger({"url": "https://example.test/bad"}).execute(store)
            async with worker_running(store, "worker-2", "data_pipeline", data_pipeline_handler):
                with pytest.raises(pgqrs.WorkflowFailed) as failed:
                    await asyncio.wait_for(wait_for_result(bad, store), 30)
            assert failed.value.error["type"] == "ValueError"
            capsys.readouterr()
            await check_status(bad, store)
            out = capsys.readouterr().out
            assert out.startswith("Failed: {") and "no such dataset" in out

            # every form stands for the run: the handle, the message of a dequeue, the id, a status object
            for target in (message, int(message), await run().status(message).store(store).get()):
                assert (await run().status(target).store(store).get()).run_id == message.id

    asyncio.run(scenario())


def test_data_pipeline_worker_retries_a_transient_error_after_retry_after(
    capsys: pytest.CaptureFixture[str],
) -> None:
    FETCH_FAILURES["count"] = 1

    async def scenario() -> None:
        async with await pgqrs.connect(DSN) as store:
            worker = asyncio.create_task(guide_main())
            for _ in range(200):  # the guide's main creates the workflow, then polls
                await asyncio.sleep(0.05)
                if "Worker started" in capsys.readouterr().out:
                    break
            run_id = await handle_request("https://example.test/data")
            info = await asyncio.wait_for(wait_status(store, run_id, "SUCCESS", timeout=30), 35)
            assert info.output() == {"processed_count": 4}
            assert info.attempt == 2  # delivered twice: the retry continued the same run
            steps = {s.step_id: s for s in await store.steps(run_id)}
            assert {k: (s.status, s.attempt) for k, s in steps.items()} == {
                "fetch_data": ("SUCCESS", 2),
                "transform_data": ("SUCCESS", 1),
                "save_results": ("SUCCESS", 1),
            }
            assert steps["save_results"].value is None  # save() returns nothing: null is a result too
            # SIGTERM stops the guide's poll_forever gracefully; main returns
            signal.raise_signal(signal.SIGTERM)
            await asyncio.wait_for(worker, 30)

    asyncio.run(scenario())
    first, second = calls("fetch_from_api")
    assert second[2] - first[2] >= timedelta(seconds=1)  # the database's clock, not ours
    assert len(calls("transform_logic")) == 1 and len(calls("save_to_db")) == 1


@pytest.mark.parametrize("status", [StepStatus.SUCCESS, "SUCCESS"], ids=["StepStatus", "plain-string"])
@pytest.mark.parametrize("pause_for", [3600, timedelta(hours=1)], ids=["seconds", "timedelta"])
def test_approval_workflow_pauses_and_resumes_with_update_step(status: Any, pause_for: Any) -> None:
    globals()["PAUSE_FOR"] = pause_for
    approval_data = {"approved": True, "by": "alice", "comment": "ship it"}

    async def scenario() -> None:
        async with await pgqrs.connect(DSN) as store:
            await store.create_workflow("approval")
            params = {"approver": "alice@example.test"}
            run_id = await pgqrs.workflow("approval").trigger(params).execute(store)
            async with worker_running(store, "approver-worker", "approval", approval_workflow):
                await wait_status(store, run_id, "PAUSED")
                async with store.pool.connection() as c:
                    cur = await c.execute("select step_id, paused_until - pgqrs.now() > interval '59 minutes'"
                                          " from pgqrs.paused_runs where run_id = %s", (run_id,))
                    assert await cur.fetchall() == [("wait_for_approval", True)]

                # In your webhook handler
                await store.update_step(run_id, "wait_for_approval", status, approval_data)
                # Make the message visible immediately to resume
                await store.resume_run(run_id)

                info = await asyncio.wait_for(wait_status(store, run_id, "SUCCESS"), 30)
            assert info.output() is None  # the handler returns nothing
            steps = {s.step_id: (s.status, s.value) for s in await store.steps(run_id)}
            assert steps == {
                "send_request": ("SUCCESS", {"sent_to": "alice@example.test"}),
                "wait_for_approval": ("SUCCESS", approval_data),
                "process_approval": ("SUCCESS", {"processed": approval_data}),
            }

    asyncio.run(scenario())
    assert calls("process") == [("process", approval_data)]
    assert len(calls("send_email")) == 1  # not re-sent when the resumed run replays


def test_dataclasses_round_trip_as_json() -> None:
    async def scenario() -> None:
        async with await pgqrs.connect(DSN) as store:
            await pgqrs.workflow().name("zip_files").store(store).create()
            params = ZipParams(bucket="b", prefix="p/")
            handle = await pgqrs.workflow("zip_files").trigger(params).execute(store)
            info = await run().status(handle).store(store).get()
            assert info.input == dataclasses.asdict(params)
            received: list[Any] = []

            @workflow(name="zip_files")
            async def handler(ctx: pgqrs.WorkflowContext, p: ZipParams) -> ZipResult:
                received.append(p)
                return ZipResult(archive_path=p.bucket + "/" + p.prefix, file_count=7)

            assert handler.params_type is ZipParams
            async with worker_running(store, "dc-worker", "zip_files", handler):
                out = await asyncio.wait_for(run().status(handle).store(store).result(timeout=30), 35)
            assert received == [params]
            assert out == {"archive_path": "b/p/", "file_count": 7}
            info = await run().status(handle).store(store).get()
            assert ZipResult(**info.output()) == info.output(ZipResult) == ZipResult("b/p/", 7)

    asyncio.run(scenario())
