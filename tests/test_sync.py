"""The synchronous flavour `pgqrs.sync` (generated from the async modules; the generator's own tests are in
test_sync_generator.py) has the same public surface, and the seed flows run through both flavours with the
same results.

- both flavours export the same names; flavour-neutral objects are the *same* objects; every public method
  and function has the same parameters (names, kinds, defaults, annotations up to the async -> sync
  renames), async in one flavour and plain in the other;
- the seeds' flows, written once per flavour the way a user would: trigger + worker with `ctx.step` / `@step`
  + `result()`, the manual consumer loop (dequeue, acquire_step, guard, complete, archive, status), pause +
  `update_step` + `resume_run`, a transient retry. Both flavours must produce identical summaries.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import pgqrs
from pgqrs import Step, StepStatus, TransientError
from pgqrs import sync as pgqrs_sync
from test_sync_generator import gen_sync

# ---- the two public surfaces -------------------------------------------------------------------------------


def test_same_public_names() -> None:
    assert sorted(pgqrs.__all__) == sorted(pgqrs_sync.__all__)
    for name in pgqrs_sync.__all__:
        assert hasattr(pgqrs_sync, name), name


SHARED = ["Message", "RunInfo", "RunStatus", "StepStatus", "StepRecord", "TriggerHandle", "WorkflowDef",
          "Step", "StepPause", "PgqrsError", "TransientError", "LeaseLost", "WorkflowFailed", "install"]


@pytest.mark.parametrize("name", SHARED)
def test_flavour_neutral_objects_are_shared(name: str) -> None:
    assert getattr(pgqrs, name) is getattr(pgqrs_sync, name)


def normalise(annotation: Any) -> str:
    """An annotation of the async flavour as the sync one spells it (the generator's own renames)."""
    text = annotation if isinstance(annotation, str) else repr(annotation)
    for old, new in gen_sync.RENAMES.items():
        text = re.sub(rf"\b{old}\b", new, text)
    while (m := re.search(r"\bAwaitable\[", text)) is not None:  # Awaitable[X] -> X
        depth, i = 1, m.end()
        while depth:
            depth += {"[": 1, "]": -1}.get(text[i], 0)
            i += 1
        text = text[:m.start()] + text[m.end():i - 1] + text[i:]
    return text


def signature_of(fn: Callable[..., Any]) -> list[tuple[str, Any, Any, str]]:
    sig = inspect.signature(fn)
    params = [(p.name, p.kind, p.default, normalise(p.annotation)) for p in sig.parameters.values()]
    return params + [("->", None, None, normalise(sig.return_annotation))]


SYNC_DUNDERS = {"__aenter__": "__enter__", "__aexit__": "__exit__", "__enter__": "__enter__",
                "__exit__": "__exit__", "__call__": "__call__", "__init__": "__init__"}


def public_members(cls: type) -> dict[str, Any]:
    members = {}
    for name, _value in inspect.getmembers(cls):
        if name.startswith("_") and name not in SYNC_DUNDERS:
            continue
        if name in SYNC_DUNDERS and not any(name in vars(b) for b in cls.__mro__[:-1]):
            continue
        members[SYNC_DUNDERS.get(name, name)] = inspect.getattr_static(cls, name)
    return members


def differing_names() -> list[str]:
    return [n for n in pgqrs.__all__ if getattr(pgqrs, n) is not getattr(pgqrs_sync, n)]


def test_the_flavour_specific_names_are_the_expected_ones() -> None:
    assert set(differing_names()) == {
        "AcquiredStep", "Consumer", "ConsumerBuilder", "Run", "RunBuilder", "Store", "WorkflowBuilder",
        "WorkflowContext", "WorkflowFunction", "connect", "consumer", "run", "step", "workflow"}


@pytest.mark.parametrize("name", differing_names())
def test_same_signatures(name: str) -> None:
    a, s = getattr(pgqrs, name), getattr(pgqrs_sync, name)
    if inspect.isclass(a):
        am, sm = public_members(a), public_members(s)
        assert sorted(am) == sorted(sm), f"{name}: members differ"
        for member, av in am.items():
            sv = sm[member]
            assert type(av) is type(sv), f"{name}.{member}: {type(av)} vs {type(sv)}"
            if isinstance(av, property):
                continue
            af = av.__func__ if isinstance(av, staticmethod | classmethod) else av
            sf = sv.__func__ if isinstance(sv, staticmethod | classmethod) else sv
            if not callable(af):
                continue
            assert signature_of(af) == signature_of(sf), f"{name}.{member}"
            assert not inspect.iscoroutinefunction(sf), f"sync {name}.{member} is a coroutine function"
    else:
        assert signature_of(a) == signature_of(s), name
        assert not inspect.iscoroutinefunction(s)


def test_async_methods_are_plain_in_the_sync_flavour() -> None:
    coroutines = 0
    for name in differing_names():
        a, s = getattr(pgqrs, name), getattr(pgqrs_sync, name)
        for member, av in (public_members(a).items() if inspect.isclass(a) else [(name, a)]):
            if inspect.iscoroutinefunction(av):
                coroutines += 1
                sv = public_members(s)[member] if inspect.isclass(s) else s
                assert callable(sv) and not inspect.iscoroutinefunction(sv), f"{name}.{member}"
    assert coroutines >= 20  # connect, create, trigger, execute, dequeue, acquire_step, complete, result, ...


# ---- the seed flows, once per flavour ----------------------------------------------------------------------


@dataclasses.dataclass
class ZipParams:
    bucket: str
    prefix: str


@dataclasses.dataclass
class ZipResult:
    archive_path: str
    file_count: int


def list_objects(bucket: str, prefix: str) -> list[str]:
    return [f"{bucket}/{prefix}a", f"{bucket}/{prefix}b"]


FLAKY: dict[str, int] = {}


def flaky_fetch(key: str) -> list[int]:
    FLAKY[key] = FLAKY.get(key, 0) + 1
    if FLAKY[key] == 1:
        raise TransientError("rate limited", retry_after=0.2)
    return [1, 2, 3]


def seed_async(dsn: str, tag: str) -> dict[str, Any]:
    """The seeds' Python samples as written (async)."""

    @pgqrs.step
    async def checksum(path: str) -> str:
        return f"sum:{path}"

    @pgqrs.workflow(name="zip_files")
    async def zip_files_handler(ctx: Any, params: ZipParams) -> ZipResult:
        files = await ctx.step("list_files", lambda: list_objects(params.bucket, params.prefix))
        sums = [await checksum(f) for f in files]  # `@step` ids: checksum, checksum#2
        archive_path = await ctx.step("create_archive", lambda: f"/tmp/{len(sums)}.zip")
        return ZipResult(archive_path=archive_path, file_count=len(files))

    async def data_pipeline_handler(ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
        data = await ctx.step("fetch_data", lambda: flaky_fetch(f"{tag}:{params['url']}"))

        async def transform() -> list[int]:
            return [x * 10 for x in data]

        transformed = await ctx.step("transform_data", transform)
        return {"processed_count": len(transformed), "sum": sum(transformed)}

    async def approval_workflow(ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
        await ctx.step("send_request", lambda: f"mail to {params['approver']}")

        def wait() -> None:
            raise Step.pause(3600)

        approval = await ctx.step("wait_for_approval", wait)
        return await ctx.step("process_approval", lambda: {"approved_by": approval["by"]})

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        store = await pgqrs.connect(dsn)
        async with store:
            await pgqrs.workflow().name("zip_files").store(store).create()
            await store.create_workflow("data_pipeline")
            await store.create_workflow("approval")
            await store.create_workflow("manual")
            workers = [
                await pgqrs.consumer(f"{tag}-zip", 8080, "zip_files").handler(zip_files_handler)
                .create(store),
                await pgqrs.consumer(f"{tag}-dp", 8080, "data_pipeline").handler(data_pipeline_handler)
                .create(store),
                await pgqrs.consumer(f"{tag}-ap", 8080, "approval").handler(approval_workflow).create(store),
            ]
            loops = [asyncio.create_task(w.poll_forever()) for w in workers]
            try:
                # trigger (both forms), result, status
                message = await pgqrs.workflow().name("zip_files").store(store) \
                    .trigger(ZipParams(bucket="b", prefix="p/")).execute()
                out["zip_result"] = await pgqrs.run().status(message).store(store).result(timeout=60)
                info = await pgqrs.run().status(message).store(store).get()
                out["zip_status"] = (info.status, info.output(ZipResult))
                out["zip_steps"] = [s.step_id for s in await store.steps(message)]
                run_id = await pgqrs.workflow("data_pipeline").trigger({"url": "u"}).execute(store)
                out["pipeline"] = await pgqrs.run().status(run_id).store(store).result(timeout=60)
                out["pipeline_attempts"] = {s.step_id: s.attempt for s in await store.steps(run_id)}
                # pause, update_step from a webhook, resume_run
                paused = await pgqrs.workflow("approval").trigger({"approver": "ann"}).execute(store)
                out["paused"] = await until(lambda: pgqrs.run().status(paused).store(store).get(), "PAUSED")
                await store.update_step(paused, "wait_for_approval", StepStatus.SUCCESS, {"by": "ann"})
                await store.resume_run(paused)
                out["approval"] = await pgqrs.run().status(paused).store(store).result(timeout=60)
            finally:
                for w in workers:
                    w.stop()
                await asyncio.gather(*loops)
            # the manual consumer loop of the Workflows API document
            handle = await pgqrs.workflow("manual").trigger({"bucket": "b", "prefix": "m/"}).execute(store)
            consumer = await pgqrs.consumer(f"{tag}-manual", 8080, "manual").create(store)
            seen = []
            for _ in range(3):
                messages = await consumer.dequeue(batch_size=1)
                if not messages:
                    continue
                msg = messages[0]
                run = await pgqrs.run().message(msg).store(store).execute()
                step = await run.acquire_step("list_files", current_time=run.current_time)
                seen.append(step.status)
                if step.status == "SKIPPED":
                    files = step.value
                elif step.status == "EXECUTE":
                    files = list_objects(msg.payload["bucket"], msg.payload["prefix"])
                    await step.guard.success(files)
                again = await run.acquire_step("list_files", current_time=run.current_time)
                seen.append(again.status)
                await run.complete({"file_count": len(files)})
                await consumer.archive(msg.id)
                await consumer.archive(msg.id)  # idempotent
            out["manual_seen"] = seen
            out["manual"] = await pgqrs.run().status(handle).store(store).result()
        return out

    async def until(get: Callable[[], Any], status: str) -> str:
        deadline = time.monotonic() + 60
        while (info := await get()).status != status:
            assert time.monotonic() < deadline, info
            await asyncio.sleep(0.05)
        return str(info.status)

    return asyncio.run(main())


def seed_sync(dsn: str, tag: str) -> dict[str, Any]:
    """The same samples, as a user of `pgqrs.sync` writes them."""

    @pgqrs_sync.step
    def checksum(path: str) -> str:
        return f"sum:{path}"

    @pgqrs_sync.workflow(name="zip_files")
    def zip_files_handler(ctx: Any, params: ZipParams) -> ZipResult:
        files = ctx.step("list_files", lambda: list_objects(params.bucket, params.prefix))
        sums = [checksum(f) for f in files]
        archive_path = ctx.step("create_archive", lambda: f"/tmp/{len(sums)}.zip")
        return ZipResult(archive_path=archive_path, file_count=len(files))

    def data_pipeline_handler(ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
        data = ctx.step("fetch_data", lambda: flaky_fetch(f"{tag}:{params['url']}"))

        def transform() -> list[int]:
            return [x * 10 for x in data]

        transformed = ctx.step("transform_data", transform)
        return {"processed_count": len(transformed), "sum": sum(transformed)}

    def approval_workflow(ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
        ctx.step("send_request", lambda: f"mail to {params['approver']}")

        def wait() -> None:
            raise Step.pause(3600)

        approval = ctx.step("wait_for_approval", wait)
        return ctx.step("process_approval", lambda: {"approved_by": approval["by"]})  # type: ignore[no-any-return]

    def until(get: Callable[[], Any], status: str) -> str:
        deadline = time.monotonic() + 60
        while (info := get()).status != status:
            assert time.monotonic() < deadline, info
            time.sleep(0.05)
        return str(info.status)

    out: dict[str, Any] = {}
    with pgqrs_sync.connect(dsn) as store:
        pgqrs_sync.workflow().name("zip_files").store(store).create()
        store.create_workflow("data_pipeline")
        store.create_workflow("approval")
        store.create_workflow("manual")
        workers = [
            pgqrs_sync.consumer(f"{tag}-zip", 8080, "zip_files").handler(zip_files_handler).create(store),
            pgqrs_sync.consumer(f"{tag}-dp", 8080, "data_pipeline").handler(data_pipeline_handler)
            .create(store),
            pgqrs_sync.consumer(f"{tag}-ap", 8080, "approval").handler(approval_workflow).create(store),
        ]
        loops = [threading.Thread(target=w.poll_forever, daemon=True) for w in workers]
        for t in loops:
            t.start()
        try:
            message = pgqrs_sync.workflow().name("zip_files").store(store) \
                .trigger(ZipParams(bucket="b", prefix="p/")).execute()
            out["zip_result"] = pgqrs_sync.run().status(message).store(store).result(timeout=60)
            info = pgqrs_sync.run().status(message).store(store).get()
            out["zip_status"] = (info.status, info.output(ZipResult))
            out["zip_steps"] = [s.step_id for s in store.steps(message)]
            run_id = pgqrs_sync.workflow("data_pipeline").trigger({"url": "u"}).execute(store)
            out["pipeline"] = pgqrs_sync.run().status(run_id).store(store).result(timeout=60)
            out["pipeline_attempts"] = {s.step_id: s.attempt for s in store.steps(run_id)}
            paused = pgqrs_sync.workflow("approval").trigger({"approver": "ann"}).execute(store)
            out["paused"] = until(lambda: pgqrs_sync.run().status(paused).store(store).get(), "PAUSED")
            store.update_step(paused, "wait_for_approval", StepStatus.SUCCESS, {"by": "ann"})
            store.resume_run(paused)
            out["approval"] = pgqrs_sync.run().status(paused).store(store).result(timeout=60)
        finally:
            for w in workers:
                w.stop()
            for t in loops:
                t.join(timeout=60)
                assert not t.is_alive(), "poll_forever did not return after stop()"
        handle = pgqrs_sync.workflow("manual").trigger({"bucket": "b", "prefix": "m/"}).execute(store)
        consumer = pgqrs_sync.consumer(f"{tag}-manual", 8080, "manual").create(store)
        seen = []
        for _ in range(3):
            messages = consumer.dequeue(batch_size=1)
            if not messages:
                continue
            msg = messages[0]
            run = pgqrs_sync.run().message(msg).store(store).execute()
            step = run.acquire_step("list_files", current_time=run.current_time)
            seen.append(step.status)
            if step.status == "SKIPPED":
                files = step.value
            elif step.status == "EXECUTE":
                files = list_objects(msg.payload["bucket"], msg.payload["prefix"])
                step.guard.success(files)
            again = run.acquire_step("list_files", current_time=run.current_time)
            seen.append(again.status)
            run.complete({"file_count": len(files)})
            consumer.archive(msg.id)
            consumer.archive(msg.id)
        out["manual_seen"] = seen
        out["manual"] = pgqrs_sync.run().status(handle).store(store).result()
    return out


EXPECTED = {
    "zip_result": {"archive_path": "/tmp/2.zip", "file_count": 2},
    "zip_status": ("SUCCESS", ZipResult(archive_path="/tmp/2.zip", file_count=2)),
    "zip_steps": ["list_files", "checksum", "checksum#2", "create_archive"],
    "pipeline": {"processed_count": 3, "sum": 60},
    "pipeline_attempts": {"fetch_data": 2, "transform_data": 1},
    "paused": "PAUSED",
    "approval": {"approved_by": "ann"},
    "manual_seen": ["EXECUTE", "SKIPPED"],
    "manual": {"file_count": 2},
}

FLOWS = {"async": seed_async, "sync": seed_sync}


@pytest.mark.parametrize("flavour", sorted(FLOWS))
def test_seed_flows(db: str, flavour: str) -> None:
    summary = FLOWS[flavour](db, f"t-{flavour}")
    assert summary == EXPECTED


def test_both_flavours_share_one_database(db: str) -> None:
    """Runs triggered by one flavour are executed by the other's worker, and vice versa."""

    @pgqrs_sync.workflow(name="mixed")
    def sync_handler(ctx: Any, params: dict[str, int]) -> dict[str, Any]:
        return {"n": ctx.step("n", lambda: params["n"] + 1), "by": "sync"}

    async def from_async() -> Any:
        async with await pgqrs.connect(db) as store:
            await store.create_workflow("mixed")
            handle = await pgqrs.workflow("mixed").trigger({"n": 41}).execute(store)
            return await pgqrs.run().status(handle).store(store).result(timeout=60)

    with pgqrs_sync.connect(db) as store:
        store.create_workflow("mixed")
        worker = pgqrs_sync.consumer("mixed-sync", None, "mixed").handler(sync_handler).create(store)
        thread = threading.Thread(target=worker.poll_forever, daemon=True)
        thread.start()
        try:
            assert asyncio.run(from_async()) == {"n": 42, "by": "sync"}
        finally:
            worker.stop()
            thread.join(timeout=60)
        assert not thread.is_alive()


def test_sync_worker_concurrency_uses_threads(db: str) -> None:
    """concurrency(n): n runs at once, each in its own thread, and the pool is sized for them."""
    active: list[int] = []
    peak = [0]
    lock = threading.Lock()

    def slow() -> str:
        with lock:
            active.append(1)
            peak[0] = max(peak[0], len(active))
        time.sleep(0.3)
        with lock:
            active.pop()
        return threading.current_thread().name

    def handler(ctx: Any, params: dict[str, int]) -> str:
        return str(ctx.step("slow", slow))

    with pgqrs_sync.connect(db, max_size=2) as store:
        store.create_workflow("conc")
        worker = pgqrs_sync.consumer("conc", None, "conc").handler(handler).concurrency(4).create(store)
        assert store.pool.max_size >= 4 + 2
        handles = [pgqrs_sync.workflow("conc").trigger({"i": i}).execute(store) for i in range(8)]
        thread = threading.Thread(target=worker.poll_forever, daemon=True)
        thread.start()
        try:
            names = {pgqrs_sync.run().status(h).store(store).result(timeout=60) for h in handles}
        finally:
            worker.stop()
            thread.join(timeout=60)
    assert peak[0] == 4
    assert all(n.startswith("pgqrs-run-") for n in names)
