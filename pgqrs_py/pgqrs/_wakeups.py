"""When a worker looks at its queue again: at once when woken (a notification, a free slot, stop()), at the
due time of a delayed run or a retry it was told about, else after its poll interval."""

from __future__ import annotations

import logging
import time

import psycopg

from . import _sql
from ._acompat import Event, notifications, wait_event

log = logging.getLogger("pgqrs.worker")


class Wakeups:
    """The worker's wake-up event, fed by its LISTEN connection on the queue's channel (`listen`)."""

    def __init__(self, dsn: str, channel: str, poll_interval: float) -> None:
        self.dsn = dsn
        self.channel = channel
        self.poll_interval = poll_interval
        self.event = Event()
        self._next_visible: float | None = None

    async def sleep(self, timeout: float) -> None:
        """Wait until woken, at most `timeout` seconds."""
        await wait_event(self.event, timeout)

    def idle_timeout(self) -> float:
        """How long an idle worker sleeps: its poll interval, or less when a run is due sooner."""
        timeout = self.poll_interval
        if self._next_visible is not None:
            until = self._next_visible - time.time() + 0.005  # a hair late rather than early
            if until <= 0:
                self._next_visible = None
                return 0.0
            timeout = min(timeout, until)
        return timeout

    async def listen(self, closing: Event) -> None:
        """LISTEN on the queue's channel until `closing`; reconnects with backoff and wakes the worker once
        after every (re)connect."""
        backoff = 0.05
        while not closing.is_set():
            try:
                conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
                async with conn:
                    await conn.execute(_sql.LISTEN.format(channel=self.channel))
                    backoff = 0.05
                    self.event.set()  # notifications sent while we were away are lost: look once
                    async for note in notifications(conn, closing):
                        self.on_notify(note.payload)
            except (psycopg.Error, OSError) as exc:
                if closing.is_set():
                    break
                log.warning("listen connection lost (%s); reconnecting in %.2f s", exc, backoff)
                self.event.set()  # poll meanwhile
                await wait_event(closing, backoff)
                backoff = min(backoff * 2, 5.0)

    def on_notify(self, payload: str) -> None:
        """A hint, and any login may send one (docs/security.md): empty = look now; a due time (epoch seconds,
        a delayed start or a retry) in a sane window = look then; anything else (nan, inf, far off, not a
        number) is ignored, so that nothing sent from outside can switch the timed wake-ups off."""
        if not payload:
            self.event.set()
            return
        try:
            visible = float(payload)
        except ValueError:
            return
        # at most an hour past (clock skew: look now) and 366 days ahead (a retry waits up to 30 days, a
        # delayed start may be further off); the comparison is false for nan
        now = time.time()
        if not now - 3600 <= visible <= now + 366 * 86400:
            return
        if self._next_visible is None or visible < self._next_visible:
            self._next_visible = visible
            self.event.set()  # recompute the sleep
