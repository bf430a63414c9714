"""Sync stand-ins for async-only helpers of the generated modules (hand-written; see scripts/gen_sync.py)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any


def call_body(fn: Callable[[], Any], guard: Callable[[], AbstractContextManager[None]]) -> Any:
    """Run a step body in the calling thread (a sync worker's heartbeats have their own thread), inside
    `guard()` (it refuses a body whose lease is gone; see pgqrs.workflow.call_body); an awaitable it returns
    (an `async def` body) is run to completion on a private event loop."""
    with guard():
        result = fn()
        if inspect.isawaitable(result):
            result = asyncio.run(_wait(result))
        return result


async def _wait(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


class CancelledError(BaseException):
    """Stands for asyncio.CancelledError in generated code. Sync runs are never cancelled: never raised."""
