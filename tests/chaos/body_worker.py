"""A worker for tests/chaos/test_thread_bodies.py, in either flavour: workflow `bodies` has one step whose
body is a plain function (so it runs in a thread) that lasts `--body-seconds`. The body appends lines
"<event> <run_id> <pid> <epoch seconds>" to the file `--out`: `start` first, then `tick` every 50 ms while it
runs, then `end`, so a test can tell when each process was running which body.

    python tests/chaos/body_worker.py --dsn DSN --name a --flavour sync --out FILE --body-seconds 3 \
        [--concurrency N] [--visibility S] [--shutdown-timeout S]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "pgqrs_py"))
import pgqrs  # noqa: E402
import pgqrs.sync  # noqa: E402

QUEUE = "bodies"
OUT = ""
BODY_SECONDS = 0.0


def note(event: str, run_id: int) -> None:
    """One line, one write(2) on an O_APPEND descriptor: lines of concurrent writers never mix."""
    fd = os.open(OUT, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{event} {run_id} {os.getpid()} {time.time():.6f}\n".encode())
    finally:
        os.close(fd)


def body(run_id: int) -> int:
    note("start", run_id)
    until = time.monotonic() + BODY_SECONDS
    while time.monotonic() < until:
        time.sleep(0.05)
        note("tick", run_id)
    note("end", run_id)
    return os.getpid()


async def async_handler(ctx: pgqrs.WorkflowContext, params: Any) -> int:
    return int(await ctx.step("work", lambda: body(ctx.run_id)))


def sync_handler(ctx: pgqrs.sync.WorkflowContext, params: Any) -> int:
    return int(ctx.step("work", lambda: body(ctx.run_id)))


async def serve_async(args: argparse.Namespace) -> None:
    async with await pgqrs.connect(args.dsn) as store:
        worker = await (
            pgqrs.consumer(args.name, None, QUEUE)
            .handler(async_handler)
            .concurrency(args.concurrency)
            .visibility(args.visibility)
            .poll_interval(0.2)
            .create(store)
        )
        print(f"ready {worker.id}", flush=True)
        await worker.poll_forever(shutdown_timeout=args.shutdown_timeout)


def serve_sync(args: argparse.Namespace) -> None:
    with pgqrs.sync.connect(args.dsn) as store:
        worker = (
            pgqrs.sync.consumer(args.name, None, QUEUE)
            .handler(sync_handler)
            .concurrency(args.concurrency)
            .visibility(args.visibility)
            .poll_interval(0.2)
            .create(store)
        )
        print(f"ready {worker.id}", flush=True)
        worker.poll_forever(shutdown_timeout=args.shutdown_timeout)


def main() -> None:
    global OUT, BODY_SECONDS
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--flavour", choices=["async", "sync"], required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--body-seconds", type=float, required=True)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--visibility", type=float, default=3.0)
    ap.add_argument("--shutdown-timeout", type=float, default=None)
    args = ap.parse_args()
    OUT, BODY_SECONDS = args.out, args.body_seconds
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s [{args.name} {os.getpid()}] %(levelname)s %(message)s")
    if args.flavour == "async":
        asyncio.run(serve_async(args))
    else:
        serve_sync(args)
    print("stopped", flush=True)


if __name__ == "__main__":
    main()
