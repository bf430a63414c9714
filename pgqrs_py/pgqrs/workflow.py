"""Running a workflow's steps: `ctx.step` (WorkflowContext); a step body runs through _acompat.call_body.

The handler side (`@workflow` functions, `@step`, invoke) is in handler.py, `pgqrs.workflow()` in builders.py,
`Step.pause` in outcomes.py.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from ._acompat import call_body, current_flow
from ._children import ChildWorkflows
from ._json import dumps
from ._tracing import Outcome, step_span
from .errors import (
    DuplicateStepId,
    LeaseLost,
    StepConflict,
    StepKindConflict,
    TransientError,
)
from .outcomes import BodyNotStarted, StepPause, Suspended, error_json
from .run import Run


class WorkflowContext(ChildWorkflows):
    """`ctx` of a handler: `await ctx.step(id, fn)` runs fn once per run, then replays its stored result; the
    durable waits (sleep, wait_for_event, recv) come from DurableWaits (_waits.py), child workflows
    (start_child, wait_child, gather) from ChildWorkflows (_children.py)."""

    def __init__(self, run: Run, journal: dict[str, Any]) -> None:
        self.run = run
        self.journal = journal
        self._seen: set[str] = set()
        self._auto_counts: dict[str, int] = {}
        self._own_flow = current_flow()  # a worker makes it in the task (thread) that runs the handler
        self._order = None
        self.drift = None
        # Plain step bodies run in threads, which nothing can stop: the worker must know whether one runs.
        self._bodies_lock = threading.Lock()
        self._bodies_running = 0
        self._abandoned = False

    @property
    def run_id(self) -> int:
        """The id of the run being executed."""
        return self.run.run_id

    @property
    def input(self) -> Any:
        """The run's input as stored (decoded JSON); the handler gets it as `params`."""
        return self.run.message.input

    @property
    def attempt(self) -> int:
        """How many times the run has been delivered, this delivery included (`runs.attempt`, counted by
        ``pgqrs.dequeue``)."""
        return self.run.message.attempt

    @property
    def fencing_token(self) -> int:
        """A number that strictly increases with each delivery of this run: pass it to an external system
        that must reject writes from a stale holder (one whose lease another worker has taken over)."""
        return self.run.message.fencing_token

    def abandon(self) -> bool:
        """The worker gives this execution up (its lease was lost, or a shutdown stopped waiting for it): no
        step body starts from now on. True when one is still running in its thread, which nothing can stop."""
        with self._bodies_lock:
            self._abandoned = True
            return self._bodies_running > 0

    @contextmanager
    def _body(self, step_id: str) -> Iterator[None]:
        """Entered by a plain step body's thread at the moment the body starts (see call_body): refuses when
        the lease ran out meanwhile or the execution was abandoned; the body counts as running until it ends.
        """
        with self._bodies_lock:
            if self._abandoned:
                raise BodyNotStarted(f"run {self.run_id} was given up before step {step_id!r} could start")
            if self.run.lease_expired():
                raise BodyNotStarted(f"lease on run {self.run_id} ran out before step {step_id!r} started")
            self._bodies_running += 1
        try:
            yield
        finally:
            with self._bodies_lock:
                self._bodies_running -= 1

    async def _replayed(self, step_id: str) -> tuple[bool, Any]:
        """What a step does before its body: (True, value) when the journal has `step_id` recorded SUCCESS
        (a value left out of the journal is read with ``pgqrs.acquire_step``), else (False, None) once the
        lease is known to be held still. Raises DuplicateStepId (the id is used twice in this execution),
        ReplayDrift (asked for out of the recorded order), StepKindConflict (QR010: the journal has the id as
        a durable wait's or a child workflow's step) and LeaseLost (the worker's view of the lease has run
        out: the body must not start)."""
        if step_id in self._seen:
            raise DuplicateStepId(
                f"step id {step_id!r} is used twice in one execution of run {self.run_id};"
                " step ids must be unique"
            )
        self._seen.add(step_id)
        await self._in_order(step_id)
        recorded = self.journal.get(step_id)
        if recorded is not None and recorded.get("kind") is not None:
            # The engine would refuse it too (QR010, pgqrs.acquire_step / complete_step): no round trip.
            raise StepKindConflict(
                f"step {step_id} of run {self.run_id} is a step of kind {recorded['kind']} (a durable wait"
                " or a child workflow), not an ordinary step; give each step of a run its own id"
            )
        if recorded is not None and recorded.get("status") == "SUCCESS":
            if recorded.get("value_omitted"):  # past the journal's size bound (pgqrs.dequeue): read it now
                return True, await self._recorded(step_id, (await self.run.acquire_step(step_id)).value)
            return True, recorded.get("value")
        if self.run.lease_expired():
            # Frozen (a GC pause, SIGSTOP, a slow VM) past the lease: another worker may own the run and may
            # have recorded this very step. Starting the body could repeat its side effects.
            raise LeaseLost(f"lease on run {self.run_id} ran out before step {step_id!r} could start")
        return False, None

    async def transaction_step(self, step_id: str, fn: Callable[..., Any], *,
                               retry_policy: dict[str, Any] | None = None) -> Any:
        """Run step `step_id` as `fn(conn)` in one database transaction with the step's record: the
        application's writes on `conn` commit exactly once, together with the result, or not at all.

        `conn` is a psycopg connection of the store's pool, of the store's flavour, inside a transaction. In
        pgqrs `fn` is a coroutine function (it runs on the event loop); in pgqrs.sync a plain function (it
        runs in the run's thread). Before the COMMIT the same connection records the step with
        ``pgqrs.complete_step`` under the run's lease. Replay and the lease check before the body starts
        are ctx.step's: a recorded transaction step returns its value and `fn` is not called again.

        Outcomes. A value: committed with the step and returned as decoded from its JSON (NotSerializable,
        rolled back, when JSON cannot hold it). A lease lost meanwhile: complete_step raises LeaseLost
        (QR004), or RunCancelled (QR009) for a cancelled run; the writes roll back and the exception
        propagates (let it: the worker drops the run; another runs the step again). An exception from `fn`
        rolls back and is then classified and recorded with ``pgqrs.fail_step`` on the run's own connection
        as in ctx.step: TransientError or psycopg.OperationalError retries under `retry_policy` (else the
        workflow's), anything else fails the run; either unwinds the handler (Suspended). `raise
        Step.pause()` is not supported here: it fails the step like any other exception. A step recorded
        from outside meanwhile (``pgqrs.update_step``) wins: the writes roll back and its value is returned.

        For other languages the same in plain SQL: `begin; <writes>; select pgqrs.complete_step(...);
        commit;` (docs/transactions.md). Raises DuplicateStepId, StepKindConflict (QR010: the id is a
        durable wait's or a child workflow's step), LeaseLost, RunCancelled, NotSerializable."""
        from ._transaction import transaction_step  # a local import: _transaction builds on this module

        return await transaction_step(self, step_id, fn, retry_policy)

    async def step(self, step_id: str, fn: Callable[[], Any], *,
                   retry_policy: dict[str, Any] | None = None) -> Any:
        """Run step `step_id` of this run once: `fn()` runs, its result is recorded, and every later execution
        of the run returns the recorded result instead of running `fn` again.

        Replay. The delivery brought the run's step journal (``pgqrs.dequeue``): a step recorded SUCCESS
        returns its value at once, without a round trip (a value left out of a journal past its size bound
        is read with ``pgqrs.acquire_step``). A recorded value that Python's json cannot read fails the run
        for good (``pgqrs.fail_run``).

        Lease check. A step that must run first checks the worker's own view of the lease: when it has run
        out (the process was frozen past it) the body does not start and LeaseLost is raised; a body in a
        thread checks again when its thread starts. The engine fences every write: recording the outcome
        raises LeaseLost (QR004) when the lease expired or another worker holds the run (which runs the
        step again), RunCancelled (QR009) when the run was cancelled; the worker drops the run on either
        (let them propagate).

        The body: a coroutine function runs on the event loop, anything else in a thread of its own
        (heartbeats go on meanwhile; a returned awaitable is awaited). While it runs the worker's
        heartbeats report it. Its outcome:

        - a value: stored as JSON with ``pgqrs.complete_step`` (NotSerializable, nothing recorded, when
          JSON cannot hold it) and returned as decoded from that JSON, as a replay returns it. When the
          step was recorded from outside meanwhile (``pgqrs.update_step``: StepConflict), the recorded
          value is returned.
        - `raise Step.pause(timeout)`: ``pgqrs.pause_step``; the run is PAUSED until ``pgqrs.resume_run``
          or the timeout, its lease released, and the handler is unwound (Suspended, a BaseException that
          `except Exception` does not catch). If the step was recorded from outside first, its value is
          returned instead.
        - TransientError, or psycopg.OperationalError (the body's own database trouble): a retryable
          failure.
        - any other Exception: a permanent failure. (A BaseException, such as a cancellation, records
          nothing.)

        A failure is recorded with ``pgqrs.fail_step`` (error_json: type, message, traceback). A retryable
        one with attempts left under `retry_policy` (else the workflow's; max_attempts counts this step's
        attempts) schedules a retry: the run goes back to its queue QUEUED, its lease released, visible
        after the TransientError's `retry_after` or the policy's backoff (base_seconds, doubled with each
        attempt when exponential, at most max_seconds, shortened by up to `jitter` of it). Any worker then
        gets it again: the steps recorded SUCCESS replay and this step runs again. A permanent failure, or
        a retryable one out of attempts, ends the run ERROR (its message dead-lettered). Either way the
        handler is unwound (Suspended).

        Replay drift. A replay must ask for the recorded steps in the order they were recorded (steps run
        side by side excepted; new steps go after the recorded ones): otherwise ReplayDrift is raised before
        the body runs, and the run ends ERROR with kind replay_drift (docs/reliability.md, "Replay drift").

        Raises DuplicateStepId when `step_id` is used twice in one execution, ReplayDrift as above,
        StepKindConflict (QR010) when the run recorded `step_id` as a durable wait's or a child workflow's
        step (from the journal, without a round trip), and LeaseLost, RunCancelled and NotSerializable as
        above."""
        found, value = await self._replayed(step_id)
        if found:
            return value
        attempt = int((self.journal.get(step_id) or {}).get("attempt") or 0) + 1
        with step_span(self.run_id, step_id, attempt) as outcome:
            return await self._execute(step_id, fn, retry_policy, outcome)

    async def _execute(self, step_id: str, fn: Callable[[], Any], retry_policy: dict[str, Any] | None,
                       outcome: Outcome) -> Any:
        """Run the body of a step not recorded yet and record what it did (step's docstring)."""
        started = time.monotonic()
        self.run.steps_in_flight[step_id] = started  # reported by the worker's heartbeat while it runs
        try:
            try:
                result = await call_body(fn, functools.partial(self._body, step_id))
            finally:
                self.run.steps_in_flight.pop(step_id, None)
        except BodyNotStarted:
            raise  # nothing ran, nothing is written: the run is another worker's now
        except StepPause as pause:
            status, value = await self.run.pause_step(step_id, pause.timeout)
            outcome(status)
            if status == "SUCCESS":  # the external event was recorded before we paused
                return await self._recorded(step_id, value)
            raise Suspended("PAUSED") from None
        except TransientError as exc:
            status = await self.run.fail_step(step_id, error_json(exc), transient=True,
                                              retry_after=exc.retry_after, retry_policy=retry_policy,
                                              duration=time.monotonic() - started)
            outcome(status)
            raise Suspended(status) from None
        except Exception as exc:
            # The body never uses the worker's connection, so a psycopg OperationalError here is the body's
            # own database trouble: transient, bounded by the retry policy. Anything else fails for good.
            transient = isinstance(exc, psycopg.OperationalError)
            status = await self.run.fail_step(step_id, error_json(exc), transient=transient,
                                              retry_policy=retry_policy if transient else None,
                                              duration=time.monotonic() - started)
            outcome(status)
            raise Suspended(status) from None
        text = dumps(result, f"the result of step {step_id!r}")
        try:
            await self.run.complete_step_json(step_id, text, time.monotonic() - started)
        except StepConflict:
            # update_step recorded this step from outside while the body ran: the recorded result wins.
            return await self._recorded(step_id, (await self.run.acquire_step(step_id)).value)
        outcome("SUCCESS")
        return json.loads(text)

    async def send(self, run_id: Any, topic: str, message: Any, step_id: str | None = None) -> int:
        """Send `message` to run `run_id` on `topic` as step `step_id` of this run (default "send", "send#2",
        ...): `store.send` (``pgqrs.send``) inside ctx.step, with an idempotency key made of this run and
        the step id, so a replay (even after a crash between the send and the step's record) never sends it
        twice. Returns the message id. Raises as ctx.step; a refused send (UnknownRun QR002, InvalidState
        QR003: the run has finished, InvalidArgument 22023) fails this run like any step error."""
        step_id = self.auto_id("send") if step_id is None else step_id
        key = f"pgqrs-step:{self.run_id}:{hashlib.sha256(step_id.encode()).hexdigest()}"

        async def send_once() -> int:
            return await self.run.store.send(run_id, topic, message, idempotency_key=key)

        return int(await self.step(step_id, send_once))
