"""A real worker process for tests/test_transaction_crash.py.

    python tests/txn_worker.py DSN NAME [--visibility S]

It serves the workflow `ledger`: one transaction step "debit" whose body inserts (run_id, pid) into the table
`ledger` on the step's connection, then marks that it has written (a row in `marks`, committed at once on a
connection of its own, so the test knows the body is inside its transaction), then sleeps `sleep` seconds
(input {"sleep": S}) on the run's first delivery only. The output is {"pid": pid}. Prints "ready <worker id>".
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

import psycopg

import pgqrs

TABLES = """
create table if not exists ledger (run_id bigint not null, pid integer not null);
create table if not exists marks (run_id bigint not null, pid integer not null, delivery integer not null)
"""
DSN = ""


async def ledger(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> dict[str, Any]:
    async def debit(conn: psycopg.AsyncConnection[Any]) -> dict[str, Any]:
        await conn.execute("insert into ledger (run_id, pid) values (%s, %s)", (ctx.run_id, os.getpid()))
        async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as mark:
            await mark.execute("insert into marks values (%s, %s, %s)",
                               (ctx.run_id, os.getpid(), ctx.attempt))
        if ctx.attempt == 1:
            await asyncio.sleep(float(params.get("sleep", 0)))
        return {"pid": os.getpid()}

    return await ctx.transaction_step("debit", debit)


async def main() -> None:
    global DSN
    parser = argparse.ArgumentParser()
    parser.add_argument("dsn")
    parser.add_argument("name")
    parser.add_argument("--visibility", type=float, default=30.0)
    args = parser.parse_args()
    DSN = args.dsn
    async with await pgqrs.connect(DSN) as store:
        await store.create_workflow("ledger")
        worker = await (pgqrs.consumer(args.name, None, "ledger").handler(ledger).visibility(args.visibility)
                        .create(store))
        print(f"ready {worker.id}", flush=True)
        await worker.poll_forever()


if __name__ == "__main__":
    asyncio.run(main())
