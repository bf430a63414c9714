"""Defining and triggering workflows: `workflow()` (builder, decorator), `ctx.step`, `@step`, `Step.pause`."""

from __future__ import annotations

import contextvars
import functools
import inspect
import json
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar

import psycopg

from . import _sql
from ._acompat import call_body
from ._json import UnreadableJson, dumps, from_json, storable_text
from .errors import DuplicateStepId, LeaseLost, StepConflict, TransientError, seconds
from .run import Run
from .store import AsyncConn, Store, TriggerHandle, WorkflowDef, call_on, trigger_params

T = TypeVar("T")


class StepPause(Exception):
    """Raised (via `raise Step.pause(...)`) inside a step body to pause the run at that step."""

    def __init__(self, timeout: float | None) -> None:
        super().__init__(f"pause for {timeout} s" if timeout is not None else "pause until resumed")
        self.timeout = timeout


class Step:
    """`raise Step.pause(seconds | timedelta | None)` pauses the run until `resume_run` or the timeout."""

    @staticmethod
    def pause(timeout: float | timedelta | None = None) -> StepPause:
        return StepPause(seconds(timeout) if timeout is not None else None)


class Suspended(BaseException):
    """Unwinds a handler whose run left this worker (retry scheduled, paused, or failed for good).

    A BaseException so that a user's `except Exception` around `ctx.step` cannot swallow it.
    """

    def __init__(self, run_status: str) -> None:
        super().__init__(run_status)
        self.run_status = run_status


def error_json(exc: BaseException) -> dict[str, Any]:
    """How a Python exception is stored as a step or run error. Always storable: what jsonb refuses (U+0000,
    a lone surrogate from a file name read with surrogateescape) is shown escaped, else the failure could not
    be recorded and the run would be delivered again and again."""
    trace = "".join(traceback.format_exception(exc))
    try:
        message = str(exc)
    except Exception as broken:  # a __str__ that raises must not stop the failure from being recorded
        message = f"<str() of the exception failed: {type(broken).__name__}>"
    return {"type": storable_text(type(exc).__name__), "message": storable_text(message),
            "traceback": storable_text(trace[-4000:])}


class BodyNotStarted(LeaseLost):
    """A step body was about to start in its thread when the lease was found gone (or the execution over)."""


_current: contextvars.ContextVar[WorkflowContext] = contextvars.ContextVar("pgqrs_workflow_context")


def current_context() -> WorkflowContext:
    """The context of the workflow execution running in this task (used by `@step`)."""
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError("a @step function was called outside a running workflow") from None


class WorkflowContext:
    """`ctx` of a handler: `await ctx.step(id, fn)` runs fn once per run, then replays its stored result."""

    def __init__(self, run: Run, journal: dict[str, Any]) -> None:
        self.run = run
        self.journal = journal
        self._seen: set[str] = set()
        self._auto_counts: dict[str, int] = {}
        # Plain step bodies run in threads, which nothing can stop: the worker must know whether one runs.
        self._bodies_lock = threading.Lock()
        self._bodies_running = 0
        self._abandoned = False

    @property
    def run_id(self) -> int:
        return self.run.run_id

    @property
    def input(self) -> Any:
        return self.run.message.input

    @property
    def attempt(self) -> int:
        return self.run.message.attempt

    @property
    def fencing_token(self) -> int:
        """A number that strictly increases with each delivery of this run: pass it to an external system
        that must reject writes from a stale holder (one whose lease another worker has taken over)."""
        return self.run.message.fencing_token

    def auto_id(self, base: str) -> str:
        """The id of a `@step` call: its name, then name#2, name#3 for repeated calls in this execution."""
        n = self._auto_counts.get(base, 0) + 1
        candidate = base if n == 1 else f"{base}#{n}"
        while candidate in self._seen:
            n += 1
            candidate = f"{base}#{n}"
        self._auto_counts[base] = n
        return candidate

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

    async def step(self, step_id: str, fn: Callable[[], Any], *,
                   retry_policy: dict[str, Any] | None = None) -> Any:
        if step_id in self._seen:
            raise DuplicateStepId(
                f"step id {step_id!r} is used twice in one execution of run {self.run_id};"
                " step ids must be unique"
            )
        self._seen.add(step_id)
        recorded = self.journal.get(step_id)
        if recorded is not None and recorded.get("status") == "SUCCESS":
            if recorded.get("value_omitted"):  # past the journal's size bound (pgqrs.dequeue): read it now
                return await self._recorded(step_id, (await self.run.acquire_step(step_id)).value)
            return recorded.get("value")
        if self.run.lease_expired():
            # Frozen (a GC pause, SIGSTOP, a slow VM) past the lease: another worker may own the run and may
            # have recorded this very step. Starting the body could repeat its side effects.
            raise LeaseLost(f"lease on run {self.run_id} ran out before step {step_id!r} could start")
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
            if status == "SUCCESS":  # the external event was recorded before we paused
                return await self._recorded(step_id, value)
            raise Suspended("PAUSED") from None
        except TransientError as exc:
            status = await self.run.fail_step(step_id, error_json(exc), transient=True,
                                              retry_after=exc.retry_after, retry_policy=retry_policy,
                                              duration=time.monotonic() - started)
            raise Suspended(status) from None
        except Exception as exc:
            # The body never uses the worker's connection, so a psycopg OperationalError here is the body's
            # own database trouble: transient, bounded by the retry policy. Anything else fails for good.
            transient = isinstance(exc, psycopg.OperationalError)
            status = await self.run.fail_step(step_id, error_json(exc), transient=transient,
                                              retry_policy=retry_policy if transient else None,
                                              duration=time.monotonic() - started)
            raise Suspended(status) from None
        text = dumps(result, f"the result of step {step_id!r}")
        try:
            await self.run.complete_step_json(step_id, text, time.monotonic() - started)
        except StepConflict:
            # update_step recorded this step from outside while the body ran: the recorded result wins.
            return await self._recorded(step_id, (await self.run.acquire_step(step_id)).value)
        return json.loads(text)

    async def _recorded(self, step_id: str, value: Any) -> Any:
        """A value recorded from outside (update_step); one Python cannot read fails the run for good."""
        if isinstance(value, UnreadableJson):
            await self.run.fail(error_json(value.error(f"the stored value of step {step_id!r}")))
            raise Suspended("ERROR")
        return value


def step(fn: Callable[..., Any] | None = None, *, name: str | None = None) -> Any:
    """Decorator: each call of the function inside a workflow is a step named after it (then `name#2`...)."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        base = name or func.__name__

        @functools.wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            ctx = current_context()
            return await ctx.step(ctx.auto_id(base), functools.partial(func, *args, **kwargs))

        return wrapper

    return decorate(fn) if fn is not None else decorate


class WorkflowFunction:
    """A handler registered with `@workflow(name=...)`: call it as the worker does, `await f(ctx, params)`."""

    def __init__(self, name: str, fn: Callable[..., Awaitable[Any]]) -> None:
        self.name = name
        self.fn = fn
        functools.update_wrapper(self, fn)
        params = list(inspect.signature(fn).parameters.values())
        hints = _type_hints(fn)
        self.params_type = hints.get(params[1].name) if len(params) > 1 else None

    async def __call__(self, ctx: WorkflowContext, params: Any) -> Any:
        return await self.fn(ctx, params)


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        import typing

        return typing.get_type_hints(fn)
    except Exception:  # unresolvable forward references: treat the parameters as untyped
        return {}


def as_workflow(handler: Callable[..., Any]) -> WorkflowFunction:
    """A plain handler function as a WorkflowFunction (which knows its parameter type)."""
    if isinstance(handler, WorkflowFunction):
        return handler
    return WorkflowFunction(getattr(handler, "__name__", "?"), handler)


async def invoke(handler: Callable[..., Any], ctx: WorkflowContext, raw_input: Any) -> Any:
    """Run a handler with the run's input, built into its annotated dataclass when it has one."""
    wf = as_workflow(handler)
    token = _current.set(ctx)
    try:
        return await wf.fn(ctx, from_json(raw_input, wf.params_type))
    finally:
        _current.reset(token)


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
