"""A real worker process for tests/test_worker.py.

    python tests/worker_proc.py DSN NAME [--visibility S] [--concurrency N] [--shutdown-timeout S]
                                [--fixed STEP]

It serves the workflow `probe`, whose input says what to do:
    {"steps": ["a", "b"],             the step ids, run in order with ctx.step
     "sleep": {"b": 5},               seconds a step body sleeps ...
     "sleep_attempts": [1],           ... only on these deliveries of the run (default: every delivery)
     "sync": true,                    step bodies are plain functions (run in a thread) instead of coroutines
     "transient": {"b": 1.5},         on the first delivery, step b raises TransientError(retry_after=1.5)
     "raise": {"b": "boom"},          step b raises RuntimeError("boom") (a permanent failure), unless this
                                      worker runs with --fixed b (a release that fixed the bug)
     "pause": "b",                    step b raises Step.pause() (until update_step + resume_run)
     "handler_raise": "boom",         the handler raises ValueError("boom") before any step
     "plan": [["step", "a"], ["sleep", 1], ["event", "k", 5], ["recv", "t", 5], ["send", RUN, "t", MSG],
              ["children", 3, PARAMS], ["active", S]]}
                                      instead of "steps": steps, durable sleeps (ctx.sleep), event waits
                                      (ctx.wait_for_event, its payload or "timeout" in the output), receives
                                      (ctx.recv, the messages or "timeout" listed under "recv:t" in the
                                      output), sends to a run (ctx.send) and child runs of probe with input
                                      PARAMS plus "i" (ctx.start_child, then ctx.gather: the outputs, or
                                      {"failed": status, "run_id": id}, listed under "children") and a body
                                      of S seconds counting the bodies running with it (all, and of its
                                      input's "key": table active_bodies, under "active") in order
Every step body first records (run_id, step_id, pid, delivery) in the table `executions` on its own autocommit
connection, so a test can count executions even of a body whose worker is then killed. The output is
{"steps": {step id: step result}, "pid": pid}. Prints "ready <worker id>" once registered.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from typing import Any

import psycopg

import pgqrs

RECORD = "insert into executions (run_id, step_id, pid, delivery) values (%s, %s, %s, %s)"
SIDE_TABLE = """
create table if not exists executions (
    run_id bigint not null, step_id text not null, pid integer not null, delivery integer not null,
    at timestamptz not null default clock_timestamp()
)"""

DSN = ""
FIXED: set[str] = set()


def record_sync(run_id: int, step_id: str, delivery: int) -> None:
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(RECORD, (run_id, step_id, os.getpid(), delivery))


async def record(run_id: int, step_id: str, delivery: int) -> None:
    async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as conn:
        await conn.execute(RECORD, (run_id, step_id, os.getpid(), delivery))


def make_body(ctx: pgqrs.WorkflowContext, params: dict[str, Any], step_id: str) -> Any:
    delivery = ctx.attempt
    sleep_attempts = params.get("sleep_attempts")
    pause = float(params.get("sleep", {}).get(step_id, 0))
    if sleep_attempts is not None and delivery not in sleep_attempts:
        pause = 0.0
    transient = params.get("transient", {}).get(step_id) if delivery == 1 else None
    error = None if step_id in FIXED else params.get("raise", {}).get(step_id)

    def outcome() -> dict[str, Any]:
        if transient is not None:
            raise pgqrs.TransientError("flaky", retry_after=float(transient))
        if error is not None:
            raise RuntimeError(error)
        if params.get("pause") == step_id:
            raise pgqrs.Step.pause()
        return {"step": step_id, "pid": os.getpid()}

    if params.get("sync"):

        def sync_body() -> dict[str, Any]:
            record_sync(ctx.run_id, step_id, delivery)
            time.sleep(pause)  # blocks its thread, not the event loop: heartbeats go on
            return outcome()

        return sync_body

    async def async_body() -> dict[str, Any]:
        await record(ctx.run_id, step_id, delivery)
        await asyncio.sleep(pause)
        return outcome()

    return async_body


def active_body(key: str | None, seconds: float) -> Any:
    """A body that joins the table active_bodies (made by the test) for `seconds` and returns how many bodies,
    and how many of its concurrency key, were in it with it (its own row included)."""

    async def body() -> dict[str, int]:
        async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as conn:
            cur = await conn.execute(
                "insert into active_bodies (key) values (%s) returning id", (key,)
            )
            (row_id,) = await cur.fetchone()  # type: ignore[misc]
            cur = await conn.execute(
                "select count(*), count(*) filter (where key = %s) from active_bodies", (key,)
            )
            (everyone, same_key) = await cur.fetchone()  # type: ignore[misc]
            await asyncio.sleep(seconds)
            await conn.execute("delete from active_bodies where id = %s", (row_id,))
        return {"all": everyone, "key": same_key}

    return body


async def probe(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> dict[str, Any]:
    if params.get("handler_raise"):
        raise ValueError(params["handler_raise"])
    results = {}
    for step_id in params.get("steps", []):
        results[step_id] = await ctx.step(step_id, make_body(ctx, params, step_id))
    for kind, *args in params.get("plan", []):
        if kind == "step":
            results[args[0]] = await ctx.step(args[0], make_body(ctx, params, args[0]))
        elif kind == "sleep":
            await ctx.sleep(args[0])
        elif kind == "recv":
            try:
                got = await ctx.recv(args[0], timeout=args[1])
            except pgqrs.WaitTimeout:
                got = "timeout"
            results.setdefault(f"recv:{args[0]}", []).append(got)
        elif kind == "send":
            await ctx.send(*args)
        elif kind == "active":  # ["active", S]: a body of S seconds that counts the bodies running at once
            results["active"] = await ctx.step("active", active_body(params.get("key"), args[0]))
        elif kind == "children":
            handles = [await ctx.start_child("probe", {**args[1], "i": i}) for i in range(args[0])]
            outcomes = await ctx.gather(*handles, return_exceptions=True)
            results["children"] = [
                {"failed": o.status, "run_id": o.run_id} if isinstance(o, pgqrs.ChildFailed) else o
                for o in outcomes
            ]
        else:
            try:
                results[f"event:{args[0]}"] = await ctx.wait_for_event(args[0], timeout=args[1])
            except pgqrs.WaitTimeout:
                results[f"event:{args[0]}"] = "timeout"
    return {"steps": results, "pid": os.getpid()}


async def main() -> None:
    global DSN
    parser = argparse.ArgumentParser()
    parser.add_argument("dsn")
    parser.add_argument("name")
    parser.add_argument("--visibility", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--shutdown-timeout", type=float, default=None)
    parser.add_argument("--fixed", action="append", default=[])
    parser.add_argument("--schedule-interval", type=float, default=10.0)
    args = parser.parse_args()
    DSN = args.dsn
    FIXED.update(args.fixed)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format=f"%(asctime)s [{args.name} {os.getpid()}] %(name)s %(levelname)s %(message)s",
    )

    async with await pgqrs.connect(DSN) as store:
        await store.create_workflow("probe")
        worker = (
            await pgqrs.consumer(args.name, 8080, "probe")
            .handler(probe)
            .concurrency(args.concurrency)
            .visibility(args.visibility)
            .schedule_interval(args.schedule_interval)
            .create(store)
        )
        print(f"ready {worker.id}", flush=True)
        await worker.poll_forever(shutdown_timeout=args.shutdown_timeout)
    print("stopped", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
