"""A worker's heartbeats: every third of the visibility, one call of pgqrs.heartbeat extends the leases of the
runs in flight, reports their steps, and tells which leases were lost; runs whose engine call hangs are left
out, so that their leases expire and another worker takes them over."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any
from uuid import UUID

import psycopg

from . import _sql
from ._acompat import Event, Task, cancel, wait_event
from ._leases import Leases
from .run import Message
from .store import AsyncConn, Store, conn_kwargs

log = logging.getLogger("pgqrs.worker")


class Heartbeats:
    """The heartbeat loop of a worker (`loop`), on a connection of its own. It shares the worker's runs in
    flight (`inflight`, a task per run, guarded by `lock`) and their leases, and wakes the worker
    (`wake`) when it frees a slot."""

    def __init__(self, store: Store, worker_id: int, concurrency: int, leases: Leases,
                 inflight: dict[Task, Message], lock: threading.Lock, wake: Event) -> None:
        self.store = store
        self.worker_id = worker_id
        self.concurrency = concurrency
        self.leases = leases
        self.inflight = inflight
        self.lock = lock
        self.wake = wake
        self._conn: AsyncConn | None = None

    async def loop(self, closing: Event) -> None:
        """Beat until `closing`; a failed beat is logged and the next one comes on time."""
        interval = self.leases.visibility / 3
        while not await wait_event(closing, interval):
            tasks = dict(self.inflight)
            tokens, steps, hung = self.leases.beat_payload(list(tasks.values()))
            # a hung call's task is cancelled: psycopg then tries to cancel the stuck query, and the task ends
            # when it gives up; a thread stays blocked in its call
            for task in await self._abandon_hung(hung):
                cancel(task)
            sent = time.monotonic()
            try:
                rows = await self.beat(tokens, steps)
            except Exception as exc:  # keep beating: a lapse must not let every lease expire
                log.warning("heartbeat failed: %s", exc)
                continue
            lost = self.leases.extended(rows, sent)
            for task, message in tasks.items():
                # A run that finished while the heartbeat was on its way has no lease left either: not lost.
                if message.lease_token in lost and task in self.inflight \
                        and not self.leases.calling(message) and cancel(task):
                    log.warning("lease on run %s lost (taken over or cancelled); it starts no further step",
                                message.run_id)

    async def _abandon_hung(self, hung: list[Message]) -> list[Task]:
        """Give up on runs whose engine call hangs (a stuck backend, a half-open connection): stop extending
        their leases, free their slots; returns their tasks. The stuck call keeps its pooled connection, so
        the pool grows by one (up to twice its working size: a flapping network must not exhaust the server's
        connections). Should the call ever return, the engine refuses it (fencing) and no further step starts.
        """
        abandoned = []
        for message in hung:
            log.warning("run %s: an engine call has hung for over %.1f s; leaving its lease to expire",
                        message.run_id, self.leases.visibility)
            self.leases.give_up(message.lease_token)
            self.leases.runs.pop(message.lease_token, None)
            with self.lock:
                for task, held in list(self.inflight.items()):
                    if held is message:
                        del self.inflight[task]
                        abandoned.append(task)
            pool = self.store.pool
            if pool.max_size < 2 * (self.concurrency + 2):
                await pool.resize(min_size=pool.min_size, max_size=pool.max_size + 1)
        if abandoned:
            self.wake.set()
        return abandoned

    async def beat(self, tokens: list[UUID], steps: str | None = None) -> list[tuple[Any, ...]]:
        """One heartbeat (``pgqrs.heartbeat``), on a connection of its own: step bodies that borrow pooled
        connections (to trigger other runs, say) must never make it wait until the leases it should extend
        have expired."""
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(self.store.dsn, **conn_kwargs())
        try:
            return await self.store.call(_sql.HEARTBEAT, (self.worker_id, tokens, steps), self._conn)
        except psycopg.OperationalError:
            await self._conn.close()
            self._conn = None
            raise

    async def close(self) -> None:
        """Close the heartbeat connection (the next beat opens a new one)."""
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
