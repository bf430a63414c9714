"""Workers: `pgqrs.consumer(name, port, queue)` to dequeue by hand, or `.handler(fn)` + `poll_forever()`.

The loop of a worker: the caller's task dispatches, each run in flight has a task of its own (at most
`concurrency`; in pgqrs.sync a thread each), one listens for notifications (pgqrs/_wakeups.py) and one sends
heartbeats. The primitives that differ between the flavours come from pgqrs/_acompat.py.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

import psycopg

from . import _sql
from ._acompat import CancelledError, Event, Task, cancel_all, on_signals, spawn, wait_tasks
from ._conncheck import connection_lost
from ._groupcommit import GroupCommit, GroupCommitLost
from ._heartbeats import Heartbeats
from ._leases import Leases
from ._outcome import hand_back, hand_back_interrupted, run_traced
from ._params import as_id
from ._pgqrs015 import Consumer015
from ._poller import Poller
from ._schedules import FIRE_INTERVAL, fire_loop
from ._settings import MAX_CONCURRENCY, checked_setting, checked_version
from ._wakeups import Wakeups
from .errors import InvalidArgument, LeaseLost, PgqrsError, RunCancelled
from .handler import as_workflow
from .install import check_version
from .outcomes import Suspended
from .run import Message, Run
from .store import Store
from .workflow import WorkflowContext

log = logging.getLogger("pgqrs.worker")


class Consumer(Consumer015):
    """A registered worker. Without a handler it is the seeds' manual consumer (dequeue / archive)."""

    def __init__(self, store: Store, worker_id: int, name: str, queue: str, channel: str,
                 handler: Callable[..., Any] | None, concurrency: int, visibility: float,
                 poll_interval: float, schedule_interval: float | None = FIRE_INTERVAL,
                 version: str | None = None) -> None:
        self.store = store
        self.id = worker_id
        self.name = name
        self.queue = queue
        self.channel = channel
        self.handler = as_workflow(handler) if handler is not None else None
        self.version = version  # of the code this worker runs (runs.version): it takes only runs of it
        self.concurrency = concurrency
        self.visibility = visibility
        self.poll_interval = poll_interval
        self.schedule_interval = schedule_interval
        self._stop = Event()
        self._closing = Event()  # ends the listener and the heartbeats
        self._wakeups = Wakeups(store.dsn, channel, poll_interval)
        self._leases = Leases(visibility)
        self._inflight: dict[Task, Message] = {}
        # a run's task (a thread in pgqrs.sync) may end before the dispatcher has registered it
        self._inflight_lock = threading.Lock()
        self._contexts: dict[UUID, WorkflowContext] = {}  # of the runs in flight, by lease token
        self._heartbeats = Heartbeats(store, worker_id, concurrency, self._leases, self._inflight,
                                      self._inflight_lock, self._wakeups.event)
        # the dispatch loop's dequeues; one run at a time, also its run's completion with the next dequeue
        self._poller = Poller(store, (queue, worker_id, visibility, version), self._stop)
        # several runs at once: their step and run completions share transactions, with the next leases
        # (_groupcommit.py)
        self._group_commit = GroupCommit(store, self._poller) if concurrency > 1 else None

    async def dequeue(self, batch_size: int = 1, visibility: float | None = None) -> list[Message]:
        """Lease up to `batch_size` runs of the queue for `visibility` seconds (default the worker's): calls
        ``pgqrs.dequeue``, for the worker's version; [] when none is visible. Raises UnknownWorker (QR008),
        UnknownWorkflow (QR001) and InvalidArgument (22023: a batch not of 1-1000, a visibility not within 0-1
        day)."""
        lease = visibility if visibility is not None else self.visibility
        rows = await self.store.call(_sql.DEQUEUE, (self.queue, self.id, batch_size, lease, self.version))
        return [Message(*row) for row in rows]

    async def archive(self, message_id: Any) -> bool:
        """Archive a run's message: calls ``pgqrs.archive``. Finishing a run archives it, so this changes
        nothing: True when this worker held the run at its finish, else False. Raises InvalidState (QR003) for
        a run not finished, UnknownRun (QR002), UnknownWorker (QR008), TypeError for a non-id."""
        return bool((await self.store.call(_sql.ARCHIVE, (as_id(message_id), self.id)))[0][0])

    def stop(self) -> None:
        """Stop taking work; `poll_forever` returns once in-flight runs finish or are given up (_drain)."""
        self._stop.set()
        self._wakeups.event.set()

    # ---- the loop -----------------------------------------------------------------------------------------

    async def poll_forever(self, *, shutdown_timeout: float | None = None) -> None:
        """Run the handler for every run of the queue until `stop()`, SIGTERM or SIGINT (those two only when
        called from the main thread), then mark the worker stopped (``pgqrs.stop_worker``). Raises ValueError
        without a handler, InvalidArgument for a bad shutdown_timeout."""
        if self.handler is None:
            raise ValueError("poll_forever needs a handler: consumer(...).handler(fn).create(store)")
        if shutdown_timeout is not None:
            shutdown_timeout = checked_setting("shutdown_timeout", shutdown_timeout)
        restore_signals = on_signals(self.stop)
        self._closing.clear()
        background = [spawn(self._wakeups.listen, self._closing, name=f"pgqrs-listen-{self.name}"),
                      spawn(self._heartbeats.loop, self._closing, name=f"pgqrs-heartbeat-{self.name}")]
        if self._group_commit is not None:
            background.append(spawn(self._group_commit.loop, self._closing, name=f"pgqrs-commit-{self.name}"))
        if self.schedule_interval is not None:
            background.append(spawn(fire_loop, self.store, self._closing, self.schedule_interval,
                                    name=f"pgqrs-schedules-{self.name}"))
        try:
            await self._dispatch_loop()
        finally:
            # Also when the loop died of something unexpected: runs in flight finish or are handed back.
            await self._drain(self.visibility if shutdown_timeout is None else shutdown_timeout)
            await self._poller.close()
            restore_signals()
            self._closing.set()
            await cancel_all(background)
            await wait_tasks(background, 5.0)
            await self._heartbeats.close()
            try:
                await self.store.call(_sql.STOP_WORKER, (self.id,))
            except psycopg.Error as exc:
                log.warning("could not mark worker %s stopped: %s", self.name, exc)

    async def _dispatch_loop(self) -> None:
        wakeups = self._wakeups
        backoff = 0.05
        while not self._stop.is_set():
            wakeups.event.clear()  # before dequeue: a notification arriving during it must not be lost
            free = self.concurrency - len(self._inflight)
            if free > 0:
                try:
                    messages, sent = await self._poller.dequeue(free)
                except (psycopg.Error, PgqrsError) as exc:  # the database away, or mid-upgrade: keep trying
                    log.warning("dequeue failed (%s); retrying in %.2f s", exc, backoff)
                    self.store.observer.loop_error()
                    await wakeups.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                backoff = 0.05
                self._leases.granted(messages, sent)
                for message in messages:
                    with self._inflight_lock:
                        task = spawn(self._execute, message, name=f"pgqrs-run-{message.run_id}",
                                     done=self._finished)
                        self._inflight[task] = message
                if len(messages) == free:
                    continue  # the queue may hold more; look again before sleeping
            await wakeups.sleep(wakeups.idle_timeout())

    def _finished(self, task: Task) -> None:
        with self._inflight_lock:
            message = self._inflight.pop(task, None)
        if message is not None:
            self._leases.forget(message.lease_token)
            self._contexts.pop(message.lease_token, None)
        self._wakeups.event.set()

    async def _drain(self, timeout: float) -> None:
        """Let in-flight runs finish (heartbeats go on meanwhile); after `timeout`, give up the others: none
        starts another step body (a task is cancelled; a thread, which cannot be, is stopped by its lease
        deadline and its abandoned context). A run given up goes back to the queue at once, unless one of its
        step bodies still runs in a thread, which nothing can stop: that run is no longer heartbeated and its
        lease expires while this process exits (the thread is a daemon, see call_body), so that no other
        worker starts the body while it still runs here."""
        pending = await wait_tasks(list(self._inflight), timeout)
        given_up = [(message, self._contexts.get(message.lease_token))
                    for message in (self._inflight.get(task) for task in pending) if message is not None]
        for message, _ctx in given_up:
            self._leases.give_up(message.lease_token)
        await cancel_all(pending)
        for message, ctx in given_up:
            if ctx is not None and ctx.abandon():
                log.warning("run %s still in a step body after %.1f s; not handed back: its lease expires",
                            message.run_id, timeout)
            else:
                log.warning("run %s still running after %.1f s; handing it back", message.run_id, timeout)
                await hand_back(self.store, message)

    # ---- one run ------------------------------------------------------------------------------------------

    async def _execute(self, message: Message) -> None:
        assert self.handler is not None
        own_connection_lost = True  # unless the run's connection is found alive below
        self.store.observer.run_started()
        ctx: WorkflowContext | None = None
        try:
            # one run at a time: on the dispatch loop's connection, which sends its completion with the next
            # dequeue; else on a pooled one, the completions merged by group commit
            lent = self._poller.lend() if self._group_commit is None else None
            async with lent if lent is not None else self.store.pool.connection() as conn:
                sender = lent if lent is not None else self._group_commit
                run = Run(self.store, message, None, conn, self._leases.deadlines, sender)
                self._leases.runs[message.lease_token] = run
                ctx = WorkflowContext(run, message.steps or {})
                self._contexts[message.lease_token] = ctx
                try:
                    await run_traced(self.queue, self.handler, run, ctx)
                except psycopg.OperationalError as exc:
                    # before the pool may hand the connection to another; a completion sent by group commit
                    # whose outcome is unknown counts as one sent on the run's own lost connection
                    own_connection_lost = connection_lost(conn) or isinstance(exc, GroupCommitLost)
                    raise
        except Suspended as exc:
            log.debug("run %s left this worker: %s", message.run_id, exc.run_status)
        except LeaseLost as exc:
            log.warning("run %s abandoned: %s", message.run_id, exc)
        except RunCancelled as exc:
            log.info("run %s stopped: %s", message.run_id, exc)
        except psycopg.OperationalError as exc:
            await hand_back_interrupted(self.store, message, own_connection_lost, exc, self.visibility)
        except CancelledError:
            # The task was cancelled (lease lost, hung call, shutdown): no step body starts from now on. One
            # running in a thread goes on, nothing can stop it; _drain decides whether the run is handed back.
            if ctx is not None:
                ctx.abandon()
            raise
        except Exception:
            log.exception("run %s: unexpected error in the worker", message.run_id)
            self.store.observer.loop_error()


class ConsumerBuilder:
    """`pgqrs.consumer(name, port, queue)`, optionally `.handler(fn)`, then `await .create(store)`."""

    def __init__(self, name: str, port: int | None, queue: str) -> None:
        self._name = name
        self._port = port
        self._queue = queue
        self._handler: Callable[..., Any] | None = None
        self._concurrency = 1
        self._visibility = 30.0
        self._poll_interval = 2.0
        self._schedule_interval: float | None = FIRE_INTERVAL
        self._version: str | None = None

    def handler(self, fn: Callable[..., Any]) -> ConsumerBuilder:
        """The handler `fn(ctx, params)` that poll_forever runs for each run; returns the builder."""
        self._handler = fn
        return self

    def concurrency(self, n: int) -> ConsumerBuilder:
        """Runs in flight at once, 1 to 1000 (the engine's largest dequeue batch)."""
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_CONCURRENCY:
            raise InvalidArgument(f"concurrency must be an integer from 1 to {MAX_CONCURRENCY}, got {n!r}")
        self._concurrency = n
        return self

    def visibility(self, seconds: float | timedelta) -> ConsumerBuilder:
        """The lease of each run, renewed by a heartbeat every third of it: 0.1 s to 1 day."""
        self._visibility = checked_setting("visibility", seconds)
        return self

    def poll_interval(self, seconds: float | timedelta) -> ConsumerBuilder:
        """How long an idle worker waits for a notification before it looks anyway: 0.01 s to 1 day."""
        self._poll_interval = checked_setting("poll_interval", seconds)
        return self

    def schedule_interval(self, seconds: float | timedelta | None) -> ConsumerBuilder:
        """How often the worker fires due schedules (pgqrs.fire_schedules): 0.1 s to 1 day, default 10 s;
        None: never (other workers or pg_cron do it)."""
        self._schedule_interval = None if seconds is None else checked_setting("schedule_interval", seconds)
        return self

    def version(self, version: str | None) -> ConsumerBuilder:
        """The version of the workflow code this worker runs (default: the @workflow handler's version): it
        takes only runs of that version and new runs without one, which it gives its version (runs.version).
        InvalidArgument for a version not of 1-128 letters, digits and _ . : -."""
        self._version = checked_version(version)
        return self

    async def create(self, store: Store) -> Consumer:
        """Register the worker for the queue (an upsert by name): calls ``pgqrs.register_worker``,
        ``pgqrs.queue_channel`` and ``pgqrs.schema_version``; grows the store's pool to 2 * concurrency + 2.
        Raises SchemaMismatch (the database holds another schema version), UnknownWorkflow (QR001) and
        InvalidArgument (22023: a bad name, a hostname over 255 characters, a port not of 0-65535)."""
        rows = await store.call(_sql.REGISTER_WORKER,
                                (self._name, socket.gethostname(), self._port, self._queue, self._queue))
        worker_id, channel, version = rows[0]
        check_version(version)  # before taking any work: mismatched calls would fail every run
        # two per run in flight (its own, and one for a transaction step: _transaction.py), one for dequeue,
        # one for heartbeats; the pool opens them only when they are used
        needed = 2 * self._concurrency + 2
        if store.pool.max_size < needed:
            await store.pool.resize(min_size=store.pool.min_size, max_size=needed)
        return Consumer(store, worker_id, self._name, self._queue, channel, self._handler, self._concurrency,
                        self._visibility, self._poll_interval, self._schedule_interval,
                        checked_version(self._version or getattr(self._handler, "version", None)))


def consumer(name: str, port: int | None, queue: str) -> ConsumerBuilder:
    """`pgqrs.consumer(name, port, queue)`: a ConsumerBuilder for a worker of `queue`."""
    return ConsumerBuilder(name, port, queue)
