"""How a worker's dispatch loop leases runs: pgqrs.dequeue on a pooled connection it keeps (no pool check-out
per poll)."""

from __future__ import annotations

import time
from typing import Any

from . import _sql
from ._conncheck import connection_lost
from .run import Message
from .store import AsyncConn, Store, call_on


class Poller:
    """The leases of one worker's dispatch loop. `params` are pgqrs.dequeue's but the batch size (queue,
    worker, -, visibility, version)."""

    def __init__(self, store: Store, params: tuple[Any, ...]) -> None:
        self.store = store
        self.params = params
        self._conn: AsyncConn | None = None

    async def dequeue(self, batch_size: int) -> tuple[list[Message], float]:
        """Up to `batch_size` runs leased by ``pgqrs.dequeue`` and when it was sent (monotonic). Raises what
        Store.call raises."""
        sent = time.monotonic()
        params = (self.params[0], self.params[1], batch_size, *self.params[2:])
        return [Message(*row) for row in await self._call(_sql.DEQUEUE, params)], sent

    async def _call(self, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Store.call on the kept connection. Before each call it is checked as the pool checks one at
        checkout (no round trip): one the server has closed goes back to the pool, which discards it, and
        another is taken. A call that fails gives the connection back too: the next one takes another."""
        if self._conn is not None and connection_lost(self._conn):
            await self._release()
        if self._conn is None:
            self._conn = await self.store.pool.getconn()
        try:
            return await call_on(self._conn, query, params)
        except BaseException:
            await self._release()
            raise

    async def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self.store.pool.putconn(conn)

    async def close(self) -> None:
        """Give the connection back to the pool."""
        await self._release()
