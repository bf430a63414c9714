"""A worker process for tests/test_resilience.py and tests/test_sync.py, in either flavour.

    python tests/resilience_worker.py DSN QUEUE --flavour async|sync [--concurrency N] [--nap SECONDS]
        [--name NAME] [--visibility SECONDS]

Workflow `QUEUE`: steps `double` (sync body), `nap` (sleeps --nap, so a restart or a killed backend lands
mid-step) and `square`; output {"n", "double", "square"}. Prints "ready <worker id>" once registered, logs to
stderr, exits 0 after SIGTERM (graceful stop).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "pgqrs_py"))

import pgqrs  # noqa: E402
from pgqrs import sync as pgqrs_sync  # noqa: E402


def expected(n: int) -> dict[str, int]:
    return {"n": n, "double": 2 * n, "square": n * n}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dsn")
    parser.add_argument("queue")
    parser.add_argument("--flavour", choices=("async", "sync"), default="async")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--nap", type=float, default=0.1)
    parser.add_argument("--name", default="res-worker")
    parser.add_argument("--visibility", type=float, default=30.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(threadName)s: %(message)s")
    if args.flavour == "async":
        asyncio.run(run_async(args))
    else:
        run_sync(args)


async def run_async(args: argparse.Namespace) -> None:
    async def nap() -> str:
        await asyncio.sleep(args.nap)
        return "rested"

    @pgqrs.workflow(name=args.queue)
    async def handler(ctx: Any, params: dict[str, int]) -> dict[str, int]:
        n = params["n"]
        double = await ctx.step("double", lambda: 2 * n)
        await ctx.step("nap", nap)
        square = await ctx.step("square", lambda: n * n)
        return {"n": n, "double": double, "square": square}

    store = await pgqrs.connect(args.dsn)
    await store.create_workflow(args.queue)
    worker = await (pgqrs.consumer(args.name, 8080, args.queue).handler(handler)
                    .concurrency(args.concurrency).visibility(args.visibility).create(store))
    print(f"ready {worker.id}", flush=True)
    await worker.poll_forever()
    await store.close()


def run_sync(args: argparse.Namespace) -> None:
    def nap() -> str:
        time.sleep(args.nap)
        return "rested"

    @pgqrs_sync.workflow(name=args.queue)
    def handler(ctx: Any, params: dict[str, int]) -> dict[str, int]:
        n = params["n"]
        double = ctx.step("double", lambda: 2 * n)
        ctx.step("nap", nap)
        square = ctx.step("square", lambda: n * n)
        return {"n": n, "double": double, "square": square}

    store = pgqrs_sync.connect(args.dsn)
    store.create_workflow(args.queue)
    worker = (pgqrs_sync.consumer(args.name, 8080, args.queue).handler(handler)
              .concurrency(args.concurrency).visibility(args.visibility).create(store))
    print(f"ready {worker.id}", flush=True)
    worker.poll_forever()
    store.close()


if __name__ == "__main__":
    main()
