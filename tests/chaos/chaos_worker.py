"""A chaos worker process: `pgqrs.consumer(...).handler(chaos_workflow).create(store)` + `poll_forever()`.

Started (and SIGKILLed, and SIGTERMed) by tests/chaos/chaos_harness.py. Each step body first appends
(run_id, step_id, run attempt, pid, worker, lease token, clock_timestamp()) to chaos.side on its own
connection, committed before the body does its work (a sleep), then returns a value computed from the run's
input only, so the run's output is checkable. The workflow has STEPS steps; the input gives each step's
duration.

With --events FILE it also appends what it did to FILE, one JSON line each (see Events).

    python tests/chaos/chaos_worker.py --dsn DSN --name w1 --concurrency 4 --visibility 3 [--events FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "pgqrs_py"))
import pgqrs  # noqa: E402

QUEUE = "chaos"
STEPS = 4

SIDE_INSERT = (
    "insert into chaos.side (run_id, step_id, run_attempt, pid, worker, lease_token, started_at)"
    " values (%s, %s, %s, %s, %s, %s, clock_timestamp())"
)


class Events:
    """What this process did and when, one JSON line each, appended to a local file (it survives server
    restarts; a SIGKILL only cuts it short): every delivery's handler start and end and every step body's
    start, end and outcome (the result acknowledged by complete_step, or the exception ctx.step raised). The
    harness joins it with chaos.side to explain each repeated step execution (tests/chaos/repeats.py)."""

    def __init__(self, path: str | None, name: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) if path else None
        self.base = {"pid": os.getpid(), "worker": name}

    def __call__(self, event: str, ctx: pgqrs.WorkflowContext, **fields: Any) -> None:
        if self.fd is None:
            return
        record = {
            **self.base,
            "ev": event,
            "t": time.time(),
            "run": ctx.run_id,
            "attempt": ctx.attempt,
            "token": str(ctx.run.lease_token),
            **fields,
        }
        os.write(self.fd, (json.dumps(record) + "\n").encode())  # one write: whole lines even when killed


def step_value(n: int, k: int) -> int:
    """The deterministic result of step k of run n."""
    return n * 1000 + k * k + 7


def expected_output(n: int) -> dict[str, Any]:
    values = [step_value(n, k) for k in range(STEPS)]
    return {"n": n, "values": values, "sum": sum(values)}


def make_handler(side_dsn: str, name: str, events: Events) -> Any:
    pid = os.getpid()

    async def chaos_workflow(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> dict[str, Any]:
        n = int(params["n"])
        sleeps = params["sleeps"]
        values = []
        events("handler_start", ctx, journal=sorted(ctx.journal))
        try:
            for k in range(STEPS):
                step_id = f"s{k}"

                async def body(k: int = k, step_id: str = step_id) -> dict[str, int]:
                    # The side record commits before the work starts: it says "this body began, here, then".
                    # body_enter comes first: the insert may be in flight when a SIGKILL hits, and its backend
                    # then records a start that is later than the kill.
                    events("body_enter", ctx, step=step_id)
                    async with await psycopg.AsyncConnection.connect(
                        side_dsn, autocommit=True, connect_timeout=10
                    ) as side:
                        await side.execute(
                            SIDE_INSERT, (ctx.run_id, step_id, ctx.attempt, pid, name, ctx.run.lease_token)
                        )
                    events("body_start", ctx, step=step_id)
                    await asyncio.sleep(float(sleeps[k]))
                    events("body_end", ctx, step=step_id)
                    return {"k": k, "v": step_value(n, k)}

                try:
                    result = await ctx.step(step_id, body)
                except BaseException as exc:
                    events("step_raised", ctx, step=step_id, error=f"{type(exc).__name__}: {exc}"[:300])
                    raise
                events("step_done", ctx, step=step_id)
                values.append(int(result["v"]))
        except BaseException as exc:
            events("handler_end", ctx, error=f"{type(exc).__name__}: {exc}"[:300])
            raise
        events("handler_end", ctx, error=None)
        return {"n": n, "values": values, "sum": sum(values)}

    return chaos_workflow


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--visibility", type=float, default=3.0)
    ap.add_argument("--poll-interval", type=float, default=1.0)
    ap.add_argument("--events", help="append this process's step events to this file (JSON lines)")
    args = ap.parse_args()
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format=f"%(asctime)s {args.name}[{os.getpid()}] %(levelname)s %(name)s: %(message)s",
    )
    store = await pgqrs.connect(args.dsn, max_size=args.concurrency + 2)
    worker = await (
        pgqrs.consumer(args.name, None, QUEUE)
        .handler(make_handler(args.dsn, args.name, Events(args.events, args.name)))
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
