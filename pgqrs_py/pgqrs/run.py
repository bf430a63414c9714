"""Runs: the manual step API of the seeds (`pgqrs.run().message(msg)...`) and status / result look-ups."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from . import _sql
from ._json import dumps
from .errors import ResultTimeout, mapped_errors, seconds
from .records import RunInfo, run_outcome
from .store import AsyncConn, Store, as_id
from .vocabulary import FINISHED_RUN_STATUSES


@dataclass(frozen=True)
class Message:
    """A leased queue message (a row of pgqrs.dequeue). `payload` is the run's input; `id` equals `run_id`;
    `fencing_token` strictly increases with each delivery of the run."""

    message_id: int
    run_id: int
    input: Any
    attempt: int
    lease_token: UUID
    steps: dict[str, Any] = field(default_factory=dict)
    fencing_token: int = 0

    @property
    def id(self) -> int:
        return self.message_id

    @property
    def payload(self) -> Any:
        return self.input


class StepGuard:
    """Records the outcome of a step that acquire_step told you to EXECUTE."""

    def __init__(self, run: Run, step_id: str) -> None:
        self._run = run
        self.step_id = step_id

    async def success(self, value: Any = None) -> bool:
        return await self._run.complete_step(self.step_id, value)

    async def fail(self, error: Any, *, transient: bool = True, retry_after: float | None = None) -> str:
        return await self._run.fail_step(self.step_id, error, transient=transient, retry_after=retry_after)

    async def pause(self, timeout: float | None = None) -> tuple[str, Any]:
        return await self._run.pause_step(self.step_id, timeout)


@dataclass(frozen=True)
class AcquiredStep:
    """The answer of pgqrs.acquire_step: status EXECUTE / SKIPPED / WAIT, stored value, attempt, retry_at."""

    status: str
    value: Any
    attempt: int
    retry_at: datetime | None
    guard: StepGuard


class Run:
    """A run leased through a message: every call carries the lease token (fencing)."""

    def __init__(self, store: Store, message: Message, current_time: datetime | None,
                 conn: AsyncConn | None = None, lease_deadlines: dict[UUID, float] | None = None) -> None:
        self.store = store
        self.message = message
        self.current_time = current_time
        self.conn = conn
        self._lease_deadlines = lease_deadlines  # a worker's view of its leases (monotonic), if it keeps one
        self.failed_call: psycopg.OperationalError | None = None
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
    def id(self) -> int:
        return self.message.run_id

    @property
    def run_id(self) -> int:
        return self.message.run_id

    @property
    def lease_token(self) -> UUID:
        return self.message.lease_token

    @property
    def call_started(self) -> float | None:
        """When the oldest engine call of this run still on its way started (monotonic), or None."""
        return min(self._calls, default=None)

    async def _call(self, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        started = time.monotonic()
        self._calls.append(started)
        try:
            return await self.store.call(query, params, self.conn)
        except psycopg.OperationalError as exc:
            self.failed_call = exc  # lets a worker tell its own interrupted call from the user's code
            raise
        finally:
            self._calls.remove(started)

    async def acquire_step(self, step_id: str, current_time: datetime | None = None) -> AcquiredStep:
        rows = await self._call(_sql.ACQUIRE_STEP, (self.run_id, step_id, self.lease_token, current_time))
        status, value, attempt, retry_at = rows[0]
        return AcquiredStep(status, value, attempt, retry_at, StepGuard(self, step_id))

    async def complete_step(self, step_id: str, value: Any) -> bool:
        return await self.complete_step_json(step_id, dumps(value, f"the result of step {step_id!r}"))

    async def complete_step_json(self, step_id: str, payload: str, duration: float | None = None) -> bool:
        """Record a success whose value is already JSON text; `duration`: seconds the body ran (see SQL)."""
        params = (self.run_id, step_id, self.lease_token, payload, duration)
        rows = await self._call(_sql.COMPLETE_STEP, params)
        return bool(rows[0][0])

    async def fail_step(self, step_id: str, error: Any, *, transient: bool = True,
                        retry_after: float | None = None, retry_policy: dict[str, Any] | None = None,
                        duration: float | None = None) -> str:
        """Record a failed attempt; returns the run's status after it (QUEUED to retry, ERROR when final)."""
        payload = dumps(error, f"the error of step {step_id!r}")
        policy = dumps(retry_policy, "the retry policy") if retry_policy is not None else None
        rows = await self._call(
            _sql.FAIL_STEP,
            (self.run_id, step_id, self.lease_token, payload, transient, retry_after, policy, duration),
        )
        return str(rows[0][0])

    async def pause_step(self, step_id: str, timeout: float | None = None) -> tuple[str, Any]:
        rows = await self._call(_sql.PAUSE_STEP, (self.run_id, step_id, self.lease_token, timeout))
        return str(rows[0][0]), rows[0][1]

    async def complete(self, output: Any = None) -> str:
        return await self.complete_json(dumps(output, f"the output of run {self.run_id}"))

    async def complete_json(self, payload: str) -> str:
        return str((await self._call(_sql.COMPLETE_RUN, (self.run_id, self.lease_token, payload)))[0][0])

    async def fail(self, error: Any) -> str:
        payload = dumps(error, f"the error of run {self.run_id}")
        return str((await self._call(_sql.FAIL_RUN, (self.run_id, self.lease_token, payload)))[0][0])

    async def release(self, error: Any = None) -> str:
        """Hand the run back: `error` None for a shutdown; else the cause of a failed engine call (counted,
        see pgqrs.release_run)."""
        payload = dumps(error, f"the error of run {self.run_id}") if error is not None else None
        return str((await self._call(_sql.RELEASE_RUN, (self.run_id, self.lease_token, payload)))[0][0])


async def run_status(store: Store, run: Any, conn: AsyncConn | None = None) -> RunInfo:
    rows = await store.call(_sql.RUN_STATUS, (as_id(run),), conn)
    return RunInfo(*rows[0])


async def wait_result(store: Store, run: Any, timeout: float | None = None) -> Any:
    """Wait until the run finishes; its output, or WorkflowFailed.

    The wait holds no pooled connection: the store's listener (pgqrs/results.py) wakes the waiter, which is
    registered before its first status check, so a run that finishes in between is not missed. A lost database
    does not end the wait: it goes on once the database answers (`timeout` still holds).
    """
    run_id = as_id(run)
    deadline = None if timeout is None else time.monotonic() + timeout
    waiter = store.results.add(run_id)
    try:
        status = "unknown: no answer from the database"
        try:  # the first check, on a pooled connection for a moment
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            async with store.pool.connection(timeout=wait) as conn:
                info = await run_status(store, run_id, conn)
            status = info.status
            if info.status in FINISHED_RUN_STATUSES:
                return run_outcome(info)
        except psycopg.OperationalError:  # includes the pool's timeout: the listener checks once it connects
            pass
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not await store.results.wait(waiter, remaining):
            raise ResultTimeout(f"run {run_id} did not finish within {timeout} s (status {status})")
        if waiter.error is not None:
            with mapped_errors():
                raise waiter.error
        assert waiter.row is not None
        return run_outcome(RunInfo(*waiter.row))
    finally:
        store.results.discard(waiter)


class RunBuilder:
    """`pgqrs.run()`: `.message(msg).store(s).execute()` → Run; `.status(x).store(s).get()` / `.result()`."""

    def __init__(self) -> None:
        self._store: Store | None = None
        self._message: Message | None = None
        self._target: Any = None

    def store(self, store: Store) -> RunBuilder:
        self._store = store
        return self

    def message(self, message: Message) -> RunBuilder:
        self._message = message
        return self

    def status(self, target: Any) -> RunBuilder:
        self._target = target
        return self

    def _need_store(self) -> Store:
        if self._store is None:
            raise ValueError("call .store(store) first")
        return self._store

    async def execute(self) -> Run:
        store = self._need_store()
        if self._message is None:
            raise ValueError("call .message(msg) first")
        return Run(store, self._message, await store.now())

    async def get(self) -> RunInfo:
        target = self._target if self._target is not None else self._message
        return await run_status(self._need_store(), target)

    async def result(self, timeout: float | Any = None) -> Any:
        target = self._target if self._target is not None else self._message
        return await wait_result(self._need_store(), target, None if timeout is None else seconds(timeout))


def run() -> RunBuilder:
    return RunBuilder()
