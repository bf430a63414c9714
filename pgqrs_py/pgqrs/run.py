"""Runs: the manual step API of the seeds (`pgqrs.run().message(msg)...`), every engine call of a run."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import psycopg

from . import _sql
from ._json import dumps
from ._run_manual import ManualRun, RunId, StepGuard, as_time
from ._tracing import injected
from .store import AsyncConn, Store


class CompletionSender(Protocol):
    """A worker's sender of some of its runs' calls (`carries`), which it sends with others in one
    transaction: group commit (_groupcommit.py) or, one run at a time, with the next dequeue (_poller.py,
    LentConnection)."""

    carries: frozenset[str]

    async def call(self, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Send one of the calls it carries and return its rows once its transaction has committed."""
        ...


@dataclass(frozen=True)
class Message:
    """A leased queue message (a row of pgqrs.dequeue). `payload` is the run's input; `id` equals `run_id`;
    `fencing_token` strictly increases with each delivery of the run."""

    message_id: int
    run_id: int
    input: Any
    attempt: int
    lease_token: UUID  # NO_LEASE: a run handle not leased yet (Run.start() leases it)
    steps: dict[str, Any] = field(default_factory=dict)
    fencing_token: int = 0
    trace_context: Any = None  # the trace context its trigger stored (pgqrs/_tracing.py)

    @property
    def id(self) -> int:
        """The message id: the run id."""
        return self.message_id

    @property
    def payload(self) -> Any:
        """The run's input (the seeds' name for it)."""
        return self.input


@dataclass(frozen=True)
class AcquiredStep:
    """The answer of pgqrs.acquire_step: status EXECUTE / SKIPPED / WAIT, stored value, attempt, retry_at."""

    status: str
    value: Any
    attempt: int
    retry_at: datetime | None
    guard: StepGuard


class Run(ManualRun):
    """A run leased through a message: every call carries the lease token, which the engine checks first
    (fencing). "The lease errors" below: LeaseLost (QR004: the lease expired or another worker took the run
    over), RunCancelled (QR009: the run was cancelled), InvalidState (QR003: the run has finished), UnknownRun
    (QR002)."""

    message: Message

    def __init__(self, store: Store, message: Message, current_time: datetime | None,
                 conn: AsyncConn | None = None, lease_deadlines: dict[UUID, float] | None = None,
                 group_commit: CompletionSender | None = None) -> None:
        self.store = store
        self.message = message
        self.current_time = current_time
        self.conn = conn
        self._group_commit = group_commit  # a worker's sender of completions (_groupcommit.py, _poller.py)
        self._lease_deadlines = lease_deadlines  # a worker's view of its leases (monotonic), if it keeps one
        self.failed_call: psycopg.OperationalError | None = None
        self.outcome: str | None = None  # the run's status after this worker's last completion or failure
        # What a worker's heartbeat reports and watches (monotonic start times): the step bodies running now,
        # and the engine calls on their way (a call that never returns must not hold the lease forever; steps
        # run side by side make several).
        self.steps_in_flight: dict[str, float] = {}
        self._calls: list[float] = []

    def lease_expired(self) -> bool:
        """True when the worker running this run knows its lease has run out (so it must not start more work).
        Without a worker's bookkeeping (the manual API) it cannot tell: False, and the engine still fences."""
        if self._lease_deadlines is None:
            return False
        deadline = self._lease_deadlines.get(self.lease_token)
        return deadline is not None and time.monotonic() >= deadline

    @property
    def id(self) -> RunId:
        """The run id; callable too, `run.id()`, as pgqrs 0.15 spells it (docs/migrating-from-pgqrs.md)."""
        return RunId(self.message.run_id)

    @property
    def run_id(self) -> int:
        """The run id."""
        return self.message.run_id

    @property
    def lease_token(self) -> UUID:
        """The token of this delivery's lease, which every call of the run carries."""
        return self.message.lease_token

    @property
    def call_started(self) -> float | None:
        """When the oldest engine call of this run still on its way started (monotonic), or None."""
        return min(self._calls, default=None)

    async def _call(self, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        started = time.monotonic()
        self._calls.append(started)
        try:
            if self._group_commit is not None and query in self._group_commit.carries:
                return await self._group_commit.call(query, params)
            return await self.store.call(query, params, self.conn)
        except psycopg.OperationalError as exc:
            self.failed_call = exc  # lets a worker tell its own interrupted call from the user's code
            raise
        finally:
            self._calls.remove(started)

    async def acquire_step(self, step_id: str, current_time: datetime | str | None = None) -> AcquiredStep:
        """Ask the engine what to do with step `step_id`: calls ``pgqrs.acquire_step``. EXECUTE: run it (it is
        RUNNING now, with a new attempt counted unless it was paused); SKIPPED: it succeeded before, `.value`
        is its result; WAIT: a retry is due at `.retry_at` (compared with `current_time`, a datetime or ISO
        8601 text, default the database's now). Raises the lease errors, AttemptsExhausted (QR007: a failed
        step has used its policy's max_attempts), StepKindConflict (QR010: the step is a durable wait's or a
        child workflow's) and InvalidArgument (22023: a bad step id)."""
        rows = await self._call(_sql.ACQUIRE_STEP,
                                (self.run_id, step_id, self.lease_token, as_time(current_time)))
        status, value, attempt, retry_at = rows[0]
        self.note_acquired(step_id, status)
        return AcquiredStep(status, value, attempt, retry_at, StepGuard(self, step_id))

    async def complete_step(self, step_id: str, value: Any) -> bool:
        """Record the success of step `step_id` with `value` (as JSON): calls ``pgqrs.complete_step``. True
        when recorded; False when the same value was recorded before. Raises the lease errors, StepConflict
        (QR005: it succeeded with another value), StepKindConflict (QR010), InvalidArgument (22023: a bad
        step id) and NotSerializable."""
        return await self.complete_step_json(step_id, dumps(value, f"the result of step {step_id!r}"))

    async def complete_step_json(self, step_id: str, payload: str, duration: float | None = None) -> bool:
        """Record a success whose value is already JSON text: calls ``pgqrs.complete_step``; `duration`:
        seconds the body ran (the step's start is recorded that long before now). Returns and raises as
        complete_step."""
        params = (self.run_id, step_id, self.lease_token, payload, duration)
        rows = await self._call(_sql.COMPLETE_STEP, params)
        self.store.observer.step_finished(None, duration)
        return bool(rows[0][0])

    async def fail_step(self, step_id: str, error: Any, *, transient: bool = True,
                        retry_after: float | None = None, retry_policy: dict[str, Any] | None = None,
                        duration: float | None = None) -> str:
        """Record a failed attempt of step `step_id`: calls ``pgqrs.fail_step``; returns the run's status
        after it. When `transient` and the step has attempts left under `retry_policy` (else the
        workflow's): the run is QUEUED again and its lease released, visible after `retry_after` seconds or
        the policy's backoff. Else the run ends ERROR (its message dead-lettered). Raises the lease errors,
        StepConflict (QR005: the step already succeeded), StepKindConflict (QR010), InvalidArgument (22023:
        a bad step id or policy, a retry_after not within 0-30 days) and NotSerializable."""
        payload = dumps(error, f"the error of step {step_id!r}")
        policy = dumps(retry_policy, "the retry policy") if retry_policy is not None else None
        rows = await self._call(
            _sql.FAIL_STEP,
            (self.run_id, step_id, self.lease_token, payload, transient, retry_after, policy, duration),
        )
        self.outcome = str(rows[0][0])
        self.store.observer.step_finished(self.outcome, duration)
        return self.outcome

    async def pause_step(self, step_id: str, timeout: float | None = None) -> tuple[str, Any]:
        """Pause the run at step `step_id` until ``pgqrs.resume_run`` or `timeout` seconds (None: until
        resumed): calls ``pgqrs.pause_step``, which releases the lease. Returns ("PAUSED", None), or
        ("SUCCESS", value) when the step was recorded from outside first (nothing pauses then). Raises the
        lease errors, StepKindConflict (QR010) and InvalidArgument (22023: a bad step id, a timeout not
        within 0-365 days)."""
        rows = await self._call(_sql.PAUSE_STEP, (self.run_id, step_id, self.lease_token, timeout))
        return str(rows[0][0]), rows[0][1]

    async def sleep_step(self, step_id: str, *, seconds: float | None = None,
                         until: datetime | None = None) -> tuple[str, datetime]:
        """Sleep at step `step_id` for `seconds` (counted on the engine clock) or until `until` (one of
        them): calls ``pgqrs.sleep_step``. Returns ("SUCCESS", wake-up time) when the time has come (or the
        step was recorded as done: a replay keeps the first wake-up time), else ("WAITING", wake-up time):
        the run is WAITING, its lease released, and it is delivered again at the wake-up. Raises the lease
        errors, StepKindConflict (QR010: the step id is another kind of step) and InvalidArgument (22023:
        a time more than 365 days ahead, a bad step id)."""
        params = (self.run_id, step_id, self.lease_token, until, seconds)
        rows = await self._call(_sql.SLEEP_STEP, params)
        return str(rows[0][0]), rows[0][1]

    async def wait_event(self, step_id: str, key: str, timeout: float | None = None) -> tuple[str, Any]:
        """Wait at step `step_id` for event `key`, at most `timeout` seconds (None: no timeout): calls
        ``pgqrs.wait_event``. Returns ("EVENT", payload) when it was emitted, ("TIMEOUT", None) when the
        timeout passed first (both recorded: a replay returns the same), or ("WAITING", None): the run is
        WAITING, its lease released, until the emit or the timeout. Raises the lease errors,
        StepKindConflict (QR010: the step id is another kind of step, or waited for another key) and
        InvalidArgument (22023: a key not of 1-255 characters, a timeout not within 0-365 days)."""
        rows = await self._call(_sql.WAIT_EVENT, (self.run_id, step_id, self.lease_token, key, timeout))
        return str(rows[0][0]), rows[0][1]

    async def recv(self, step_id: str, topic: str, timeout: float | None = None) -> tuple[str, Any]:
        """Receive at step `step_id` the oldest message of `topic` sent to this run, waiting at most
        `timeout` seconds (None: no timeout): calls ``pgqrs.recv``. Returns ("MESSAGE", message), the
        message consumed by this step; ("TIMEOUT", None) when the timeout passed first (both recorded: a
        replay returns the same, never another message); or ("WAITING", None): the run is WAITING, its
        lease released, until a send or the timeout. Raises the lease errors, StepKindConflict (QR010: the
        step id is another kind of step, or a recv of another topic) and InvalidArgument (22023: a topic not
        of 1-255 characters, a timeout not within 0-365 days)."""
        rows = await self._call(_sql.RECV, (self.run_id, step_id, self.lease_token, topic, timeout))
        return str(rows[0][0]), rows[0][1]

    async def start_child(self, step_id: str, workflow: str, input: Any = None) -> int:
        """Start a run of `workflow` with `input` (a dict or dataclass; None for {}) as a child of this run,
        recorded as step `step_id`: calls ``pgqrs.start_child``. Returns the child's run id; a replay or a
        retry after a crash returns the same child, never a second one. Raises the lease errors,
        StepKindConflict (QR010: the step id is another kind of step), UnknownWorkflow (QR001),
        InvalidArgument (22023) and NotSerializable."""
        payload = dumps({} if input is None else input, f"the input of child workflow {workflow!r}")
        rows = await self._call(_sql.START_CHILD,
                                (self.run_id, step_id, self.lease_token, workflow, payload, injected()))
        return int(rows[0][0])

    async def wait_children(self, step_id: str, children: Sequence[int]) -> tuple[str, Any]:
        """Wait at step `step_id` until every run in `children` (run ids this run started with start_child)
        has finished: calls ``pgqrs.wait_children``. Returns ("DONE", outcomes), a list of {run_id, status,
        output, error} in the order given (recorded: a replay returns the same), or ("WAITING", None): the
        run is WAITING, its lease released, until the last of them finishes. Raises the lease errors,
        StepKindConflict (QR010: the step id is another kind of step, or a replay with other children),
        NotAChild (QR011) and InvalidArgument (22023: an empty list or over 100,000 ids)."""
        rows = await self._call(_sql.WAIT_CHILDREN, (self.run_id, step_id, self.lease_token, list(children)))
        return str(rows[0][0]), rows[0][1]

    async def step_spans(self) -> list[tuple[str, datetime | None, datetime | None]]:
        """(step id, start, end) of each recorded step of the run, from ``pgqrs.run_steps``: how a worker
        tells steps that ran side by side from a replay's drift. Raises UnknownRun (QR002)."""
        return [(str(step_id), start, end) for step_id, start, end in await self._call(_sql.RUN_STEP_SPANS,
                                                                                         (self.run_id,))]

    async def complete(self, output: Any = None) -> str:
        """Finish the run SUCCESS with `output` (as JSON): calls ``pgqrs.complete_run``, which archives its
        message and wakes `result()` waiters; returns "SUCCESS". Raises the lease errors (InvalidState also
        when the run is not RUNNING) and NotSerializable."""
        return await self.complete_json(dumps(output, f"the output of run {self.run_id}"))

    async def complete_json(self, payload: str) -> str:
        """complete() with the output as JSON text: calls ``pgqrs.complete_run``; raises as complete()."""
        rows = await self._call(_sql.COMPLETE_RUN, (self.run_id, self.lease_token, payload))
        self.outcome = str(rows[0][0])
        self.store.observer.run_finished(self.outcome)
        return self.outcome

    async def fail(self, error: Any) -> str:
        """Finish the run ERROR with `error` (as JSON): calls ``pgqrs.fail_run``, which dead-letters its
        message and wakes `result()` waiters; returns "ERROR". Raises the lease errors (InvalidState also
        when the run is not RUNNING) and NotSerializable."""
        payload = dumps(error, f"the error of run {self.run_id}")
        self.outcome = str((await self._call(_sql.FAIL_RUN, (self.run_id, self.lease_token, payload)))[0][0])
        self.store.observer.run_finished(self.outcome)
        return self.outcome

    async def release(self, error: Any = None) -> str:
        """Hand the run back to its queue: calls ``pgqrs.release_run``. `error` None for a shutdown (visible
        again at once); else the cause of a failed engine call, which the engine counts: the run comes back
        after the policy's backoff, or ends ERROR after max_attempts such deliveries in a row. Returns
        "QUEUED" or "ERROR". Raises the lease errors, InvalidArgument (22023: an error that is not a JSON
        object) and NotSerializable."""
        payload = dumps(error, f"the error of run {self.run_id}") if error is not None else None
        return str((await self._call(_sql.RELEASE_RUN, (self.run_id, self.lease_token, payload)))[0][0])

