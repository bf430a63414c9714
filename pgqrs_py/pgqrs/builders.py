"""`pgqrs.workflow()`: create a workflow (pgqrs.create_workflow) and trigger its runs (pgqrs.trigger)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import psycopg

from . import _sql
from .errors import seconds
from .records import TriggerHandle, WorkflowDef
from .store import AsyncConn, Store, call_on, trigger_params
from .workflow import WorkflowFunction

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
        self._key = key
        return self

    def delay(self, value: float | timedelta) -> TriggerBuilder:
        self._delay = seconds(value)
        return self

    def run_at(self, when: datetime) -> TriggerBuilder:
        self._run_at = when
        return self

    async def execute(self, target: Store | AsyncConn | None = None) -> TriggerHandle:
        """Start the run (pgqrs.trigger) through `target`: a store, or a connection whose transaction the
        trigger joins (default: the workflow builder's store)."""
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
        self._name = name
        return self

    def store(self, store: Store) -> WorkflowBuilder:
        self._store = store
        return self

    def retry_policy(self, policy: dict[str, Any]) -> WorkflowBuilder:
        self._retry_policy = policy
        return self

    def _need_name(self) -> str:
        if not self._name:
            raise ValueError("give the workflow a name: pgqrs.workflow('name') or .name('name')")
        return self._name

    async def create(self, store: Store | None = None) -> WorkflowDef:
        target = store or self._store
        if target is None:
            raise ValueError("call .store(store) first")
        return await target.create_workflow(self._need_name(), self._retry_policy)

    def trigger(self, params: Any = None) -> TriggerBuilder:
        return TriggerBuilder(self._need_name(), params, self._store)

    def __call__(self, fn: Callable[..., Awaitable[T]]) -> WorkflowFunction:
        return WorkflowFunction(self._name or fn.__name__, fn)


def workflow(name: str | None = None) -> WorkflowBuilder:
    return WorkflowBuilder(name)
