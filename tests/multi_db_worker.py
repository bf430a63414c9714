"""One worker process serving queues of two databases (docs/scaling.md), for tests/test_multi_db_worker.py.

    python tests/multi_db_worker.py DSN_A DSN_B

A store per database and a consumer per queue (`scale` in each), gathered on one event loop. Each run returns
{"db": the database's name, "i": its input's i}. Prints "ready 0" once both are registered.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from psycopg.conninfo import conninfo_to_dict

import pgqrs


def handler_for(dbname: str) -> Any:
    async def handler(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"db": dbname, "i": params["i"]}

    return handler


async def main(dsns: list[str]) -> None:
    stores = [await pgqrs.connect(dsn) for dsn in dsns]
    consumers = []
    for store, dsn in zip(stores, dsns, strict=True):
        dbname = str(conninfo_to_dict(dsn)["dbname"])
        consumers.append(await pgqrs.consumer(f"multi-{dbname}", None, "scale").handler(handler_for(dbname))
                         .poll_interval(0.5).create(store))
    print("ready 0", flush=True)
    await asyncio.gather(*(c.poll_forever(shutdown_timeout=5) for c in consumers))
    for store in stores:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
