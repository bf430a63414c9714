"""The builders of the seeds' API: `pgqrs.workflow()` creates a workflow (pgqrs.create_workflow) and triggers
its runs (pgqrs.trigger); `pgqrs.run()` runs a leased message by hand or looks a run up (pgqrs.run_status)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import psycopg

from . import _sql
from .errors import seconds
from .handler import WorkflowFunction
from .records import RunInfo, TriggerHandle, WorkflowDef
from .run import Message, Run, run_status, wait_result
from .store import AsyncConn, Store, call_on, trigger_params

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

    async def execute(self, target: Store | AsyncConn | None = None) -> TriggerHandle:
        """Start the run through `target`: a store, or a connection whose transaction the trigger joins
        (default: the workflow builder's store). Calls ``pgqrs.trigger``; raises as Store.trigger, and
        ValueError without a store."""
        if isinstance(target, psycopg.AsyncConnection):
            params = trigger_params(self._name, self._params, self._key, self._delay, self._run_at)
            rows = await call_on(target, _sql.TRIGGER, params)
            return TriggerHandle(rows[0][0], rows[0][2])
        store = target or self._store
        if store is None:
            raise ValueError("pass a store: .execute(store), or .store(store) before .trigger(...)")
        return await store.trigger(self._name, self._params, idempotency_key=self._key, delay=self._delay,
                                   run_at=self._run_at)


class WorkflowBuilder:
    """`pgqrs.workflow()`: `.name(n).store(s).create()`, `.trigger(p).execute()`, `@workflow(name=...)`."""

    def __init__(self, name: str | None = None) -> None:
        self._name = name
        self._store: Store | None = None
        self._retry_policy: dict[str, Any] | None = None

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
        return await target.create_workflow(self._need_name(), self._retry_policy)

    def trigger(self, params: Any = None) -> TriggerBuilder:
        """A TriggerBuilder for a run with input `params` (a dict or dataclass, None for {}); `.execute()`
        calls ``pgqrs.trigger``. Raises ValueError without a name."""
        return TriggerBuilder(self._need_name(), params, self._store)

    def __call__(self, fn: Callable[..., Awaitable[T]]) -> WorkflowFunction:
        """Decorator: `@pgqrs.workflow(name=...)` makes `fn(ctx, params)` a WorkflowFunction (named after the
        function without a name)."""
        return WorkflowFunction(self._name or fn.__name__, fn)


def workflow(name: str | None = None) -> WorkflowBuilder:
    """`pgqrs.workflow(name)`: a WorkflowBuilder; also the `@pgqrs.workflow(name=...)` decorator."""
    return WorkflowBuilder(name)


class RunBuilder:
    """`pgqrs.run()`: `.message(msg).store(s).execute()` → Run; `.status(x).store(s).get()` / `.result()`."""

    def __init__(self) -> None:
        self._store: Store | None = None
        self._message: Message | None = None
        self._target: Any = None

    def store(self, store: Store) -> RunBuilder:
        """Use `store`; returns the builder."""
        self._store = store
        return self

    def message(self, message: Message) -> RunBuilder:
        """The leased message (from dequeue) to run; returns the builder."""
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
        """A Run for the message, carrying its lease: calls ``pgqrs.now`` for the run's current time. Raises
        ValueError without a store or a message."""
        store = self._need_store()
        if self._message is None:
            raise ValueError("call .message(msg) first")
        return Run(store, self._message, await store.now())

    async def get(self) -> RunInfo:
        """The run's status row: calls ``pgqrs.run_status`` for the run given to status(), else the message's.
        Raises UnknownRun (QR002); ValueError without a store."""
        target = self._target if self._target is not None else self._message
        return await run_status(self._need_store(), target)

    async def result(self, timeout: float | Any = None) -> Any:
        """Wait for the run's outcome: wait_result (``pgqrs.run_status``), with its errors."""
        target = self._target if self._target is not None else self._message
        return await wait_result(self._need_store(), target, None if timeout is None else seconds(timeout))


def run() -> RunBuilder:
    """`pgqrs.run()`: a RunBuilder."""
    return RunBuilder()
