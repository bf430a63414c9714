"""The handler side of a workflow: `@workflow` functions (WorkflowFunction), the `@step` decorator, and how a
worker calls a handler (invoke)."""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from ._json import from_json
from .workflow import WorkflowContext

_current: contextvars.ContextVar[WorkflowContext] = contextvars.ContextVar("pgqrs_workflow_context")


def current_context() -> WorkflowContext:
    """The context of the workflow execution running in this task (used by `@step`)."""
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError("a @step function was called outside a running workflow") from None


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
