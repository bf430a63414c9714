"""How a worker's dispatch loop leases runs: pgqrs.dequeue on a pooled connection it keeps (no pool check-out
per poll). A worker running one run at a time also sends its run's completion here, with the next dequeue in
the same transaction and round trip (`call`): the run's end and the next lease cost one commit, not two."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg

from . import _sql
from ._acompat import Event
from ._conncheck import connection_lost
from ._groupcommit import GroupCommitLost
from ._outcome import hand_back
from .run import Message
from .store import AsyncConn, Store, call_on


class Poller:
    """The leases of one worker's dispatch loop. `params` are pgqrs.dequeue's but the batch size (queue,
    worker, -, visibility, version); once `stopping` is set, a completion comes without a lease."""

    carries = frozenset({_sql.COMPLETE_RUN})  # the run calls `call` takes (run.py)

    def __init__(self, store: Store, params: tuple[Any, ...], stopping: Event) -> None:
        self.store = store
        self.params = params
        self.stopping = stopping
        self._conn: AsyncConn | None = None
        # runs leased with completions (here or by group commit), not yet handed to the loop, and when
        self._ready: list[tuple[Message, float]] = []
        self._ready_lock = threading.Lock()  # in pgqrs.sync, group commit's sender is another thread

    async def dequeue(self, batch_size: int) -> tuple[list[Message], float]:
        """Up to `batch_size` runs leased by ``pgqrs.dequeue`` and when it was sent (monotonic): those leased
        with completions first, if any. Raises what Store.call raises."""
        with self._ready_lock:
            ready, self._ready = self._ready[:batch_size], self._ready[batch_size:]
        if ready:
            return [message for message, _ in ready], min(sent for _, sent in ready)
        sent = time.monotonic()
        rows = await self._call(_sql.DEQUEUE, self.dequeue_params(batch_size))
        return [Message(*row) for row in rows], sent

    def add_ready(self, rows: list[tuple[Any, ...]], sent: float) -> None:
        """Runs leased with completions at `sent` (monotonic): the loop's next `dequeue` takes them."""
        with self._ready_lock:
            self._ready.extend((Message(*row), sent) for row in rows)

    async def call(self, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """A run's completion (COMPLETE_RUN) and ``pgqrs.dequeue`` of one run in one transaction: one
        pipeline ended by one Sync, which PostgreSQL runs as one implicit transaction on this autocommit
        connection. Returns the completion's rows; the leased run is the next `dequeue`'s. A completion the
        engine refuses rolls the dequeue back with it and is sent again alone, for its own error; so is one
        whose dequeue failed. Raises what Store.call raises, and GroupCommitLost when the connection was lost
        on the way (the outcome is unknown)."""
        if self.stopping.is_set():
            return await self._call(query, params)
        conn = await self._connection()
        sent = time.monotonic()
        try:
            async with conn.pipeline():
                finish = await conn.execute(query, params)
                leased = await conn.execute(_sql.DEQUEUE, self.dequeue_params(1))
            rows = await finish.fetchall()
            self.add_ready(await leased.fetchall(), sent)
            return rows
        except psycopg.Error as exc:
            if connection_lost(conn):
                await self._release()
                raise GroupCommitLost(f"the connection was lost during a run's completion: {exc}") from exc
        except BaseException:  # cancelled on the way: the connection's state is unknown
            await self._release()
            raise
        return await self._call(query, params)

    def dequeue_params(self, batch_size: int) -> tuple[Any, ...]:
        """pgqrs.dequeue's parameters for this worker and `batch_size` runs."""
        return (self.params[0], self.params[1], batch_size, *self.params[2:])

    async def _connection(self) -> AsyncConn:
        """The kept connection. Before each call it is checked as the pool checks one at checkout (no round
        trip): one the server has closed goes back to the pool, which discards it, and another is taken."""
        if self._conn is not None and connection_lost(self._conn):
            await self._release()
        if self._conn is None:
            self._conn = await self.store.pool.getconn()
        return self._conn

    async def _call(self, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Store.call on the kept connection. A call that fails gives the connection back: the next one takes
        another."""
        conn = await self._connection()
        try:
            return await call_on(conn, query, params)
        except BaseException:
            await self._release()
            raise

    async def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self.store.pool.putconn(conn)

    async def close(self) -> None:
        """Hand back the runs leased with completions and not started (the worker is stopping), and give the
        connection back to the pool."""
        with self._ready_lock:
            ready, self._ready = self._ready, []
        for message, _ in ready:
            await hand_back(self.store, message)
        await self._release()
