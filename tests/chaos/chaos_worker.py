"""A chaos worker process: `pgqrs.consumer(...).handler(chaos_workflow).create(store)` + `poll_forever()`.

Started (and SIGKILLed, and SIGTERMed) by tests/chaos/chaos_harness.py. Each step body first appends
(run_id, step_id, run attempt, pid, worker, clock_timestamp()) to chaos.side on its own connection, committed
before the body does its work (a sleep), then returns a value computed from the run's input only, so the run's
output is checkable. The workflow has STEPS steps; the input gives each step's duration.

    python tests/chaos/chaos_worker.py --dsn DSN --name w1 --concurrency 4 --visibility 3
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "pgqrs_py"))
import pgqrs  # noqa: E402

QUEUE = "chaos"
STEPS = 4

SIDE_INSERT = (
    "insert into chaos.side (run_id, step_id, run_attempt, pid, worker, started_at)"
    " values (%s, %s, %s, %s, %s, clock_timestamp())"
)


def step_value(n: int, k: int) -> int:
    """The deterministic result of step k of run n."""
    return n * 1000 + k * k + 7


def expected_output(n: int) -> dict[str, Any]:
    values = [step_value(n, k) for k in range(STEPS)]
    return {"n": n, "values": values, "sum": sum(values)}


def make_handler(side_dsn: str, name: str) -> Any:
    pid = os.getpid()

    async def chaos_workflow(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> dict[str, Any]:
        n = int(params["n"])
        sleeps = params["sleeps"]
        values = []
        for k in range(STEPS):
            step_id = f"s{k}"

            async def body(k: int = k, step_id: str = step_id) -> dict[str, int]:
                # The side record commits before the work starts: it says "this body began, here, then".
                async with await psycopg.AsyncConnection.connect(
                    side_dsn, autocommit=True, connect_timeout=10
                ) as side:
                    await side.execute(SIDE_INSERT, (ctx.run_id, step_id, ctx.attempt, pid, name))
                await asyncio.sleep(float(sleeps[k]))
                return {"k": k, "v": step_value(n, k)}

            result = await ctx.step(step_id, body)
            values.append(int(result["v"]))
        return {"n": n, "values": values, "sum": sum(values)}

    return chaos_workflow


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--visibility", type=float, default=3.0)
    ap.add_argument("--poll-interval", type=float, default=1.0)
    args = ap.parse_args()
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format=f"%(asctime)s {args.name}[{os.getpid()}] %(levelname)s %(name)s: %(message)s",
    )
    store = await pgqrs.connect(args.dsn, max_size=args.concurrency + 2)
    worker = await (
        pgqrs.consumer(args.name, None, QUEUE)
        .handler(make_handler(args.dsn, args.name))
        .concurrency(args.concurrency)
        .visibility(args.visibility)
        .poll_interval(args.poll_interval)
        .create(store)
    )
    print(f"READY {args.name} pid={os.getpid()} worker_id={worker.id}", flush=True)
    try:
        await worker.poll_forever()
    finally:
        await store.close()
    print(f"STOPPED {args.name} pid={os.getpid()}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
