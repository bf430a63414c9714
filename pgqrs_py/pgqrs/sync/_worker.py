"""The sync worker loop: the part of `pgqrs.sync.Consumer` whose concurrency model differs (hand-written).

scripts/gen_sync.py generates the rest of the class from pgqrs/consumer.py and makes `WorkerLoop` its base:
every method defined here replaces the async one of the same name. Threads instead of tasks: the calling
thread dispatches, one thread per run in flight (at most `concurrency`), one thread LISTENs (with
`notifies(timeout=...)`), one sends heartbeats. A thread cannot be cancelled: a run whose lease is lost goes
on until its thread's next write, which the engine refuses (fencing), or its next step body, which does not
start; a run not finished when a graceful stop times out is given up (see `_drain`).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg

from .. import _sql
from .._conncheck import connection_lost
from ..consumer import SHUTDOWN_TIMEOUT_RANGE, checked_seconds
from ..errors import LeaseLost, PgqrsError, RunCancelled
from ..run import Message
from ..workflow import Suspended
from .run import Run
from .workflow import WorkflowContext

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger("pgqrs.worker")


class WorkerLoop:
    """`poll_forever()` and its helpers for the sync Consumer."""

    if TYPE_CHECKING:  # provided by the generated Consumer
        store: Store
        id: int
        name: str
        channel: str
        handler: Any
        concurrency: int
        visibility: float
        _stop: threading.Event
        _wake: threading.Event
        _inflight: dict[threading.Thread, Message]
        _lease_deadlines: dict[UUID, float]
        _runs: dict[UUID, Run]

        def stop(self) -> None: ...
        def dequeue(self, batch_size: int = 1, visibility: float | None = None) -> list[Message]: ...
        def _idle_timeout(self) -> float: ...
        def _on_notify(self, payload: str) -> None: ...
        def _run_handler(self, run: Run, ctx: WorkflowContext) -> None: ...
        def _finished(self, task: threading.Thread) -> None: ...
        def _leased(self, messages: list[Message], sent: float) -> None: ...
        def _extended(self, rows: list[tuple[Any, ...]], sent: float) -> set[UUID]: ...
        def _heartbeat(self, tokens: list[UUID], steps: str | None = None) -> list[tuple[Any, ...]]: ...
        def _beat_payload(self, messages: list[Message]) -> tuple[list[UUID], str | None, list[Message]]: ...
        def _abandon_hung(self, hung: list[Message]) -> list[threading.Thread]: ...
        def _calling(self, message: Message) -> bool: ...
        def _close_heartbeat(self) -> None: ...
        def _after_lost_connection(self, message: Message, own: bool, exc: Exception) -> None: ...

    _contexts: dict[threading.Thread, WorkflowContext]  # of the runs in flight, once their thread made one

    def poll_forever(self, *, shutdown_timeout: float | None = None) -> None:
        """Run the handler for every run of the queue until `stop()`, SIGTERM or SIGINT (main thread only)."""
        if self.handler is None:
            raise ValueError("poll_forever needs a handler: pgqrs.sync.consumer(...).handler(fn).create(s)")
        if shutdown_timeout is not None:
            shutdown_timeout = checked_seconds("shutdown_timeout", shutdown_timeout, *SHUTDOWN_TIMEOUT_RANGE)
        closing = threading.Event()  # ends the listener and heartbeat threads
        self._contexts = {}
        previous = self._install_signal_handlers()
        background = [
            threading.Thread(target=target, args=(closing,), name=f"pgqrs-{what}-{self.name}", daemon=True)
            for what, target in (("listen", self._listen), ("heartbeat", self._heartbeat_loop))
        ]
        for thread in background:
            thread.start()
        try:
            self._dispatch_loop()
        finally:
            # Also when the loop died of something unexpected: runs in flight finish or are handed back.
            self._drain(self.visibility if shutdown_timeout is None else shutdown_timeout)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            closing.set()
            for thread in background:
                thread.join(timeout=5.0)
            self._close_heartbeat()
            try:
                self.store.call(_sql.STOP_WORKER, (self.id,))
            except psycopg.Error as exc:
                log.warning("could not mark worker %s stopped: %s", self.name, exc)

    def _dispatch_loop(self) -> None:
        backoff = 0.05
        while not self._stop.is_set():
            self._wake.clear()  # before dequeue: a notification arriving during it must not be lost
            free = self.concurrency - len(self._inflight)
            if free > 0:
                sent = time.monotonic()
                try:
                    messages = self.dequeue(free)
                except (psycopg.Error, PgqrsError) as exc:  # the database away, or mid-upgrade: keep trying
                    log.warning("dequeue failed (%s); retrying in %.2f s", exc, backoff)
                    self._sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                backoff = 0.05
                self._leased(messages, sent)
                for message in messages:
                    thread = threading.Thread(target=self._execute, args=(message,),
                                              name=f"pgqrs-run-{message.run_id}", daemon=True)
                    self._inflight[thread] = message
                    thread.start()
                if len(messages) == free:
                    continue  # the queue may hold more; look again before sleeping
            self._sleep(self._idle_timeout())

    def _sleep(self, timeout: float) -> None:
        self._wake.wait(timeout)

    def _drain(self, timeout: float) -> None:
        """Let in-flight runs finish (heartbeats go on meanwhile); after `timeout`, give up the runs still
        going: none starts another step body. One between steps goes back to the queue at once (its next
        write is refused). One inside a step body is never handed back, or its next worker would run the body
        while this thread still does: it is no longer heartbeated once poll_forever returns, and its lease
        expires while the process exits (run threads are daemons)."""
        deadline = time.monotonic() + timeout
        for thread in list(self._inflight):
            thread.join(max(0.0, deadline - time.monotonic()))
        for thread, message in list(self._inflight.items()):
            if not thread.is_alive():
                continue
            ctx = self._contexts.get(thread)
            if ctx is None or ctx.abandon():  # without a context yet, it may be about to start a body
                log.warning("run %s still in a step body after %.1f s; not handed back: its lease expires",
                            message.run_id, timeout)
            else:
                log.warning("run %s still running after %.1f s; handing it back", message.run_id, timeout)
                self._hand_back(message)

    def _install_signal_handlers(self) -> dict[int, Any]:
        """SIGTERM / SIGINT call stop() while poll_forever runs (main thread only); returns what to restore"""
        if threading.current_thread() is not threading.main_thread():
            return {}  # the embedding program stops us with stop()
        previous: dict[int, Any] = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            old = signal.signal(sig, lambda _signum, _frame: self.stop())
            previous[sig] = old if old is not None else signal.SIG_DFL
        return previous

    def _listen(self, closing: threading.Event) -> None:
        """LISTEN on the queue's channel; reconnects with backoff and polls once after every (re)connect."""
        backoff = 0.05
        while not closing.is_set():
            try:
                with psycopg.Connection.connect(self.store.dsn, autocommit=True) as conn:
                    conn.execute(f"listen {self.channel}")
                    backoff = 0.05
                    self._wake.set()  # notifications sent while we were away are lost: look once
                    while not closing.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self._on_notify(note.payload)
            except (psycopg.Error, OSError) as exc:
                if closing.is_set():
                    break
                log.warning("listen connection lost (%s); reconnecting in %.2f s", exc, backoff)
                self._wake.set()  # poll meanwhile
                closing.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    def _heartbeat_loop(self, closing: threading.Event) -> None:
        interval = self.visibility / 3
        while not closing.wait(interval):
            inflight = dict(self._inflight)
            tokens, steps, hung = self._beat_payload(list(inflight.values()))
            self._abandon_hung(hung)  # a thread cannot be stopped: it stays blocked in its call (a daemon)
            sent = time.monotonic()
            try:
                rows = self._heartbeat(tokens, steps)
            except Exception as exc:  # keep beating: a lapse must not let every lease expire
                log.warning("heartbeat failed: %s", exc)
                continue
            lost = self._extended(rows, sent)
            for thread, message in inflight.items():
                # a run that finished while the heartbeat was on its way has no lease left either: not lost
                if message.lease_token in lost and thread in self._inflight and not self._calling(message):
                    log.warning("lease on run %s lost (taken over or cancelled); it starts no further step",
                                message.run_id)

    def _execute(self, message: Message) -> None:
        own_connection_lost = True  # unless the run's connection is found alive below
        try:
            with self.store.pool.connection() as conn:
                run = Run(self.store, message, None, conn, self._lease_deadlines)
                self._runs[message.lease_token] = run
                ctx = WorkflowContext(run, message.steps or {})
                self._contexts[threading.current_thread()] = ctx
                try:
                    self._run_handler(run, ctx)
                except psycopg.OperationalError:
                    own_connection_lost = connection_lost(conn)
                    raise
        except Suspended as exc:
            log.debug("run %s left this worker: %s", message.run_id, exc.run_status)
        except LeaseLost as exc:
            log.warning("run %s abandoned: %s", message.run_id, exc)
        except RunCancelled as exc:
            log.info("run %s stopped: %s", message.run_id, exc)
        except psycopg.OperationalError as exc:
            self._after_lost_connection(message, own_connection_lost, exc)
        except Exception:
            log.exception("run %s: unexpected error in the worker", message.run_id)
        finally:
            self._contexts.pop(threading.current_thread(), None)
            self._finished(threading.current_thread())

    def _hand_back(self, message: Message) -> None:
        try:
            self.store.call(_sql.RELEASE_RUN, (message.run_id, message.lease_token, None))
        except (psycopg.Error, PgqrsError) as exc:  # finished, taken over, or the database is away
            log.info("could not hand back run %s (%s); its lease will expire", message.run_id, exc)
