"""A worker process running one version of the code of workflow `deploy`, for tests/test_versions.py.

    python tests/versions_worker.py DSN NAME VERSION

Version v1 asks for the steps  fetch, <wait for the event "go:<run id>">, charge.
Version v2 renamed the first:  load,  <wait>,                              charge.
A v1 run replayed by v2 code would drift (pgqrs.ReplayDrift: load asked where fetch is recorded); the worker
serves only runs of its version (`@pgqrs.workflow(version=...)`), so that never happens. Every step body
records (run_id, step_id, version, pid) in the side table `executions` first; the output is {step: VERSION}.
Prints "ready <worker id>" once registered.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

import psycopg

import pgqrs

STEPS = {"v1": ["fetch", "charge"], "v2": ["load", "charge"]}
SIDE_TABLE = """
create table if not exists executions (
    run_id bigint not null, step_id text not null, version text not null, pid integer not null
)"""


async def main(dsn: str, name: str, version: str) -> None:
    first, last = STEPS[version]

    async def body(run_id: int, step_id: str) -> str:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await conn.execute("insert into executions values (%s, %s, %s, %s)",
                               (run_id, step_id, version, os.getpid()))
        return version

    @pgqrs.workflow(name="deploy", version=version)
    async def deploy(ctx: pgqrs.WorkflowContext, params: Any) -> dict[str, str]:
        out = {first: await ctx.step(first, lambda: body(ctx.run_id, first))}
        await ctx.wait_for_event(f"go:{ctx.run_id}")
        out[last] = await ctx.step(last, lambda: body(ctx.run_id, last))
        return out

    store = await pgqrs.connect(dsn)
    await store.create_workflow("deploy", {"max_attempts": 1})
    worker = await (pgqrs.consumer(name, None, "deploy").handler(deploy).concurrency(4).visibility(5)
                    .create(store))
    print(f"ready {worker.id}", flush=True)
    await worker.poll_forever()
    await store.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(main(*sys.argv[1:4]))
