"""The handler side of a workflow: `@workflow` functions (WorkflowFunction), the `@step` decorator, and how a
worker calls a handler (invoke)."""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from ._json import from_json
from .run import AcquiredStep, Run
from .workflow import WorkflowContext

_current: contextvars.ContextVar[WorkflowContext] = contextvars.ContextVar("pgqrs_workflow_context")


def current_context() -> WorkflowContext:
    """The context of the workflow execution running in this task (used by `@step`)."""
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError("a @step function was called outside a running workflow") from None


def step(fn: Callable[..., Any] | None = None, *, name: str | None = None) -> Any:
    """Decorator: each call of the function inside a workflow is a step named after it (then `name#2`...).
    `@step`, `@step(name=...)`; without a function, `step()` is also pgqrs 0.15's step builder
    (`pgqrs.step().run(r).name(n).execute()`): a StepBuilder, which decorates when called with a function."""
    builder = StepBuilder(name)
    return builder(fn) if fn is not None else builder


def _step_decorator(func: Callable[..., Any], name: str | None) -> Callable[..., Awaitable[Any]]:
    base = name or func.__name__

    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = current_context()
        return await ctx.step(ctx.auto_id(base), functools.partial(func, *args, **kwargs))

    return wrapper


class StepBuilder:
    """`pgqrs.step()`: called with a function, the `@step` decorator; else pgqrs 0.15's builder of an
    acquire_step call: `.run(r).name(n)` (or `.id(n)`), optionally `.with_time(t)`, then
    `await .execute()`."""

    def __init__(self, name: str | None = None) -> None:
        self._name = name
        self._run: Run | None = None
        self._time: datetime | str | None = None

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        return _step_decorator(func, self._name)

    def run(self, run: Run) -> StepBuilder:
        """The run (holding its lease) whose step this is; returns the builder."""
        self._run = run
        return self

    def name(self, name: str) -> StepBuilder:
        """The step id; returns the builder."""
        self._name = name
        return self

    def id(self, step_id: str) -> StepBuilder:
        """The step id (as name()); returns the builder."""
        return self.name(step_id)

    def with_time(self, time: datetime | str) -> StepBuilder:
        """The current_time acquire_step decides retry timing with (a datetime or ISO 8601 text); returns the
        builder."""
        self._time = time
        return self

    async def execute(self) -> AcquiredStep:
        """Acquire the step: Run.acquire_step (``pgqrs.acquire_step``), with its errors. Raises ValueError
        without a run or a step id."""
        if self._run is None or self._name is None:
            raise ValueError("pgqrs.step() needs .run(run) and .name(step_id) before execute()")
        return await self._run.acquire_step(self._name, current_time=self._time)


class WorkflowFunction:
    """A handler registered with `@workflow(name=...)`: call it as the worker does, `await f(ctx, params)`."""

    def __init__(self, name: str, fn: Callable[..., Awaitable[Any]], version: str | None = None) -> None:
        self.name = name
        self.fn = fn
        self.version = version  # of this code: a worker running it takes only runs of this version
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
