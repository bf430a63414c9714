"""The Workflows API document, runnable: the zip_files workflow, both ways the document shows it.

    python examples/zip_files.py     # database: $PGQRS_DSN, else PG* (PGHOST...), else `pgqrs dev`'s

1. The manual worker of "Worker Registration": dequeue a message, `acquire_step` each step, record it with
   `step.guard.success(...)`, `run.complete(...)`, `consumer.archive(msg.id)`.
2. The `@workflow(name="zip_files")` handler with `ctx.step`, served by `.handler(...)` + `poll_forever()`,
   the same as `python -m pgqrs worker examples.zip_files:zip_files_handler` would.

Both are triggered as in "Triggering Workflows" and checked as in "Checking Status & Results". The S3 and zip
helpers are fakes (no network): s3.list_objects, download_all and zip.create.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass

import pgqrs
from pgqrs import connect, run, workflow

DSN = pgqrs.resolve_dsn()  # $PGQRS_DSN, else the PG* variables, else the server of `pgqrs dev`


# ---- fake helpers ------------------------------------------------------------------------------------------


class FakeS3:
    async def list_objects(self, bucket: str, prefix: str) -> list[str]:
        await asyncio.sleep(0.01)
        return [f"s3://{bucket}/{prefix}/part-{i}.csv" for i in range(3)]


class FakeZip:
    async def create(self, local_files: list[str]) -> str:
        await asyncio.sleep(0.01)
        return f"/tmp/archive-{len(local_files)}-files.zip"


async def download_all(files: list[str]) -> list[str]:
    await asyncio.sleep(0.01)
    return ["/tmp/" + f.rsplit("/", 1)[-1] for f in files]


s3 = FakeS3()
zip = FakeZip()  # noqa: A001 -- the document calls it `zip`; it shadows the builtin in this module only


# ---- the document's workflow -------------------------------------------------------------------------------


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
async def zip_files_handler(ctx, params: ZipParams) -> ZipResult:  # type: ignore[no-untyped-def]
    # Step 1: List files
    files = await ctx.step("list_files", lambda: s3.list_objects(params.bucket, params.prefix))
    # Step 2: Download
    local_files = await ctx.step("download_files", lambda: download_all(files))
    # Step 3: Create archive
    archive_path = await ctx.step("create_archive", lambda: zip.create(local_files))
    return ZipResult(archive_path=archive_path, file_count=len(files))


# ---- Triggering, and Checking Status & Results ------------------------------------------------------------


async def handle_upload(bucket: str, prefix: str) -> pgqrs.TriggerHandle:
    store = await connect(DSN)
    try:
        message = await pgqrs.workflow() \
            .name("zip_files") \
            .store(store) \
            .trigger(ZipParams(bucket=bucket, prefix=prefix)) \
            .execute()
        print(f"Queued message: {message.id}")
        return message
    finally:
        await store.close()


async def check_status(message, store):  # type: ignore[no-untyped-def]
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
    return run_info.status


async def wait_for_result(message, store):  # type: ignore[no-untyped-def]
    # Blocking wait
    result = await run() \
        .status(message) \
        .store(store) \
        .result()
    return result


# ---- 1. the manual worker of "Worker Registration" ---------------------------------------------------------


async def manual_worker(store: pgqrs.Store, runs_to_do: int) -> None:
    # Setup (idempotent)
    await pgqrs.workflow().name("zip_files").store(store).create()

    # Register worker for the workflow queue
    consumer = await pgqrs.consumer("worker-1", 8080, "zip_files").create(store)

    done = 0
    while done < runs_to_do:  # the document loops forever; this example stops after its runs
        messages = await consumer.dequeue(batch_size=1)
        if not messages:
            await asyncio.sleep(0.05)
            continue
        msg = messages[0]
        run_ = await pgqrs.run().message(msg).store(store).execute()

        step = await run_.acquire_step("list_files", current_time=run_.current_time)
        if step.status == "SKIPPED":
            files = step.value
        elif step.status == "EXECUTE":
            files = await s3.list_objects(msg.payload["bucket"], msg.payload["prefix"])
            await step.guard.success(files)

        step = await run_.acquire_step("create_archive", current_time=run_.current_time)
        if step.status == "SKIPPED":
            archive_path = step.value
        elif step.status == "EXECUTE":
            archive_path = await zip.create(files)
            await step.guard.success(archive_path)

        await run_.complete({"archive_path": archive_path, "file_count": len(files)})
        await consumer.archive(msg.id)
        done += 1


# ---- 2. the @workflow handler, served by poll_forever ------------------------------------------------------


async def handler_worker(store: pgqrs.Store) -> pgqrs.Consumer:
    return await pgqrs.consumer("worker-2", 8081, "zip_files").handler(zip_files_handler).create(store)


async def main() -> int:
    pgqrs.install(DSN)
    store = await connect(DSN)
    try:
        await store.create_workflow("zip_files")

        # 1. the manual worker
        first = await handle_upload("my-bucket", "reports/2024")
        await manual_worker(store, runs_to_do=1)
        assert await check_status(first, store) == "SUCCESS"

        # 2. the decorated handler with ctx.step
        worker = await handler_worker(store)
        loop = asyncio.create_task(worker.poll_forever())
        second = await handle_upload("my-bucket", "photos/2025")
        result = await asyncio.wait_for(wait_for_result(second, store), timeout=60)
        print(f"Result: {result}")
        assert result == {"archive_path": "/tmp/archive-3-files.zip", "file_count": 3}, result
        assert await check_status(second, store) == "SUCCESS"
        steps = [s.step_id for s in await store.steps(second)]
        print(f"Steps of run {second.id}: {', '.join(steps)}")
        worker.stop()
        await loop
    finally:
        await store.close()
    print("zip_files example: done")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
