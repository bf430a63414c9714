"""Group commit: a worker running several runs at once sends the step and run completions they make at the
same moment together, in one transaction on a connection of its own: one round trip and one WAL flush for
all of them instead of one each. Nothing waits to fill a batch: a call goes out at once when a sender is
idle, and the calls that arrive while a batch is on its way make up the next one. Two senders (lanes, each
with its own connection) take turns, so that the worker's runs prepare one batch while the server runs the
other: with one, the worker and the server would take turns, each idle while the other works. A batch that
finishes runs also leases as many new ones in the same transaction (the poller hands them to the dispatch
loop).

Each call keeps its own fencing: the engine checks every call's lease as it always does. A call the engine
refuses (a lost lease, a conflict) aborts the batch's transaction, so nothing of it is kept, and the batch
is sent again one call per transaction: the refused call raises its own error and the others take effect.
A caller returns only once the transaction holding its call has committed, so no step body starts before the
write that precedes it is durable. docs/reliability.md, "Group commit", has the rest.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg

from . import _sql
from ._acompat import Event, cancel_all, spawn, wait_event, wait_tasks
from ._conncheck import connection_lost
from .store import AsyncConn, Store, call_on, conn_kwargs

if TYPE_CHECKING:
    from ._poller import Poller

log = logging.getLogger("pgqrs.worker")

# The calls a worker's runs make most, which group commit carries; the others go out on the run's connection.
GROUPED = frozenset({_sql.COMPLETE_STEP, _sql.COMPLETE_RUN})
MAX_BATCH = 64  # calls per transaction: a bound on the time a batch holds its rows locked
IDLE_CHECK = 0.5  # seconds between looks at `closing` while no call comes
LANES = 2  # senders side by side (see above): each holds a connection of its own


class GroupCommitLost(psycopg.OperationalError):
    """The call's outcome is unknown: the sender's connection was lost while its batch was on its way, or the
    sender stopped before sending it. A worker treats it as its own lost connection (the run goes back to
    the queue at once, from its last recorded step)."""


@dataclass(eq=False)
class _Call:
    query: str
    params: tuple[Any, ...]
    done: Event = field(default_factory=Event)
    rows: list[tuple[Any, ...]] | None = None
    error: BaseException | None = None


class GroupCommit:
    """The senders of one worker (`loop`: its lanes, each a task of its own) and the calls its runs hand it
    (`call`)."""

    carries = GROUPED

    def __init__(self, store: Store, poller: Poller | None = None, lanes: int = LANES) -> None:
        self.store = store
        self.poller = poller  # leases the next runs with a batch's run completions (_poller.py)
        self.batches = 0  # transactions sent, and the calls they carried (tests, docs/benchmarks.md)
        self.calls = 0
        self.lanes = [_Lane(self) for _ in range(lanes)]
        self._pending: list[_Call] = []
        self._lock = threading.Lock()  # the pending calls; in pgqrs.sync the runs are threads
        self._wake = Event()
        self._closed = True  # until `loop` runs, and after: calls go out on their own
        self._finishing = False  # a lane's batch on its way holds run completions

    async def call(self, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Send one engine call with the others of its moment and return its rows once committed. Raises
        what Store.call raises, and GroupCommitLost."""
        item = _Call(query, params)
        with self._lock:
            closed = self._closed
            if not closed:
                self._pending.append(item)
        if closed:
            return await self.store.call(query, params)
        self._wake.set()
        await wait_event(item.done, None)
        if item.error is not None:
            raise item.error
        assert item.rows is not None
        return item.rows

    async def loop(self, closing: Event) -> None:
        """Send the pending calls, batch after batch on every lane, until `closing` and nothing is left."""
        with self._lock:
            self._closed = False
        others = [spawn(lane.loop, closing, name=f"pgqrs-commit-lane-{i}")
                  for i, lane in enumerate(self.lanes[1:], 1)]
        try:
            await self.lanes[0].loop(closing)
            while await wait_tasks(others, IDLE_CHECK):  # the other lanes end once their batch is settled
                pass
        finally:
            await cancel_all(others)
            with self._lock:
                self._closed = True
                left, self._pending = self._pending, []
            _settle(left, GroupCommitLost("the worker's group commit stopped before sending the call"))
            for lane in self.lanes:
                await lane.close()

    def _take(self, closing: bool) -> list[_Call] | None:
        """The next batch; None once `closing` and nothing is pending (the other lanes woken to see it).
        While one lane's batch finishes runs, the other lanes leave the run completions pending: a child's
        completion locks its parent's rows (pgqrs._child_finished), so two batches finishing children of
        the same parents in opposite orders could deadlock; one batch at a time finishing runs cannot."""
        with self._lock:
            if not self._pending and closing:
                self._closed = True
                self._wake.set()
                return None
            batch: list[_Call] = []
            left: list[_Call] = []
            for item in self._pending:
                finishes = item.query == _sql.COMPLETE_RUN
                fits = len(batch) < MAX_BATCH and not (finishes and self._finishing)
                (batch if fits else left).append(item)
            self._pending = left
            if len(batch) == MAX_BATCH and any(item.query != _sql.COMPLETE_RUN or not self._finishing
                                               for item in left):
                self._wake.set()  # more than one batch's worth: another lane takes the rest
            if any(item.query == _sql.COMPLETE_RUN for item in batch):
                self._finishing = True
            if batch:
                self.batches += 1
                self.calls += len(batch)
            return batch

    def _sent(self, batch: list[_Call]) -> None:
        """A lane is done with `batch`: if it finished runs, the run completions left pending may go now."""
        if any(item.query == _sql.COMPLETE_RUN for item in batch):
            with self._lock:
                self._finishing = False
                if self._pending:
                    self._wake.set()

    def _leases_with(self, batch: list[_Call]) -> int:
        """How many runs to lease with the batch: one per run completion in it, while the worker takes
        work."""
        if self.poller is None or self.poller.stopping.is_set():
            return 0
        return sum(item.query == _sql.COMPLETE_RUN for item in batch)


class _Lane:
    """One sender of a GroupCommit: a batch at a time, in a transaction on a connection of its own."""

    def __init__(self, group: GroupCommit) -> None:
        self.group = group
        self.conn: AsyncConn | None = None

    async def loop(self, closing: Event) -> None:
        group = self.group
        while True:
            await wait_event(group._wake, IDLE_CHECK)
            group._wake.clear()
            batch = group._take(closing.is_set())
            if batch is None:
                return
            if batch:
                try:
                    await self._send(batch)
                finally:
                    group._sent(batch)

    async def _send(self, batch: list[_Call]) -> None:
        try:
            lease = self.group._leases_with(batch)
            if len(batch) == 1 and not lease:
                await self._one(batch[0])
                return
            try:
                results = await self._together(batch, lease)
            except psycopg.Error as exc:
                if self.conn is None:
                    _settle(batch, GroupCommitLost(f"the connection was lost during a batch: {exc}"))
                    return
                log.debug("a batch of %d calls was refused (%s); sending them one by one", len(batch), exc)
                for item in batch:
                    await self._one(item)
                return
            for item, rows in zip(batch, results, strict=True):
                item.rows = rows
                item.done.set()
        finally:  # cancelled mid-batch (the worker stopping): whatever is not settled has an unknown outcome
            _settle([item for item in batch if not item.done.is_set()],
                         GroupCommitLost("the batch holding the call was interrupted"))

    async def _together(self, batch: list[_Call], lease: int) -> list[list[tuple[Any, ...]]]:
        """The batch in one transaction and one round trip: the calls in one pipeline, ended by its one Sync,
        with ``pgqrs.dequeue`` of `lease` runs last (handed to the poller once committed, before any caller
        returns: a run's slot frees only after that). On this autocommit connection PostgreSQL runs the
        statements up to a Sync as one implicit transaction, committed at the Sync; a call refused rolls back
        all of them, the dequeue too, and the server skips the rest. (psycopg's conn.transaction() inside a
        pipeline syncs after BEGIN, after the calls and after COMMIT: three round trips and a lot more client
        CPU per batch.)"""
        conn = await self._connection()
        try:
            sent = time.monotonic()
            async with conn.pipeline():
                cursors = [await conn.execute(item.query, item.params) for item in batch]
                if lease and self.group.poller is not None:
                    leased = await conn.execute(_sql.DEQUEUE, self.group.poller.dequeue_params(lease))
            results = [await cursor.fetchall() for cursor in cursors]
            if lease and self.group.poller is not None:
                self.group.poller.add_ready(await leased.fetchall(), sent)
            return results
        except psycopg.Error:
            await self._forget_if_lost(conn)
            raise

    async def _one(self, item: _Call) -> None:
        """One call in a transaction of its own; its error (mapped like Store.call's) is the caller's."""
        conn = await self._connection()
        try:
            item.rows = await call_on(conn, item.query, item.params)
        except psycopg.OperationalError as exc:
            await self._forget_if_lost(conn)
            lost = self.conn is None
            _settle([item], GroupCommitLost(f"the connection was lost: {exc}") if lost else exc)
            return
        except Exception as exc:  # the engine's refusal (a pgqrs.errors class) or another database error
            _settle([item], exc)
            return
        item.done.set()

    async def _connection(self) -> AsyncConn:
        """The sender's own connection (none of the pool's: a run's step body may hold those). One the server
        closed while it was idle (a restart, pg_terminate_backend) is found before the batch, without a round
        trip, and replaced: sent on it, the batch would fail with an unknown outcome and its runs go back to
        the queue, their finished step bodies to run again."""
        if self.conn is not None and connection_lost(self.conn):
            await self.conn.close()
            self.conn = None
        if self.conn is None:
            self.conn = await psycopg.AsyncConnection.connect(self.group.store.dsn, **conn_kwargs())
        return self.conn

    async def _forget_if_lost(self, conn: AsyncConn) -> None:
        if connection_lost(conn):
            await conn.close()
            self.conn = None

    async def close(self) -> None:
        """Close the lane's connection."""
        if self.conn is not None:
            await self.conn.close()
            self.conn = None


def _settle(items: list[_Call], exc: BaseException) -> None:
    for item in items:
        item.error = exc
        item.done.set()
