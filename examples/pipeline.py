"""The Durable Workflows Guide, runnable: the 3-step data pipeline and the approval workflow.

    python examples/pipeline.py      # database: $PGQRS_DSN, else PG* (PGHOST...), else `pgqrs dev`'s

runs the guide end to end in one process: installs the schema, registers the worker (`.handler(...)` +
`poll_forever()`), triggers pipeline runs (one of them meets a transient error and is retried), then an
approval run that pauses at `wait_for_approval` until a "webhook" records the approval with `update_step` and
`resume_run`. The same handlers serve real worker processes from the command line:

    python -m pgqrs worker examples.pipeline:data_pipeline --concurrency 2
    python -m pgqrs worker examples.pipeline:approval_workflow

`data_pipeline_handler` is the guide's handler; what it calls (fetch_from_api, transform_logic, save_to_db,
send_email) are fakes. Every step body first appends (run_id, step_id, pid, at) to the table
example_step_log in its own committed transaction: a record of how often each body really ran, which
examples/demo.py uses to show that after a crash only the step that was in flight runs again.

Knobs in the run input (besides the guide's "url"): a url containing "flaky" fails once with a transient
error, retried after "retry_after" seconds (default 30, as in the guide); "transform_seconds" makes
transform_data take that long (default 0.1).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import psycopg

import pgqrs
from pgqrs import Step, StepStatus, TransientError, workflow

DSN = pgqrs.resolve_dsn()  # $PGQRS_DSN, else the PG* variables, else the server of `pgqrs dev`

# ---- the execution log the step bodies write ---------------------------------------------------------------

STEP_LOG_DDL = """
create table if not exists example_step_log (
    run_id bigint not null,
    step_id text not null,
    pid integer not null,
    at timestamptz not null default clock_timestamp()
)
"""


def ensure_step_log(dsn: str = DSN) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(STEP_LOG_DDL)


async def record_execution(ctx: Any, step_id: str) -> int:
    """Append this execution of a step body to example_step_log (committed at once); returns how many
    times the body has started for this run, this one included."""
    async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as conn:
        await conn.execute(STEP_LOG_DDL)
        await conn.execute("insert into example_step_log (run_id, step_id, pid) values (%s, %s, %s)",
                           (ctx.run_id, step_id, os.getpid()))
        cur = await conn.execute("select count(*) from example_step_log where run_id = %s and step_id = %s",
                                 (ctx.run_id, step_id))
        row = await cur.fetchone()
    return int(row[0]) if row else 0


# ---- fake external systems ---------------------------------------------------------------------------------


class UpstreamUnavailable(ConnectionError):
    """What a flaky API does now and then (HTTP 503)."""


async def fetch_from_api(url: str, execution: int) -> list[dict[str, Any]]:
    await asyncio.sleep(0.01)
    if "flaky" in url and execution == 1:
        raise UpstreamUnavailable(f"503 Service Unavailable from {url}")
    return [{"id": i, "value": i * 10} for i in range(1, 6)]


def is_transient(exc: Exception) -> bool:
    return isinstance(exc, ConnectionError | TimeoutError)


def transform_logic(data: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": row["id"], "value": row["value"] * 2} for row in data]


async def save_to_db(rows: list[dict[str, Any]]) -> None:
    await asyncio.sleep(0.01)


async def send_email(to: str) -> str:
    await asyncio.sleep(0.01)
    return f"approval request sent to {to}"


async def process(approval: dict[str, Any]) -> str:
    return "approved by " + str(approval.get("by")) if approval.get("approved") else "rejected"


# ---- the guide's workflow handler (Step 1) ---------------------------------------------------------------


async def data_pipeline_handler(ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
    print(f"[workflow] Starting pipeline for {params['url']} (run {ctx.run_id})", flush=True)

    # Step 1: Fetch data
    async def fetch() -> Any:
        execution = await record_execution(ctx, "fetch_data")
        try:
            return await fetch_from_api(params["url"], execution)
        except Exception as e:
            if is_transient(e):
                # Retry later (the guide waits 30 seconds; the demo asks for 2)
                raise TransientError(str(e), retry_after=params.get("retry_after", 30)) from e
            raise e

    data = await ctx.step("fetch_data", fetch)

    # Step 2: Transform data
    async def transform() -> Any:
        await record_execution(ctx, "transform_data")
        print(f"[transform_data] Processing {len(data)} records (run {ctx.run_id})", flush=True)
        await asyncio.sleep(params.get("transform_seconds", 0.1))  # a slow, crash-prone step
        return transform_logic(data)

    transformed = await ctx.step("transform_data", transform)

    # Step 3: Save results
    async def save() -> None:
        await record_execution(ctx, "save_results")
        print(f"[save_results] Saving {len(transformed)} records (run {ctx.run_id})", flush=True)
        await save_to_db(transformed)

    await ctx.step("save_results", save)

    return {"processed_count": len(transformed)}


# The same handler as a @workflow function: `python -m pgqrs worker examples.pipeline:data_pipeline` finds its
# queue name here.
data_pipeline = workflow(name="data_pipeline")(data_pipeline_handler)


# ---- pausing for an external event (the guide's approval_workflow) --------------------------------------


@workflow(name="approval")
async def approval_workflow(ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
    # Step 1: Send approval request
    async def send_request() -> str:
        await record_execution(ctx, "send_request")
        return await send_email(params["approver"])

    await ctx.step("send_request", send_request)

    # Step 2: Pause until approval received
    async def wait_for_approval() -> Any:
        await record_execution(ctx, "wait_for_approval")
        # This will pause the run and release the worker
        raise Step.pause(3600)

    approval_data = await ctx.step("wait_for_approval", wait_for_approval)

    # Step 3: Process approval
    async def process_approval() -> str:
        await record_execution(ctx, "process_approval")
        return await process(approval_data)

    decision = await ctx.step("process_approval", process_approval)
    return {"decision": decision}


# ---- the guide's Steps 2 and 3, and the webhook ------------------------------------------------------------


async def handle_request(store: pgqrs.Store, url: str, **knobs: Any) -> int:
    """Step 3 of the guide: submit a run from any client."""
    run_id = await pgqrs.workflow("data_pipeline").trigger({"url": url, **knobs}).execute(store)
    return int(run_id)


async def approval_webhook(store: pgqrs.Store, run_id: int, approval: dict[str, Any]) -> None:
    """What an approval webhook does: record the step's result, then make the run visible again."""
    await store.update_step(run_id, "wait_for_approval", StepStatus.SUCCESS, approval)
    await store.resume_run(run_id)


async def wait_for_status(store: pgqrs.Store, run_id: int, status: str, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (info := await pgqrs.run().status(run_id).store(store).get()).status != status:
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"run {run_id} is {info.status}, expected {status}")
        await asyncio.sleep(0.05)


async def main() -> int:
    pgqrs.install(DSN)
    ensure_step_log()
    store = await pgqrs.connect(DSN)
    try:
        # Setup workflow definitions (idempotent)
        await store.create_workflow("data_pipeline")
        await store.create_workflow("approval")

        # Register the workers (Step 2 of the guide), here as tasks of this process
        worker = await pgqrs.consumer("worker-1", 8080, "data_pipeline") \
            .handler(data_pipeline_handler) \
            .create(store)
        approver = await pgqrs.consumer("approval-worker-1", 8081, "approval") \
            .handler(approval_workflow) \
            .create(store)
        print("Worker started. Waiting for runs...", flush=True)
        loops = [asyncio.create_task(worker.poll_forever()), asyncio.create_task(approver.poll_forever())]

        # Trigger (Step 3): a normal run, and one whose API fails once with a transient error
        ok = await handle_request(store, "https://api.example.com/data")
        flaky = await handle_request(store, "https://api.example.com/flaky", retry_after=1)
        for run_id in (ok, flaky):
            result = await pgqrs.run().status(run_id).store(store).result(timeout=60)
            steps = {s.step_id: s.attempt for s in await store.steps(run_id)}
            print(f"run {run_id}: SUCCESS {result} (step attempts {steps})", flush=True)

        # Pausing for an external event, resumed by the webhook
        approval = pgqrs.workflow("approval").trigger({"approver": "ops@example.com"})
        approval_run = int(await approval.execute(store))
        await wait_for_status(store, approval_run, "PAUSED")
        print(f"run {approval_run}: PAUSED at wait_for_approval", flush=True)
        await approval_webhook(store, approval_run, {"approved": True, "by": "ops@example.com"})
        result = await pgqrs.run().status(approval_run).store(store).result(timeout=60)
        print(f"run {approval_run}: SUCCESS {result}", flush=True)

        worker.stop()
        approver.stop()
        await asyncio.gather(*loops)
    finally:
        await store.close()
    print("pipeline example: done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
