"""Durable waits and child workflows, as workflows a worker process serves (examples/demo.py runs them):

    python -m pgqrs worker examples.waits:order_workflow        # sleeps, then waits for its payment event
    python -m pgqrs worker examples.waits:thumbnails_workflow   # starts a child run per file, sums them up
    python -m pgqrs worker examples.waits:resize_workflow --concurrency 4   # the children

An order cools down (a durable sleep: no worker held), then waits for the event `paid:<order>`, which
`store.emit_event` (or `pgqrs emit`, or `select pgqrs.emit_event(...)`) sends, e.g. from a payment webhook.
A thumbnails run fans out: one `resize` child run per file (`ctx.start_child`), then waits for all of them
(`ctx.gather`) without holding a worker; the last child to finish wakes it, and it sums their outputs.
"""

from __future__ import annotations

import zlib
from typing import Any

import pgqrs
from pgqrs import workflow


@workflow(name="order")
async def order_workflow(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> dict[str, Any]:
    """Cool down for `cool_down` seconds, then wait (at most an hour) for the order's payment."""
    await ctx.sleep(float(params.get("cool_down", 1)))
    try:
        payment = await ctx.wait_for_event(f"paid:{params['order']}", timeout=3600)
    except pgqrs.WaitTimeout:
        return {"order": params["order"], "status": "expired"}
    return {"order": params["order"], "status": "paid", "amount": payment["amount"]}


@workflow(name="thumbnails")
async def thumbnails_workflow(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> dict[str, Any]:
    """One resize child per file, all waited for at once; the sum of their thumbnail sizes."""
    children = [await ctx.start_child("resize", {"file": f}) for f in params["files"]]
    sizes = await ctx.gather(*children)
    return {"files": len(sizes), "bytes": sum(s["bytes"] for s in sizes)}


@workflow(name="resize")
async def resize_workflow(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> dict[str, Any]:
    """A stand-in for real image work: a thumbnail size that depends on the file name only."""

    async def resize() -> dict[str, Any]:
        return {"file": params["file"], "bytes": 1000 + zlib.crc32(params["file"].encode()) % 9000}

    return await ctx.step("resize", resize)
