"""A real worker process for tests/test_failover.py.

    python tests/ha_worker.py DSN NAME EXEC_DIR [--concurrency N] [--visibility S] [--poll-interval S]

It serves the workflow `ha`: three steps, each of which first records its execution outside the database (a
file in EXEC_DIR named RUN.STEP.PID.N, holding its start time) so that an execution cut off by a crash of the
database is counted too. Each step returns the name of that file; the output is {"i": i, "sq": i * i,
"execs": [the three names]} for the input {"i": i}. Prints "ready <worker id>" once registered.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import pgqrs

STEPS = ("a", "b", "c")
EXEC_DIR = Path(".")
_executions = itertools.count(1)


def record(run_id: int, step_id: str) -> str:
    """One execution of a step body: its file, named after it, holding its start time (epoch seconds)."""
    name = f"{run_id}.{step_id}.{os.getpid()}.{next(_executions)}"
    (EXEC_DIR / name).write_text(repr(time.time()))
    return name


async def ha(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> dict[str, Any]:
    execs = []
    for step_id in STEPS:

        async def body(step_id: str = step_id) -> str:
            name = record(ctx.run_id, step_id)
            await asyncio.sleep(0.005)
            return name

        execs.append(await ctx.step(step_id, body))
    return {"i": params["i"], "sq": params["i"] ** 2, "execs": execs}


async def main() -> None:
    global EXEC_DIR
    parser = argparse.ArgumentParser()
    parser.add_argument("dsn")
    parser.add_argument("name")
    parser.add_argument("exec_dir", type=Path)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--visibility", type=float, default=3.0)
    parser.add_argument("--poll-interval", type=float, default=30.0)  # long: wake-ups must come by NOTIFY
    args = parser.parse_args()
    EXEC_DIR = args.exec_dir
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s [{args.name} {os.getpid()}] %(name)s %(levelname)s %(message)s")
    async with await pgqrs.connect(args.dsn) as store:
        worker = await (pgqrs.consumer(args.name, None, "ha").handler(ha).concurrency(args.concurrency)
                        .visibility(args.visibility).poll_interval(args.poll_interval).create(store))
        print(f"ready {worker.id}", flush=True)
        await worker.poll_forever()


if __name__ == "__main__":
    asyncio.run(main())
