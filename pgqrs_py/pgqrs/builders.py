"""The builders of the seeds' API: `pgqrs.workflow()` creates a workflow (pgqrs.create_workflow) and triggers
its runs (pgqrs.trigger); `pgqrs.run()` runs a leased message by hand or looks a run up (pgqrs.run_status);
`result()` waits for a run's outcome."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import psycopg

from . import _sql
from ._params import as_id, trigger_params
from ._run_manual import NO_LEASE
from .errors import ResultTimeout, mapped_errors, seconds
from .handler import WorkflowFunction
from .records import RunInfo, TriggerHandle, WorkflowDef, run_outcome
from .run import Message, Run
from .store import AsyncConn, Store, call_on
from .vocabulary import FINISHED_RUN_STATUSES

T = TypeVar("T")


class TriggerBuilder:
    """`.execute(store)` (or `.execute()` when the workflow builder has a store, or a caller's connection)."""

    def __init__(self, name: str, params: Any, store: Store | None) -> None:
        self._name = name
        self._params = params
        self._store = store
        self._key: str | None = None
        self._delay: float | None = None
        self._run_at: datetime | None = None
        self._priority = 0
        self._concurrency_key: str | None = None
        self._version: str | None = None

    def idempotency_key(self, key: str) -> TriggerBuilder:
        """A key that makes the trigger idempotent: the same key with the same input returns the existing run;
        with another input ``pgqrs.trigger`` raises IdempotencyConflict (QR006). Returns the builder."""
        self._key = key
        return self

    def delay(self, value: float | timedelta) -> TriggerBuilder:
        """Start the run after `value` (seconds or a timedelta, at most 365 days); returns the builder."""
        self._delay = seconds(value)
        return self

    def run_at(self, when: datetime) -> TriggerBuilder:
        """Start the run at `when` (at most 365 days ahead; not with delay); returns the builder."""
        self._run_at = when
        return self

    def priority(self, value: int) -> TriggerBuilder:
        """The run's priority, -100..100 (default 0): higher runs are delivered first, FIFO within one;
        returns the builder."""
        self._priority = value
        return self

    def concurrency_key(self, key: str) -> TriggerBuilder:
        """The key (1-255 characters) the workflow's max_concurrency_per_key counts the run under (a customer,
        a tenant); returns the builder."""
        self._concurrency_key = key
        return self

    def version(self, version: str) -> TriggerBuilder:
        """Pin the run to this version of the workflow code (1-128 letters, digits and _ . : -): only workers
        of that version take it. Default: the first versioned worker that takes it. Returns the builder."""
        self._version = version
        return self

    async def execute(self, target: Store | AsyncConn | None = None) -> TriggerHandle:
        """Start the run through `target`: a store, or a connection whose transaction the trigger joins
        (default: the workflow builder's store). Calls ``pgqrs.trigger``; raises as Store.trigger, and
        ValueError without a store."""
        if isinstance(target, psycopg.AsyncConnection):
            params = trigger_params(self._name, self._params, self._key, self._delay, self._run_at,
                                    self._priority, self._concurrency_key, self._version)
            rows = await call_on(target, _sql.TRIGGER, params)
            return TriggerHandle(rows[0][0], rows[0][2], self._params, self._name)
        store = target or self._store
        if store is None:
            raise ValueError("pass a store: .execute(store), or .store(store) before .trigger(...)")
        return await store.trigger(self._name, self._params, idempotency_key=self._key, delay=self._delay,
                                   run_at=self._run_at, priority=self._priority,
                                   concurrency_key=self._concurrency_key, version=self._version)


class WorkflowBuilder:
    """`pgqrs.workflow()`: `.name(n).store(s).create()`, `.trigger(p).execute()`, `@workflow(name=...)`."""

    def __init__(self, name: str | None = None, version: str | None = None) -> None:
        self._name = name
        self._version = version
        self._store: Store | None = None
        self._retry_policy: dict[str, Any] | None = None
        self._limits: dict[str, Any] = {}

    def name(self, name: str) -> WorkflowBuilder:
        """The workflow's name (1-128 letters, digits and _ . : -, not starting with . : -); returns the
        builder."""
        self._name = name
        return self

    def store(self, store: Store) -> WorkflowBuilder:
        """Use `store` for create() and trigger(...).execute(); returns the builder."""
        self._store = store
        return self

    def retry_policy(self, policy: dict[str, Any]) -> WorkflowBuilder:
        """The retry policy create() stores (max_attempts, backoff, base_seconds, max_seconds, jitter);
        returns the builder."""
        self._retry_policy = policy
        return self

    def max_concurrency(self, limit: int) -> WorkflowBuilder:
        """At most `limit` runs of the workflow hold a lease at once, across all workers (create() stores it);
        returns the builder."""
        self._limits["max_concurrency"] = limit
        return self

    def max_concurrency_per_key(self, limit: int) -> WorkflowBuilder:
        """At most `limit` runs with one trigger concurrency_key hold a lease at once (create() stores it);
        returns the builder."""
        self._limits["max_concurrency_per_key"] = limit
        return self

    def rate_limit(self, limit: int, period: float | timedelta | str) -> WorkflowBuilder:
        """At most `limit` deliveries of its runs in any `period` (seconds, a timedelta or "1 minute";
        create() stores it); returns the builder."""
        self._limits["rate_limit"] = {"limit": limit, "period": period}
        return self

    def _need_name(self) -> str:
        if not self._name:
            raise ValueError("give the workflow a name: pgqrs.workflow('name') or .name('name')")
        return self._name

    async def create(self, store: Store | None = None) -> WorkflowDef:
        """Create the workflow and its queue, or return the existing one: calls ``pgqrs.create_workflow``
        (Store.create_workflow, with its errors). Raises ValueError without a name or a store."""
        target = store or self._store
        if target is None:
            raise ValueError("call .store(store) first")
        return await target.create_workflow(self._need_name(), self._retry_policy, **self._limits)

    def trigger(self, params: Any = None) -> TriggerBuilder:
        """A TriggerBuilder for a run with input `params` (a dict or dataclass, None for {}); `.execute()`
        calls ``pgqrs.trigger``. Raises ValueError without a name."""
        return TriggerBuilder(self._need_name(), params, self._store)

    def __call__(self, fn: Callable[..., Awaitable[T]]) -> WorkflowFunction:
        """Decorator: `@pgqrs.workflow(name=..., version=...)` makes `fn(ctx, params)` a WorkflowFunction
        (named after the function without a name); a worker running it takes only runs of its version."""
        return WorkflowFunction(self._name or fn.__name__, fn, self._version)


def workflow(name: str | None = None, version: str | None = None) -> WorkflowBuilder:
    """`pgqrs.workflow(name)`: a WorkflowBuilder; also the `@pgqrs.workflow(name=..., version=...)` decorator
    (`version`: the version of this code, runs.version; docs/operations.md, "Retention and deploys")."""
    return WorkflowBuilder(name, version)


class RunBuilder:
    """`pgqrs.run()`: `.message(msg).store(s).execute()` → Run; `.status(x).store(s).get()` / `.result()`;
    pgqrs 0.15's `.message(m).store(s).get()` → the output or None."""

    def __init__(self) -> None:
        self._store: Store | None = None
        self._message: Any = None
        self._target: Any = None

    def store(self, store: Store) -> RunBuilder:
        """Use `store`; returns the builder."""
        self._store = store
        return self

    def message(self, message: Any) -> RunBuilder:
        """The run: a leased message (from dequeue), or a trigger result or run id (a run not leased yet,
        which
        Run.start() leases); returns the builder."""
        self._message = message
        return self

    def status(self, target: Any) -> RunBuilder:
        """The run to look up (an id, a trigger handle, a message, a run); returns the builder."""
        self._target = target
        return self

    def _need_store(self) -> Store:
        if self._store is None:
            raise ValueError("call .store(store) first")
        return self._store

    async def execute(self) -> Run:
        """A Run for the message, carrying its lease; for a trigger result or a run id, a Run without a lease
        yet (start() takes one: pgqrs 0.15's manual lifecycle). Calls ``pgqrs.now`` for the run's current
        time. Raises ValueError without a store or a message, TypeError for something that is not a run."""
        store = self._need_store()
        if self._message is None:
            raise ValueError("call .message(msg) first")
        message = self._message
        if not isinstance(message, Message):
            run_id = as_id(message)
            message = Message(run_id, run_id, getattr(message, "payload", None), 0, NO_LEASE)
        return Run(store, message, await store.now())

    async def get(self) -> Any:
        """`.status(x).get()`: the run's status row (RunInfo). `.message(m).get()` (pgqrs 0.15): the run's
        output once it succeeded, None while it has not finished. Calls ``pgqrs.run_status``. Raises
        UnknownRun (QR002), WorkflowFailed / RunCancelled (`.message(m).get()` of a run that failed or was
        cancelled); ValueError without a store."""
        if self._target is not None:
            return await run_status(self._need_store(), self._target)
        info = await run_status(self._need_store(), self._message)
        return run_outcome(info) if info.status in FINISHED_RUN_STATUSES else None

    async def result(self, timeout: float | Any = None) -> Any:
        """Wait for the run's outcome: wait_result (``pgqrs.run_status``), with its errors."""
        target = self._target if self._target is not None else self._message
        return await wait_result(self._need_store(), target, None if timeout is None else seconds(timeout))


def run() -> RunBuilder:
    """`pgqrs.run()`: a RunBuilder."""
    return RunBuilder()


async def run_status(store: Store, run: Any, conn: AsyncConn | None = None) -> RunInfo:
    """The run's status row: calls ``pgqrs.run_status`` (on `conn`, else on the store's replica when it has
    one and its row is fresh, see pgqrs/_pools.py, else a pooled connection). Raises UnknownRun (QR002), and
    TypeError for something that is not a run id."""
    run_id = as_id(run)
    row = await store.replica.run_status(run_id) if store.replica is not None and conn is None else None
    if row is None:
        row = (await store.call(_sql.RUN_STATUS, (run_id,), conn))[0]
    if store.replica is not None:
        store.replica.saw(row)
    return RunInfo(*row)


async def wait_result(store: Store, run: Any, timeout: float | None = None) -> Any:
    """Wait until the run finishes; its output, or WorkflowFailed.

    The wait holds no pooled connection: the store's listener (pgqrs/results.py) wakes the waiter, which is
    registered before its first status check, so a run that finishes in between is not missed. A lost
    database does not end the wait: it goes on once the database answers (`timeout` still holds). Reads
    ``pgqrs.run_status``. Raises WorkflowFailed (the run ended ERROR), RunCancelled, ResultTimeout,
    UnknownRun (QR002), UnreadableValue (an output Python's json cannot decode), and TypeError for
    something that is not a run id."""
    run_id = as_id(run)
    deadline = None if timeout is None else time.monotonic() + timeout
    waiter = store.results.add(run_id)
    try:
        status = "unknown: no answer from the database"
        try:  # the first check, on a pooled connection for a moment (the replica's, when fresh)
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            replica = store.replica
            row = await replica.run_status(run_id) if replica is not None else None
            if replica is not None and row is not None:
                replica.saw(row)
                info = RunInfo(*row)
            else:
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
