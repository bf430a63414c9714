"""Waiting for runs to finish: one listener per store serves every `result()` waiter of that store.

A waiter holds no pooled connection. The store's listener has a connection of its own, outside the pool,
opened at the first waiter and closed with the store. It LISTENs on pgqrs_runs, where the engine announces
every finished run by a token: a keyed hash of the run id (pgqrs.runs_channel_key), so that the channel tells
a non-member nothing. A token that belongs to a run waited for makes the listener read the status of those
runs, in one query, and hand each finished one to its waiters. Safety net: after every (re)connect, and every
SWEEP_INTERVAL seconds, it reads the status of every run waited for (a notification sent while it was away is
lost). A lost database stops nothing: the listener reconnects with backoff and checks again.

With a replica (`read_dsn`), the listener still LISTENs on the primary (a standby cannot LISTEN) but reads
the runs' status from the replica; a run announced finished that the replica does not show finished yet is
read from it again every LAG_RECHECK seconds, and from the primary once the replica's max_staleness has
passed (pgqrs/_pools.py).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from typing import Any

import psycopg

from . import _sql
from ._acompat import Event, Task, cancel_all, sleep, spawn, wait_event, wait_tasks
from ._json import ADAPTERS
from ._pools import ReplicaReads
from .errors import PgqrsError

log = logging.getLogger("pgqrs.results")

SWEEP_INTERVAL = 5.0  # seconds between two checks of every run waited for
WAIT_SLICE = 0.5  # the longest wait for notifications, so that a closing store is noticed soon
LAG_RECHECK = 0.05  # seconds between two reads on the replica of a run announced finished that it lacks


def run_token(key: bytes, run_id: int) -> str:
    """The token pgqrs._archive_message announces when run `run_id` finishes."""
    return hashlib.sha256(key + str(run_id).encode()).hexdigest()[:16]


class Waiter:
    """One `result()` call: set once its run is finished (`row`: its run_status row) or cannot be read
    (`error`)."""

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self.done = Event()
        self.row: tuple[Any, ...] | None = None
        self.error: Exception | None = None

    def finish(self, row: tuple[Any, ...] | None, error: Exception | None = None) -> None:
        """Set the outcome, `row` or `error`, and wake the waiter."""
        self.row, self.error = row, error
        self.done.set()


class ResultListener:
    """The waiters of one store and the LISTEN connection that wakes them (see the module's docstring)."""

    def __init__(self, dsn: str, replica: ReplicaReads | None = None) -> None:
        self.dsn = dsn
        self.replica = replica
        # runs announced finished that the replica lacked -> when to read them from the primary instead
        self._lagging: dict[int, float] = {}
        self._lock = threading.Lock()  # the sync flavour adds and removes waiters from many threads
        self._waiters: dict[int, list[Waiter]] = {}
        self._key: bytes | None = None
        self._tokens: dict[str, int] = {}  # token -> run id, for the runs waited for (once the key is known)
        self._closed = False
        self._task: Task | None = None

    def add(self, run_id: int) -> Waiter:
        """Register a waiter for `run_id` (before its first status check: nothing finishes unseen)."""
        waiter = Waiter(run_id)
        with self._lock:
            if self._closed:
                raise PgqrsError("the store is closed")
            self._waiters.setdefault(run_id, []).append(waiter)
            if self._key is not None:
                self._tokens[run_token(self._key, run_id)] = run_id
            if self._task is None:
                self._task = self._start()
        return waiter

    def discard(self, waiter: Waiter) -> None:
        """Forget `waiter` (its result() returned or gave up); the run's last waiter forgets the run."""
        with self._lock:
            waiters = self._waiters.get(waiter.run_id, [])
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters:
                self._forget(waiter.run_id)

    def _forget(self, run_id: int) -> None:
        self._waiters.pop(run_id, None)
        if self._key is not None:
            self._tokens.pop(run_token(self._key, run_id), None)

    def _pending(self) -> list[int]:
        with self._lock:
            return list(self._waiters)

    def _matching(self, tokens: set[str]) -> list[int]:
        with self._lock:
            return [self._tokens[t] for t in tokens if t in self._tokens]

    def _use_key(self, key: bytes) -> None:
        with self._lock:
            if key != self._key:
                self._key = key
                self._tokens = {run_token(key, run_id): run_id for run_id in self._waiters}

    def _finish(self, run_id: int, row: tuple[Any, ...] | None, error: Exception | None = None) -> None:
        with self._lock:
            waiters = self._waiters.get(run_id, [])
            self._forget(run_id)
        for waiter in waiters:
            waiter.finish(row, error)

    def _close_waiters(self) -> None:
        with self._lock:
            self._closed = True
            waiters = [w for ws in self._waiters.values() for w in ws]
            self._waiters.clear()
            self._tokens.clear()
        for waiter in waiters:
            waiter.finish(None, PgqrsError(f"the store was closed while waiting for run {waiter.run_id}"))

    def _start(self) -> Task:
        return spawn(self._listen, name="pgqrs-results")

    async def wait(self, waiter: Waiter, timeout: float | None) -> bool:
        """Wait until the waiter is finished; False after `timeout` seconds."""
        return await wait_event(waiter.done, timeout)

    async def close(self) -> None:
        """Stop the listener, which closes its connection; waiters still waiting get an error. A task is
        cancelled; a thread sees the flag within WAIT_SLICE (one asleep between reconnects: when it wakes)."""
        self._close_waiters()
        task, self._task = self._task, None
        if task is not None:
            await cancel_all([task])
            await wait_tasks([task], 2 * WAIT_SLICE)

    async def _listen(self) -> None:
        backoff = 0.05
        while not self._closed:
            try:
                connect = psycopg.AsyncConnection.connect(self.dsn, autocommit=True, context=ADAPTERS)
                async with await connect as conn:
                    await self._catch_up(conn)
                    backoff = 0.05
                    await self._serve(conn)
            except Exception as exc:  # whatever it was, waiters depend on this loop: keep it going
                if self._closed:
                    return
                log.warning("result listener: %r; reconnecting in %.2f s", exc, backoff)
                await sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _catch_up(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """LISTEN, (re)read the key, then check every run waited for: what finished while nobody listened."""
        await conn.execute(_sql.LISTEN.format(channel=_sql.RUNS_CHANNEL))
        row = await (await conn.execute(_sql.RUNS_CHANNEL_KEY)).fetchone()
        assert row is not None
        self._use_key(bytes(row[0]))
        await self._check(conn, self._pending())

    async def _serve(self, conn: psycopg.AsyncConnection[Any]) -> None:
        next_sweep = time.monotonic() + SWEEP_INTERVAL
        while not self._closed:
            tokens = set()
            wait = max(0.0, min(LAG_RECHECK if self._lagging else WAIT_SLICE, next_sweep - time.monotonic()))
            # stop_after=1 ends the wait at the first packet of notifications (all of it is taken)
            async for note in conn.notifies(timeout=wait, stop_after=1):
                tokens.add(note.payload)
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + SWEEP_INTERVAL
                await self._check(conn, self._pending())
            else:
                await self._check(conn, self._matching(tokens), announced=True)
            if self._lagging:
                await self._check_lagging(conn)

    async def _check_lagging(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Read again the runs announced finished that the replica lacked, on the primary past their time."""
        now, pending = time.monotonic(), set(self._pending())
        due = [run_id for run_id, until in self._lagging.items() if until <= now and run_id in pending]
        self._lagging = {run_id: until for run_id, until in self._lagging.items()
                         if until > now and run_id in pending}
        await self._check(conn, due, on_primary=True)
        await self._check(conn, list(self._lagging), announced=True)

    async def _check(self, conn: psycopg.AsyncConnection[Any], run_ids: list[int], announced: bool = False,
                     on_primary: bool = False) -> None:
        """Hand the runs of `run_ids` that are finished to their waiters, in one query: on the replica when
        there is one that can answer (`announced`: the runs are known to be finished, and one the replica
        lacks is looked at again, see _check_lagging), else on `conn`, the primary."""
        if not run_ids:
            return
        if self.replica is not None and not on_primary:
            rows, answered = await self.replica.finished_runs(run_ids)
            if answered:
                for row in rows:
                    self.replica.saw(row)
                    self._lagging.pop(row[0], None)
                    self._finish(row[0], row)
                if announced:
                    until = time.monotonic() + self.replica.max_staleness
                    done = {row[0] for row in rows}
                    for run_id in run_ids:
                        if run_id not in done:
                            self._lagging.setdefault(run_id, until)
                return
        try:
            rows = await (await conn.execute(_sql.FINISHED_RUNS, (run_ids,))).fetchall()
        except psycopg.OperationalError:
            raise
        except Exception as exc:  # a run that cannot be read (deleted by hand...): its waiters get the error
            if len(run_ids) == 1:
                self._finish(run_ids[0], None, exc)
                return
            for run_id in run_ids:
                await self._check(conn, [run_id])
            return
        for row in rows:
            if self.replica is not None:
                self.replica.saw(row)
            self._finish(row[0], row)
