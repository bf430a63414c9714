"""The dispatch loop's leases (pgqrs/_poller.py): its dequeues on a connection it keeps."""

from __future__ import annotations

import asyncio
import select
from typing import Any

import psycopg

import pgqrs


async def _wait_finished(store: pgqrs.Store, run_ids: list[int], seconds: float) -> list[pgqrs.RunInfo]:
    infos = []
    for run_id in run_ids:
        for _ in range(int(seconds / 0.05)):
            info = await pgqrs.run().status(run_id).store(store).get()
            if info.status in ("SUCCESS", "ERROR", "CANCELLED"):
                break
            await asyncio.sleep(0.05)
        infos.append(info)
    return infos


def test_the_dispatch_loop_replaces_its_connection_when_the_server_closed_it(db: str, caplog: Any) -> None:
    """The dispatch loop keeps one pooled connection for its dequeues. When the server closes it while the
    worker is idle (pg_terminate_backend, a restart), the next dequeue takes another connection at once: no
    failed dequeue, no loop error, and the run that woke the worker runs."""

    async def one(ctx: pgqrs.WorkflowContext, params: dict[str, int]) -> int:
        return params["n"]

    async def scenario() -> None:
        async with await pgqrs.connect(db) as store:
            await store.create_workflow("pfk")
            worker = await pgqrs.consumer("pfk-worker", None, "pfk").handler(one).create(store)
            task = asyncio.create_task(worker.poll_forever())
            try:
                for _ in range(100):  # the first (empty) dequeue took the connection
                    if worker._poller._conn is not None:
                        break
                    await asyncio.sleep(0.05)
                held = worker._poller._conn
                assert held is not None
                pid = held.info.backend_pid
                with psycopg.connect(db, autocommit=True) as admin:
                    admin.execute("select pg_terminate_backend(%s)", (pid,))
                    while admin.execute("select 1 from pg_stat_activity where pid = %s", (pid,)).fetchone():
                        await asyncio.sleep(0.02)
                # the server's goodbye has reached the worker's end (a backend leaves pg_stat_activity before
                # its socket closes): from now on the check before the next dequeue must see it
                readable, _, _ = select.select([held.pgconn.socket], [], [], 5)
                assert readable
                run = int((await pgqrs.workflow("pfk").trigger({"n": 7}).execute(store)).id)
                (info,) = await _wait_finished(store, [run], 10)
            finally:
                worker.stop()
                await asyncio.wait_for(task, 30)
            assert (info.status, info.output_value) == ("SUCCESS", 7)
            assert worker._poller._conn is None  # given back to the pool when the loop ended
            assert not [r for r in caplog.records if "dequeue failed" in r.getMessage()]

    asyncio.run(scenario())
