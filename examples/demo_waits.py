"""The second chapter of `make demo` (examples/demo.py): durable waits and child workflows, with worker
processes serving examples/waits.py.

  * an order run sleeps (pgqrs.waiting_runs: kind sleep), then waits for its payment event (kind event); its
    worker is SIGKILLed while it waits, which changes nothing; the emit wakes it at once on a new worker;
  * a thumbnails run starts 20 resize child runs and waits for all of them (kind children) before any worker
    for them exists; the resize worker drains them, and the last one to finish wakes the parent, which sums
    their outputs.
"""

from __future__ import annotations

import signal
import time
import zlib
from pathlib import Path
from typing import Any

import psycopg
from examples.demo_support import TIMEOUT, DemoFailed, Worker, detail, say, wait_exit, wait_until

import pgqrs

FILES = [f"photos/{n:03d}.jpg" for n in range(1, 21)]


async def waits_chapter(dsn: str, logdir: Path, workers: list[Worker], store: pgqrs.Store,
                        conn: psycopg.AsyncConnection[dict[str, Any]], n: int) -> int:
    """Tell the chapter, its paragraphs numbered from `n`; returns the next number."""
    await store.create_workflow("order")
    await store.create_workflow("thumbnails")
    await store.create_workflow("resize")
    orders = Worker("orders", "examples.waits:order_workflow", dsn, logdir)
    thumbs = Worker("thumbnails", "examples.waits:thumbnails_workflow", dsn, logdir)
    workers += [orders, thumbs]
    order = int(await pgqrs.workflow("order").trigger({"order": 17, "cool_down": 1.5}).execute(store))
    parent = int(await pgqrs.workflow("thumbnails").trigger({"files": FILES}).execute(store))
    say(n, f"Durable waits and child workflows (examples/waits.py). Triggered order run {order} (a 1.5 s "
           f"cool-down, then it waits for its payment) and thumbnails run {parent} ({len(FILES)} files); "
           f"started an order worker (pid {orders.pid}) and a thumbnails worker (pid {thumbs.pid}).")

    waits = "select kind, key, until, pending from pgqrs.waiting_runs where run_id = %s and kind = %s"
    sleeping = await wait_until(conn, f"run {order} to sleep", waits, (order, "sleep"), [orders])
    until = sleeping[0]["until"].strftime("%H:%M:%S.%f")[:-3]
    say(n + 1, f"Run {order} sleeps: pgqrs.waiting_runs shows kind sleep until {until}; its lease is "
               "released, no worker slot is held.")
    event = await wait_until(conn, f"run {order} to wait for its payment", waits, (order, "event"), [orders])
    orders.proc.send_signal(signal.SIGKILL)
    await wait_exit(orders.proc)
    row = await (await conn.execute(
        "select r.status, m.lease_token from pgqrs.runs as r"
        " join pgqrs.messages as m on m.message_id = r.run_id where r.run_id = %s", (order,))).fetchone()
    if row is None or row["status"] != "WAITING" or row["lease_token"] is not None:
        raise DemoFailed(f"run {order} should be WAITING without a lease after the kill, got {row}")
    orders2 = Worker("orders2", "examples.waits:order_workflow", dsn, logdir)
    workers.append(orders2)
    say(n + 2, f"The cool-down is over; run {order} now waits for event {event[0]['key']} (kind event). Its "
               f"worker is SIGKILLed (pid {orders.pid}): the run is still WAITING, without a lease. A new "
               f"order worker starts (pid {orders2.pid}).")

    await wait_until(conn, "the new order worker to register",
                     "select 1 from pgqrs.worker_status where name = 'demo-orders2'", None, [orders2])
    emitted = time.monotonic()
    first = await store.emit_event("paid:17", {"amount": 120})
    again = await store.emit_event("paid:17", {"amount": 999})
    result = await pgqrs.run().status(order).store(store).result(timeout=TIMEOUT)
    took = (time.monotonic() - emitted) * 1000
    if (first, again) != (True, False) or result != {"order": 17, "status": "paid", "amount": 120}:
        raise DemoFailed(f"order run {order}: emits {first}, {again}; result {result}")
    say(n + 3, f"The payment webhook: store.emit_event('paid:17', {{'amount': 120}}) returned True (a second "
               f"emit: False, the first wins). The new worker was woken by NOTIFY and finished run {order} "
               f"{took:.0f} ms after the emit: {result}.")

    fan = await wait_until(conn, f"run {parent} to wait for its children", waits, (parent, "children"),
                           [thumbs])
    started = await (await conn.execute(
        "select count(*) as n from pgqrs.runs where parent_run_id = %s", (parent,))).fetchone()
    say(n + 4, f"Run {parent} started {started['n'] if started else 0} resize child runs (ctx.start_child, "
               f"one step each) and waits for them with ctx.gather: kind children, {fan[0]['pending']} "
               "pending, no worker held. No resize worker exists yet.")

    resize = Worker("resize", "examples.waits:resize_workflow", dsn, logdir, "--concurrency", "4")
    workers.append(resize)
    total = await pgqrs.run().status(parent).store(store).result(timeout=TIMEOUT)
    expected = sum(1000 + zlib.crc32(f.encode()) % 9000 for f in FILES)
    children = await (await conn.execute(
        "select status, count(*) as n from pgqrs.run_children(%s) group by status", (parent,))).fetchall()
    counts = [(c["status"], c["n"]) for c in children]
    if total != {"files": len(FILES), "bytes": expected} or counts != [("SUCCESS", len(FILES))]:
        raise DemoFailed(f"thumbnails run {parent}: {total}, children {children}")
    say(n + 5, f"A resize worker (pid {resize.pid}, concurrency 4) drained the {len(FILES)} children; the "
               f"last to finish made run {parent} visible in its own transaction, and its replay summed "
               f"them: {total}. `pgqrs run {parent}` lists the children.")

    codes = {w.label: await w.stop() for w in (orders2, thumbs, resize)}
    if any(codes.values()):
        raise DemoFailed(f"a worker did not exit 0 on SIGTERM: {codes}")
    detail("SIGTERM to the order, thumbnails and resize workers: "
           + ", ".join(f"{label} exited {code}" for label, code in codes.items()) + ".")
    return n + 6
