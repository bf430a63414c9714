"""A program for tests/test_tracing.py, in a process of its own: `python tracing_program.py DSN MODE`.

MODE with-sdk: OpenTelemetry's SDK with an in-memory exporter; an "http.request" span triggers a workflow
whose first step fails once (a retry) and which starts and waits for a child run; one in-process worker runs
them. Prints the finished spans as JSON. MODE without: OpenTelemetry cannot be imported; the same workflow
runs; prints whether any opentelemetry module was imported."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

MODE = sys.argv[2]
if MODE == "without":
    sys.modules["opentelemetry"] = None  # type: ignore[assignment]  # any import of it fails

import pgqrs  # noqa: E402

calls = 0


async def flaky() -> str:
    global calls
    calls += 1
    if calls == 1:
        raise pgqrs.TransientError("503 from upstream", retry_after=0.05)
    return "fetched"


@pgqrs.workflow(name="traced")
async def traced(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> Any:
    if params.get("child"):
        return await ctx.step("leaf", lambda: "leaf")
    fetched = await ctx.step("fetch", flaky)
    kid = await ctx.start_child("traced", {"child": True})
    leaf = await ctx.wait_child(kid)
    return await ctx.step("store", lambda: f"{fetched}+{leaf}")


async def run_once(dsn: str) -> tuple[Any, Any]:
    async with await pgqrs.connect(dsn) as store:
        await store.create_workflow("traced", retry_policy={"max_attempts": 3, "base_seconds": 0.05})
        worker = await pgqrs.consumer("tracer", None, "traced").handler(traced).concurrency(2).create(store)
        polling = asyncio.create_task(worker.poll_forever())
        if MODE == "with-sdk":
            from opentelemetry import trace

            with trace.get_tracer("test").start_as_current_span("http.request"):
                handle = await pgqrs.workflow("traced").trigger({}).execute(store)
        else:
            handle = await pgqrs.workflow("traced").trigger({}).execute(store)
        output = await pgqrs.run().status(handle).store(store).result(timeout=30)
        worker.stop()
        await polling
        return output, handle.run_id


def main() -> None:
    dsn = sys.argv[1]
    if MODE == "with-sdk":
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
    output, run_id = asyncio.run(run_once(dsn))
    if MODE == "with-sdk":
        spans = [
            {
                "name": s.name,
                "trace_id": s.context.trace_id,
                "span_id": s.context.span_id,
                "parent_id": s.parent.span_id if s.parent else None,
                "attributes": dict(s.attributes or {}),
                "status": s.status.status_code.name,
            }
            for s in exporter.get_finished_spans()
        ]
        print(json.dumps({"output": output, "run_id": run_id, "spans": spans}))
    else:
        loaded = sorted(m for m, v in sys.modules.items() if m.startswith("opentelemetry") and v is not None)
        print(json.dumps({"output": output, "run_id": run_id, "loaded": loaded}))


if __name__ == "__main__":
    main()
