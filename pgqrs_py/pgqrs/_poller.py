"""How a worker's dispatch loop leases runs: pgqrs.dequeue on a pooled connection it keeps (no pool check-out
per poll). A worker running one run at a time lends that connection to its run (`lend`), which also sends its
completion with the next dequeue in the same transaction and round trip: the run's end and the next lease cost
one commit, not two."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

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

    def lend(self) -> LentConnection:
        """For the run of a worker that runs one at a time: a context manager giving the run this connection
        (no pool check-out per run), and the run's sender of its completion (LentConnection.call). The loop
        does not dequeue while that run is in flight; if it has to (the run was given up, its call hanging),
        it takes another connection, so that it never waits for the run's."""
        return LentConnection(self)

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

    async def _take_back(self, conn: AsyncConn) -> None:
        """Keep a connection a run gives back, if it is fit and none was taken meanwhile; else it goes back to
        the pool, which resets (a transaction left open) or discards it (broken, or mid-call)."""
        fit = not connection_lost(conn) and conn.info.transaction_status == TransactionStatus.IDLE
        if fit and self._conn is None:
            self._conn = conn
        else:
            await self.store.pool.putconn(conn)

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


class LentConnection:
    """Poller.lend: as a context manager it gives the run the poller's connection; `call` is the
    run's CompletionSender (run.py)."""

    carries = frozenset({_sql.COMPLETE_RUN})  # the run calls `call` takes

    def __init__(self, poller: Poller) -> None:
        self._poller = poller
        self._conn: AsyncConn | None = None

    async def __aenter__(self) -> AsyncConn:
        poller = self._poller
        self._conn = await poller._connection()
        poller._conn = None  # the run's until it gives it back
        return self._conn

    async def __aexit__(self, *exc: object) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await self._poller._take_back(conn)

    async def call(self, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """The run's completion (COMPLETE_RUN) and ``pgqrs.dequeue`` of one run in one statement, so in one
        transaction and one round trip, on the run's connection (_sql.COMPLETE_RUN_AND_DEQUEUE: lighter on the
        client than a pipeline of the two). Returns the completion's rows; the leased run is the loop's next
        `dequeue`. A completion the engine refuses rolls the dequeue back with it and is sent again alone, for
        its own error; so is one whose dequeue failed; a worker that is stopping sends it alone. Raises what
        Store.call raises, and GroupCommitLost when the connection was lost on the way (the outcome is
        unknown)."""
        conn, poller = self._conn, self._poller
        assert conn is not None, "a completion outside the lend"
        if poller.stopping.is_set():
            return await call_on(conn, query, params)
        sent = time.monotonic()
        try:
            cur = await conn.execute(_sql.COMPLETE_RUN_AND_DEQUEUE, (*params, *poller.dequeue_params(1)))
            rows = await cur.fetchall()
        except psycopg.Error as exc:
            if connection_lost(conn):
                raise GroupCommitLost(f"the connection was lost during a run's completion: {exc}") from exc
            return await call_on(conn, query, params)
        poller.add_ready([row[1:] for row in rows if row[1] is not None], sent)
        return [rows[0][:1]]
