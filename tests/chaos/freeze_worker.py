"""A worker for tests/chaos/test_freeze_zombie.py: workflow `freeze` = step s1, an await of `gap` seconds
(ordinary handler code between two steps), step s2. Each step body's first act is a side effect: a line
"<run_id> <step_id> <pid> <epoch seconds>" appended to the file `out` (like an e-mail or HTTP request sent at
once), then it returns a value.

    python tests/chaos/freeze_worker.py --dsn DSN --name a --visibility 1.5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "pgqrs_py"))
import pgqrs  # noqa: E402

QUEUE = "freeze"


async def freeze_workflow(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> int:
    out = params["out"]

    def effect(step_id: str, value: int) -> Any:
        async def body() -> int:
            with open(out, "a") as f:  # the side effect happens at once, before any await
                f.write(f"{ctx.run_id} {step_id} {os.getpid()} {time.time():.6f}\n")
            return value

        return body

    a = await ctx.step("s1", effect("s1", 1))
    await asyncio.sleep(float(params["gap"]))
    b = await ctx.step("s2", effect("s2", 2))
    return int(a) + int(b)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--visibility", type=float, default=1.5)
    args = ap.parse_args()
    store = await pgqrs.connect(args.dsn)
    worker = await (
        pgqrs.consumer(args.name, None, QUEUE)
        .handler(freeze_workflow)
        .visibility(args.visibility)
        .poll_interval(0.2)
        .create(store)
    )
    print(f"READY {args.name} pid={os.getpid()}", flush=True)
    try:
        await worker.poll_forever()
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main())
