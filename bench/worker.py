"""A benchmark worker: `python bench/worker.py pgqrs|raw DSN INDEX [--concurrency K] [--first-step-log F]
[--workload e2e|wakeup|fanout]`.

Sets up, prints `ready`, waits for `go` on stdin, then runs the worker loop until SIGTERM.
pgqrs: the package's stock loop, `pgqrs.consumer(name, None, "bench_wf").handler(bench_wf).concurrency(K)`
+ `poll_forever()` with its defaults (visibility 30 s, poll interval 2 s, LISTEN wake-up).
raw: the raw-SQL bound's loop (rawbound.py), one run in flight.
--workload wakeup: the event wake-up workflow and its raw bound instead (wakeup.py).
--workload fanout: the fan-out/fan-in workflow and its raw bound, one run in flight (fanout.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lib  # noqa: E402


async def pgqrs_worker(db_dsn: str, idx: int, concurrency: int) -> None:
    import benchwf

    import pgqrs

    store = await pgqrs.connect(db_dsn, max_size=concurrency + 2)
    consumer = await (pgqrs.consumer(f"bench-{idx}", None, benchwf.WF).handler(benchwf.bench_wf)
                      .concurrency(concurrency).create(store))
    lib.wait_go()
    try:
        await consumer.poll_forever()
    finally:
        await store.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("engine", choices=["pgqrs", "raw"])
    ap.add_argument("dsn")
    ap.add_argument("index", type=int)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--first-step-log")
    ap.add_argument("--workload", choices=["e2e", "wakeup", "fanout"], default="e2e")
    args = ap.parse_args()
    if args.workload == "wakeup":
        import wakeup

        if args.engine == "pgqrs":
            asyncio.run(wakeup.pgqrs_worker(args.dsn, args.index, args.concurrency))
        else:
            wakeup.raw_worker(args.dsn, args.index)
        return
    if args.workload == "fanout":
        import fanout

        if args.engine == "pgqrs":
            asyncio.run(fanout.pgqrs_worker(args.dsn, args.index))
        else:
            fanout.raw_worker(args.dsn, args.index)
        return
    log = open(args.first_step_log, "a") if args.first_step_log else None
    if args.engine == "pgqrs":
        import benchwf

        benchwf.first_step_log = log
        asyncio.run(pgqrs_worker(args.dsn, args.index, args.concurrency))
    else:
        import rawbound

        rawbound.worker(args.dsn, args.index, lib.wait_go, log)


if __name__ == "__main__":
    main()
