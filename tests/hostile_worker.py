"""A real worker process for tests/test_hostile.py: a workflow that does what production does to an engine.

    python tests/hostile_worker.py DSN NAME [--visibility S] [--sync]

It serves the workflow `hostile`, whose input says what to do (keys are optional, steps run in this order):
    {"pid_file": "/tmp/x",      the handler writes its run connection's backend pid there (1st delivery only)
     "wait": 2.0,               step "wait" sleeps this long (every delivery)
     "exit": true,              step "exit" ends the process with os._exit(3) (every delivery)
     "big_mb": 40,              step "big" returns a string of this many MiB
     "steps": 5, "nap": 0.5}    steps "s1".."sN", each sleeping `nap` seconds
The output is {"fencing_token": ctx.fencing_token, "attempt": ctx.attempt}. Every step body appends
"<run> <step> <pid>" to the file $HOSTILE_LOG (one line per execution), so a test can count executions.
--sync runs the same with pgqrs.sync. Prints "ready <worker id>" once registered.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import pgqrs
import pgqrs.sync


def record(run_id: int, step_id: str) -> None:
    with open(os.environ["HOSTILE_LOG"], "a") as log:
        log.write(f"{run_id} {step_id} {os.getpid()}\n")


def body(ctx: Any, step_id: str, params: dict[str, Any]) -> Any:
    def run() -> Any:
        record(ctx.run_id, step_id)
        if step_id == "wait":
            time.sleep(float(params["wait"]))
        elif step_id == "exit":
            os._exit(3)
        elif step_id == "big":
            return "x" * (int(params["big_mb"]) << 20)
        elif step_id.startswith("s"):
            time.sleep(float(params.get("nap", 0)))
        return step_id

    return run


def plan(params: dict[str, Any]) -> list[str]:
    steps = [s for s in ("wait", "exit") if s in params] + (["big"] if "big_mb" in params else [])
    return steps + [f"s{i}" for i in range(1, int(params.get("steps", 0)) + 1)]


BACKEND_PID = "select pg_backend_pid()"


async def hostile(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> dict[str, Any]:
    if "pid_file" in params and ctx.attempt == 1:
        row = await (await ctx.run.conn.execute(BACKEND_PID)).fetchone()  # type: ignore[union-attr]
        Path(params["pid_file"]).write_text(str(row[0]))
    for step_id in plan(params):
        await ctx.step(step_id, body(ctx, step_id, params))
    return {"fencing_token": ctx.fencing_token, "attempt": ctx.attempt}


def hostile_sync(ctx: pgqrs.sync.WorkflowContext, params: dict[str, Any]) -> dict[str, Any]:
    if "pid_file" in params and ctx.attempt == 1:
        row = ctx.run.conn.execute(BACKEND_PID).fetchone()  # type: ignore[union-attr]
        Path(params["pid_file"]).write_text(str(row[0]))
    for step_id in plan(params):
        ctx.step(step_id, body(ctx, step_id, params))
    return {"fencing_token": ctx.fencing_token, "attempt": ctx.attempt}


async def main_async(args: argparse.Namespace) -> None:
    async with await pgqrs.connect(args.dsn) as store:
        worker = await (pgqrs.consumer(args.name, None, "hostile").handler(hostile)
                        .visibility(args.visibility).create(store))
        print(f"ready {worker.id}", flush=True)
        await worker.poll_forever()


def main_sync(args: argparse.Namespace) -> None:
    with pgqrs.sync.connect(args.dsn) as store:
        worker = (pgqrs.sync.consumer(args.name, None, "hostile").handler(hostile_sync)
                  .visibility(args.visibility).create(store))
        print(f"ready {worker.id}", flush=True)
        worker.poll_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("dsn")
    parser.add_argument("name")
    parser.add_argument("--visibility", type=float, default=30.0)
    parser.add_argument("--sync", action="store_true")
    arguments = parser.parse_args()
    prefix = f"%(asctime)s [{arguments.name} {os.getpid()}]"
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"{prefix} %(name)s %(levelname)s %(message)s")
    if arguments.sync:
        main_sync(arguments)
    else:
        asyncio.run(main_async(arguments))
