"""Workers: `pgqrs.consumer(name, port, queue)` to dequeue by hand, or `.handler(fn)` + `poll_forever()`."""

from __future__ import annotations

import asyncio
import json
import logging
import numbers
import signal
import socket
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

import psycopg

from . import _sql
from ._conncheck import connection_lost
from ._json import UnreadableJson, dumps, storable_text
from .errors import (
    InvalidArgument,
    LeaseLost,
    NotSerializable,
    PgqrsError,
    RunCancelled,
    TransientError,
    UnreadableValue,
)
from .handler import as_workflow, invoke
from .install import check_version
from .outcomes import error_json
from .run import Message, Run
from .store import AsyncConn, Store, as_id, conn_kwargs
from .workflow import Suspended, WorkflowContext

log = logging.getLogger("pgqrs.worker")

HANDLER_STEP = "$handler"  # the step id under which a TransientError raised outside any step is retried


class Consumer:
    """A registered worker. Without a handler it is the seeds' manual consumer (dequeue / archive)."""

    def __init__(self, store: Store, worker_id: int, name: str, queue: str, channel: str,
                 handler: Callable[..., Any] | None, concurrency: int, visibility: float,
                 poll_interval: float) -> None:
        self.store = store
        self.id = worker_id
        self.name = name
        self.queue = queue
        self.channel = channel
        self.handler = as_workflow(handler) if handler is not None else None
        self.concurrency = concurrency
        self.visibility = visibility
        self.poll_interval = poll_interval
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._next_visible: float | None = None
        self._inflight: dict[asyncio.Task[None], Message] = {}
        # When each lease held runs out by this process's monotonic clock (see _leased): a worker that was
        # frozen past it must not start another step body, though the database would refuse its writes anyway.
        self._lease_deadlines: dict[UUID, float] = {}
        self._beat_conn: AsyncConn | None = None  # heartbeats' own connection (see _heartbeat)
        self._runs: dict[UUID, Run] = {}  # the runs in flight by lease token: what the heartbeat reports

    async def dequeue(self, batch_size: int = 1, visibility: float | None = None) -> list[Message]:
        """Lease up to `batch_size` runs of the queue for `visibility` seconds (default the worker's): calls
        ``pgqrs.dequeue``; [] when none is visible. Raises UnknownWorker (QR008), UnknownWorkflow (QR001)
        and InvalidArgument (22023: a batch not of 1-1000, a visibility not within 0-1 day)."""
        lease = visibility if visibility is not None else self.visibility
        rows = await self.store.call(_sql.DEQUEUE, (self.queue, self.id, batch_size, lease))
        return [Message(*row) for row in rows]

    async def archive(self, message_id: Any) -> bool:
        """Archive a run's message: calls ``pgqrs.archive``. A message is archived when its run finishes
        (complete_run, fail_run), so this returns False for a finished run and raises InvalidState (QR003)
        for one that has not finished; UnknownRun (QR002), UnknownWorker (QR008), TypeError for something
        that is not an id."""
        return bool((await self.store.call(_sql.ARCHIVE, (as_id(message_id), self.id)))[0][0])

    def stop(self) -> None:
        """Stop taking work; `poll_forever` returns once in-flight runs finish or are given up (_drain)."""
        self._stop.set()
        self._wake.set()

    # ---- the loop -----------------------------------------------------------------------------------------

    async def poll_forever(self, *, shutdown_timeout: float | None = None) -> None:
        """Run the handler for every run of the queue until `stop()`, SIGTERM or SIGINT, then mark the worker
        stopped (``pgqrs.stop_worker``). Raises ValueError without a handler, InvalidArgument for a bad
        shutdown_timeout."""
        if self.handler is None:
            raise ValueError("poll_forever needs a handler: pgqrs.consumer(...).handler(fn).create(store)")
        if shutdown_timeout is not None:
            shutdown_timeout = checked_seconds("shutdown_timeout", shutdown_timeout, *SHUTDOWN_TIMEOUT_RANGE)
        signals = self._install_signal_handlers()
        listener = asyncio.create_task(self._listen(), name="pgqrs-listen")
        heartbeats = asyncio.create_task(self._heartbeat_loop(), name="pgqrs-heartbeat")
        try:
            await self._dispatch_loop()
        finally:
            # Also when the loop died of something unexpected: runs in flight finish or are handed back.
            await self._drain(self.visibility if shutdown_timeout is None else shutdown_timeout)
            for sig in signals:
                asyncio.get_running_loop().remove_signal_handler(sig)
            listener.cancel()
            heartbeats.cancel()
            await asyncio.gather(listener, heartbeats, return_exceptions=True)
            await self._close_heartbeat()
            try:
                await self.store.call(_sql.STOP_WORKER, (self.id,))
            except psycopg.Error as exc:
                log.warning("could not mark worker %s stopped: %s", self.name, exc)

    async def _dispatch_loop(self) -> None:
        backoff = 0.05
        while not self._stop.is_set():
            self._wake.clear()  # before dequeue: a notification arriving during it must not be lost
            free = self.concurrency - len(self._inflight)
            got = 0
            if free > 0:
                sent = time.monotonic()
                try:
                    messages = await self.dequeue(free)
                except (psycopg.Error, PgqrsError) as exc:  # the database away, or mid-upgrade: keep trying
                    log.warning("dequeue failed (%s); retrying in %.2f s", exc, backoff)
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                backoff = 0.05
                self._leased(messages, sent)
                for message in messages:
                    task = asyncio.create_task(self._execute(message), name=f"pgqrs-run-{message.run_id}")
                    self._inflight[task] = message
                    task.add_done_callback(self._finished)
                got = len(messages)
                if got == free:
                    continue  # the queue may hold more; look again before sleeping
            await self._sleep(self._idle_timeout())

    def _finished(self, task: asyncio.Task[None]) -> None:
        message = self._inflight.pop(task, None)
        if message is not None:
            self._lease_deadlines.pop(message.lease_token, None)
            self._runs.pop(message.lease_token, None)
        self._wake.set()

    def _leased(self, messages: list[Message], sent: float) -> None:
        """Leases granted by a dequeue sent at monotonic time `sent`: the server's expiry is its own now plus
        the visibility, never earlier than `sent` plus it, so this deadline errs on the safe side."""
        for message in messages:
            self._lease_deadlines[message.lease_token] = sent + self.visibility

    def _extended(self, rows: list[tuple[Any, ...]], sent: float) -> set[UUID]:
        """Apply a heartbeat's answer (sent at monotonic `sent`): move the deadlines of the leases still held;
        return the tokens of the lost ones."""
        lost = set()
        for token, held, _until in rows:
            if held is None:
                continue  # its row was busy with one of the run's own calls: not extended, not lost
            if held:
                if token in self._lease_deadlines:
                    self._lease_deadlines[token] = sent + self.visibility
            else:
                lost.add(token)
                if token in self._lease_deadlines:
                    self._lease_deadlines[token] = 0.0  # taken over or cancelled: start no other step
        return lost

    def _beat_payload(self, messages: list[Message]) -> tuple[list[UUID], str | None, list[Message]]:
        """What the next heartbeat sends: the lease tokens to extend and the steps in flight (JSON for
        pgqrs.heartbeat), and the runs left out because an engine call of theirs has hung for longer than a
        lease: their leases must expire so that another worker takes them over."""
        now = time.monotonic()
        tokens: list[UUID] = []
        steps: list[dict[str, Any]] = []
        hung: list[Message] = []
        for message in messages:
            run = self._runs.get(message.lease_token)
            if run is not None and run.call_started is not None and now - run.call_started > self.visibility:
                hung.append(message)
                continue
            tokens.append(message.lease_token)
            if run is not None:
                steps.extend(
                    {"lease_token": str(message.lease_token), "step_id": step_id,
                     "running_for": round(max(0.0, now - started), 3)}
                    for step_id, started in list(run.steps_in_flight.items())
                )
        return tokens, json.dumps(steps) if steps else None, hung

    async def _abandon_hung(self, hung: list[Message]) -> list[asyncio.Task[None]]:
        """Give up on runs whose engine call hangs (a stuck backend, a half-open connection): stop extending
        their leases, free their slots; returns their tasks. The stuck call keeps its pooled connection, so
        the pool grows by one (up to twice its working size: a flapping network must not exhaust the server's
        connections). Should the call ever return, the engine refuses it (fencing) and no further step starts.
        """
        abandoned = []
        for message in hung:
            log.warning("run %s: an engine call has hung for over %.1f s; leaving its lease to expire",
                        message.run_id, self.visibility)
            self._lease_deadlines[message.lease_token] = 0.0
            self._runs.pop(message.lease_token, None)
            for task, held in list(self._inflight.items()):
                if held is message:
                    del self._inflight[task]
                    abandoned.append(task)
            pool = self.store.pool
            if pool.max_size < 2 * (self.concurrency + 2):
                await pool.resize(min_size=pool.min_size, max_size=pool.max_size + 1)
        if abandoned:
            self._wake.set()
        return abandoned

    def _idle_timeout(self) -> float:
        timeout = self.poll_interval
        if self._next_visible is not None:
            until = self._next_visible - time.time() + 0.005  # a hair late rather than early
            if until <= 0:
                self._next_visible = None
                return 0.0
            timeout = min(timeout, until)
        return timeout

    async def _sleep(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            pass

    async def _drain(self, timeout: float) -> None:
        """Let in-flight runs finish (heartbeats go on meanwhile); after `timeout`, cancel them. A cancelled
        run goes back to the queue at once, unless one of its step bodies is still running in a thread: that
        run is no longer heartbeated and its lease expires, while this process exits (the body's thread is a
        daemon, see call_body), so that no other worker starts the body while it still runs here."""
        if not self._inflight:
            return
        _done, pending = await asyncio.wait(list(self._inflight), timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def _install_signal_handlers(self) -> list[signal.Signals]:
        """SIGTERM / SIGINT call stop() while poll_forever runs; returns the signals to restore after."""
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self.stop)
            except (NotImplementedError, RuntimeError, ValueError):
                continue  # not the main thread: the embedding program stops us with stop()
            installed.append(sig)
        return installed

    async def _listen(self) -> None:
        """LISTEN on the queue's channel; reconnects with backoff and polls once after every (re)connect."""
        backoff = 0.05
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.store.dsn, autocommit=True)
                async with conn:
                    await conn.execute(_sql.LISTEN.format(channel=self.channel))
                    backoff = 0.05
                    self._wake.set()  # notifications sent while we were away are lost: look once
                    async for note in conn.notifies():
                        self._on_notify(note.payload)
            except (psycopg.Error, OSError) as exc:
                log.warning("listen connection lost (%s); reconnecting in %.2f s", exc, backoff)
                self._wake.set()  # poll meanwhile
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _on_notify(self, payload: str) -> None:
        """A hint, and any login may send one (docs/security.md): empty = look now; a due time (epoch seconds,
        a delayed start or a retry) in a sane window = look then; anything else (nan, inf, far off, not a
        number) is ignored, so that nothing sent from outside can switch the timed wake-ups off."""
        if not payload:
            self._wake.set()
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
            self._wake.set()  # recompute the sleep

    async def _heartbeat_loop(self) -> None:
        interval = self.visibility / 3
        while True:
            await asyncio.sleep(interval)
            tasks = dict(self._inflight)
            tokens, steps, hung = self._beat_payload(list(tasks.values()))
            for task in await self._abandon_hung(hung):
                task.cancel()  # psycopg then tries to cancel the stuck query; the task ends when it gives up
            sent = time.monotonic()
            try:
                rows = await self._heartbeat(tokens, steps)
            except Exception as exc:  # keep beating: a lapse must not let every lease expire
                log.warning("heartbeat failed: %s", exc)
                continue
            lost = self._extended(rows, sent)
            for task, message in tasks.items():
                # A run that finished while the heartbeat was on its way has no lease left either: not lost.
                if message.lease_token in lost and not task.done() and task in self._inflight \
                        and not self._calling(message):
                    log.warning("lease on run %s lost (taken over or cancelled); stopping it", message.run_id)
                    task.cancel()

    def _calling(self, message: Message) -> bool:
        """Whether the run has an engine call on its way: its answer tells what became of the lease (the
        call may be the complete_run that just ended the run: a heartbeat then finds no lease, which is no
        loss), so the heartbeat leaves such a run alone instead of stopping it mid-call."""
        run = self._runs.get(message.lease_token)
        return run is not None and run.call_started is not None

    async def _heartbeat(self, tokens: list[UUID], steps: str | None = None) -> list[tuple[Any, ...]]:
        """One heartbeat, on a connection of its own: step bodies that borrow pooled connections (to trigger
        other runs, say) must never make it wait until the leases it should extend have expired."""
        if self._beat_conn is None or self._beat_conn.closed:
            self._beat_conn = await psycopg.AsyncConnection.connect(self.store.dsn, **conn_kwargs())
        try:
            return await self.store.call(_sql.HEARTBEAT, (self.id, tokens, steps), self._beat_conn)
        except psycopg.OperationalError:
            await self._beat_conn.close()
            self._beat_conn = None
            raise

    async def _close_heartbeat(self) -> None:
        if self._beat_conn is not None:
            await self._beat_conn.close()
            self._beat_conn = None

    async def _execute(self, message: Message) -> None:
        assert self.handler is not None
        own_connection_lost = True  # unless the run's connection is found alive below
        ctx: WorkflowContext | None = None
        try:
            async with self.store.pool.connection() as conn:
                run = Run(self.store, message, None, conn, self._lease_deadlines)
                self._runs[message.lease_token] = run
                ctx = WorkflowContext(run, message.steps or {})
                try:
                    await self._run_handler(run, ctx)
                except psycopg.OperationalError:
                    own_connection_lost = connection_lost(conn)  # before the pool may hand it to another
                    raise
        except Suspended as exc:
            log.debug("run %s left this worker: %s", message.run_id, exc.run_status)
        except LeaseLost as exc:
            log.warning("run %s abandoned: %s", message.run_id, exc)
        except RunCancelled as exc:
            log.info("run %s stopped: %s", message.run_id, exc)
        except psycopg.OperationalError as exc:
            await self._after_lost_connection(message, own_connection_lost, exc)
        except asyncio.CancelledError:
            # A body in a thread goes on (nothing can stop it): such a run is never handed back, or its next
            # worker would run the body while this one still does. Its lease expires instead (see _drain).
            body_running = ctx is not None and ctx.abandon()
            if self._stop.is_set():
                if body_running:
                    log.warning("run %s is still in a step body; not handed back: its lease will expire",
                                message.run_id)
                else:
                    await self._hand_back(message)
            raise
        except Exception:
            log.exception("run %s: unexpected error in the worker", message.run_id)

    async def _run_handler(self, run: Run, ctx: WorkflowContext) -> None:
        if isinstance(run.message.input, UnreadableJson) or isinstance(run.message.steps, UnreadableJson):
            error = await self._unreadable(run)
            log.warning("run %s failed: %s", run.run_id, error)
            await run.fail(error_json(error))
            return
        try:
            assert self.handler is not None
            output = await invoke(self.handler, ctx, run.message.input)
        except RunCancelled as exc:
            if exc.run_id not in (None, run.run_id):  # another run's (its result() awaited): a handler error
                await run.fail(error_json(exc))
                return
            raise  # this run was cancelled: stop
        except (Suspended, LeaseLost, asyncio.CancelledError):
            raise
        except psycopg.OperationalError as exc:
            if exc is run.failed_call:
                raise  # our own call was cut off: not the handler's failure (see _after_lost_connection)
            await run.fail_step(HANDLER_STEP, error_json(exc), transient=True)  # the user's database trouble
            return
        except TransientError as exc:
            await run.fail_step(HANDLER_STEP, error_json(exc), transient=True, retry_after=exc.retry_after)
            return
        except Exception as exc:  # a handler error never stops the loop: the run fails permanently
            log.info("run %s failed: %r", run.run_id, exc)
            await run.fail(error_json(exc))
            return
        try:
            payload = dumps(output, f"the output of run {run.run_id}")
        except NotSerializable as exc:
            await run.fail(error_json(exc))
            return
        await run.complete_json(payload)

    async def _unreadable(self, run: Run) -> UnreadableValue:
        """What of a delivered run Python's json cannot read: its input, else the step whose stored value
        spoils the step journal (looked up step by step), else the journal as a whole."""
        if isinstance(run.message.input, UnreadableJson):
            return run.message.input.error(f"the input of run {run.run_id}")
        for step_id, _status, value, *_rest in await self.store.call(_sql.RUN_STEPS, (run.run_id,), run.conn):
            if isinstance(value, UnreadableJson):
                return value.error(f"the stored value of step {step_id!r}")
        journal = run.message.steps
        assert isinstance(journal, UnreadableJson)
        return journal.error(f"the step journal of run {run.run_id}")

    async def _after_lost_connection(self, message: Message, own: bool, exc: Exception) -> None:
        """One of the worker's own engine calls was cut off: the connection was lost (`own`: a restart, a
        terminated backend) or the call failed on a live one (a deadlock, a statement timeout). That is not
        the step's failure, so no step failure is recorded: the run goes back to the queue as soon as the
        database answers, from its last recorded step. A lost connection is the infrastructure's doing: the
        run is visible again at once. A call that failed on a live connection may fail the same way every
        time (a value too big for the statement timeout): it is handed back with its cause, which the engine
        counts and backs off, and ends the run after max_attempts such deliveries in a row (release_run).
        """
        cause = "a lost connection" if own else "an interrupted engine call"
        log.warning("run %s interrupted by %s (%s); handing it back", message.run_id, cause, exc)
        error = None if own else engine_error(exc)
        deadline = time.monotonic() + self.visibility  # past it the lease has expired anyway
        backoff = 0.05
        while True:
            try:
                await self.store.call(_sql.RELEASE_RUN, (message.run_id, message.lease_token, error))
                return
            except psycopg.OperationalError as again:
                if time.monotonic() + backoff >= deadline:
                    log.info("could not hand back run %s (%s); its lease expires", message.run_id, again)
                    return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
            except (psycopg.Error, PgqrsError) as gone:  # finished or taken over meanwhile: nothing to give
                log.info("run %s not handed back: %s", message.run_id, gone)
                return

    async def _hand_back(self, message: Message) -> None:
        try:
            release = self.store.call(_sql.RELEASE_RUN, (message.run_id, message.lease_token, None))
            await asyncio.shield(release)
        except (psycopg.Error, PgqrsError) as exc:  # finished, taken over, or the database is away
            log.info("could not hand back run %s (%s); its lease will expire", message.run_id, exc)


# Bounds of the worker settings. The engine leases for more than 0 s and at most 1 day, and dequeues at most
# 1000 runs at once; below the lower bounds a worker would flood the database (a heartbeat every third of the
# visibility, a dequeue every poll interval when idle).
MAX_CONCURRENCY = 1000
VISIBILITY_RANGE = (0.1, 86400.0)
POLL_INTERVAL_RANGE = (0.01, 86400.0)
SHUTDOWN_TIMEOUT_RANGE = (0.0, 86400.0)


def checked_seconds(name: str, value: float | timedelta, low: float, high: float) -> float:
    """A worker setting in seconds (a number or a timedelta) from `low` to `high`, else InvalidArgument (a
    ValueError); bools, NaN and infinities are refused."""
    number = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(number, bool) or not isinstance(number, numbers.Real) or not low <= number <= high:
        raise InvalidArgument(f"{name} must be from {low:g} to {high:g} seconds, got {value!r}")
    return float(number)


def engine_error(exc: Exception) -> str:
    """The cause of a failed engine call, as the JSON error pgqrs.release_run keeps (always storable)."""
    cause = {"type": type(exc).__name__, "sqlstate": getattr(exc, "sqlstate", None),
             "message": storable_text(str(exc)[:2000])}
    return dumps(cause, "the error of an engine call")


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
        self._visibility = checked_seconds("visibility", seconds, *VISIBILITY_RANGE)
        return self

    def poll_interval(self, seconds: float | timedelta) -> ConsumerBuilder:
        """How long an idle worker waits for a notification before it looks anyway: 0.01 s to 1 day."""
        self._poll_interval = checked_seconds("poll_interval", seconds, *POLL_INTERVAL_RANGE)
        return self

    async def create(self, store: Store) -> Consumer:
        """Register the worker for the queue (an upsert by name): calls ``pgqrs.register_worker``,
        ``pgqrs.queue_channel`` and ``pgqrs.schema_version``; grows the store's pool to concurrency + 2.
        Raises SchemaMismatch (the database holds another schema version), UnknownWorkflow (QR001) and
        InvalidArgument (22023: a bad name, a hostname over 255 characters, a port not of 0-65535)."""
        rows = await store.call(_sql.REGISTER_WORKER,
                                (self._name, socket.gethostname(), self._port, self._queue, self._queue))
        worker_id, channel, version = rows[0]
        check_version(version)  # before taking any work: mismatched calls would fail every run
        needed = self._concurrency + 2  # one per run in flight, one for dequeue, one for heartbeats
        if store.pool.max_size < needed:
            await store.pool.resize(min_size=store.pool.min_size, max_size=needed)
        return Consumer(store, worker_id, self._name, self._queue, channel, self._handler, self._concurrency,
                        self._visibility, self._poll_interval)


def consumer(name: str, port: int | None, queue: str) -> ConsumerBuilder:
    """`pgqrs.consumer(name, port, queue)`: a ConsumerBuilder for a worker of `queue`."""
    return ConsumerBuilder(name, port, queue)
