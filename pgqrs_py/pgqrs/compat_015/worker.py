"""pgqrs 0.15's worker loop: `pgqrs.dequeue().worker(consumer).batch(n).handle_workflow(f).poll(store)`.

Each run is leased with ``pgqrs.dequeue`` (the consumer's own call) and handed to `f(run)`; a heartbeat keeps
its lease while `f` runs. What happens next (docs/migrating-from-pgqrs.md, "The worker loop"):
- `f` returned: the run is finished with its value, unless `f` (a decorated workflow) recorded an outcome
  itself;
- `f` raised an Exception: the loop goes on, as our worker's does (0.15 stopped); a run still leased and not
  finished ends ERROR with the message, a run whose step waits for its retry is handed back;
- `f` raised any other BaseException (how 0.15 programs simulate a crash), a cancellation included: the run is
  handed back (``pgqrs.release_run``: visible again at once) and poll() re-raises it;
- `consumer.interrupt()`: poll() stops at its next turn, handing back runs leased but not started, and raises
  WorkerInterrupted (0.15 raised an error there too).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

import psycopg

from .. import _sql
from ..consumer import Consumer
from ..errors import InvalidState, LeaseLost, PgqrsError, RunCancelled
from ..run import Message, Run
from ..store import Store
from .errors import StepNotReadyError, WorkerInterrupted

log = logging.getLogger("pgqrs.compat_015")

Handler = Callable[[Run], Awaitable[Any]]
# how long an idle poll() waits before it looks again (0.15 polled every 50 ms; an idle worker of ours looks
# about once a second)
IDLE_POLL = 1.0


class DequeueBuilder:
    """`pgqrs.dequeue()`: `.worker(consumer)` (or `.from_queue(name)`), `.batch(n)`, `.poll_interval(ms)`,
    `.handle_workflow(f)`, then `await .poll(store)`."""

    def __init__(self) -> None:
        self._consumer: Consumer | None = None
        self._queue: str | None = None
        self._batch = 1
        self._idle = IDLE_POLL
        self._handler: Handler | None = None

    def worker(self, consumer: Consumer) -> DequeueBuilder:
        """The registered worker whose leases the loop takes; returns the builder."""
        self._consumer = consumer
        return self

    def from_queue(self, queue: str) -> DequeueBuilder:
        """Without worker(): register a worker of `queue` when poll() starts; returns the builder."""
        self._queue = queue
        return self

    def batch(self, size: int) -> DequeueBuilder:
        """Runs leased per dequeue (1-1000); returns the builder."""
        self._batch = size
        return self

    def poll_interval(self, interval_ms: int) -> DequeueBuilder:
        """How long an idle loop waits before it looks again, in milliseconds; returns the builder."""
        self._idle = interval_ms / 1000
        return self

    def handle_workflow(self, handler: Handler) -> DequeueBuilder:
        """The handler each run is given to: `await handler(run)` (a `pgqrs.decorators.workflow`); returns
        the builder."""
        self._handler = handler
        return self

    async def poll(self, store: Store) -> None:
        """Run the handler for every run of the worker's queue until `consumer.interrupt()`: leases with
        ``pgqrs.dequeue``, keeps them with ``pgqrs.heartbeat``, hands runs back with ``pgqrs.release_run``.
        Raises WorkerInterrupted at the end, a handler's BaseException (after handing its run back), the
        dequeue's errors, and ValueError without a handler or a worker."""
        if self._handler is None:
            raise ValueError("pgqrs.dequeue() needs .handle_workflow(handler) before poll(store)")
        consumer = self._consumer
        if consumer is None:
            if self._queue is None:
                raise ValueError("pgqrs.dequeue() needs .worker(consumer) or .from_queue(name)")
            consumer = await store.consumer(self._queue)
        while not consumer.interrupted:
            messages = await consumer.dequeue(self._batch)
            if not messages:
                await consumer.idle(self._idle)
                continue
            for n, message in enumerate(messages):
                if consumer.interrupted:
                    for left in messages[n:]:
                        await hand_back(Run(store, left, None))
                    break
                await run_one(store, consumer, message, self._handler)
        raise WorkerInterrupted(f"worker {consumer.name} interrupted")


async def run_one(store: Store, consumer: Consumer, message: Message, handler: Handler) -> None:
    """Give one leased run to the handler and settle what it leaves (see the module's docstring)."""
    run = Run(store, message, await store.now())
    keeper = asyncio.create_task(keep_lease(store, consumer, run))
    try:
        result = await handler(run)
    except StepNotReadyError as exc:
        log.info("run %s: %s; handed back", run.run_id, exc)
        await hand_back(run)
        return
    except Exception as exc:
        log.warning("run %s: the handler raised %r", run.run_id, exc)
        if run.outcome is None:
            with suppress(LeaseLost, InvalidState, RunCancelled):  # released (a pause, a retry) or finished
                await run.fail(str(exc))
        return
    except BaseException:
        await hand_back(run)
        raise
    finally:
        keeper.cancel()
    if run.outcome is None:
        with suppress(LeaseLost, InvalidState, RunCancelled):  # the handler paused or finished it itself
            await run.complete(result)


async def hand_back(run: Run) -> None:
    """Give the run back to its queue, visible at once: ``pgqrs.release_run``; nothing when this worker no
    longer holds it (it finished, paused, or its lease is gone)."""
    with suppress(LeaseLost, InvalidState, RunCancelled):
        await run.release()


async def keep_lease(store: Store, consumer: Consumer, run: Run) -> None:
    """Extend the run's lease every third of the worker's visibility while its handler runs:
    ``pgqrs.heartbeat``. A failed heartbeat is retried at the next turn (the engine fences a lost lease)."""
    while True:
        await asyncio.sleep(consumer.visibility / 3)
        try:
            await store.call(_sql.HEARTBEAT, (consumer.id, [run.lease_token], None))
        except (psycopg.Error, PgqrsError) as exc:
            log.warning("heartbeat of run %s failed: %s", run.run_id, exc)


def dequeue(consumer: Consumer | None = None, batch_size: int = 1) -> Any:
    """`pgqrs.dequeue()`: a DequeueBuilder. `pgqrs.dequeue(consumer, batch_size)` (0.15's function form):
    the consumer's dequeue (``pgqrs.dequeue``), an awaitable of leased messages."""
    if consumer is None:
        return DequeueBuilder()
    return consumer.dequeue(batch_size)
