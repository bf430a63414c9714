"""pgqrs 0.15's decorators (`from pgqrs.decorators import workflow, step`): a workflow and its steps take the
run handle as their first argument, and drive the engine through it (docs/migrating-from-pgqrs.md).

- `@workflow(name=...)` makes `f(run, *args)` a WorkflowDef. `await wf(run, input)` leases the run unless it
  holds a lease already (``pgqrs.lease_run``), runs `f`, and records its return value (``pgqrs.complete_run``)
  or its exception (``pgqrs.fail_run``). Called with the run alone (the 0.15 worker loop does), `f` gets the
  run's input. A run that already succeeded returns its output without running `f` again.
- `@step` makes `f(run, *args)` a step whose id is the function's name: a recorded success is returned without
  running `f` (``pgqrs.acquire_step`` answers SKIPPED); else `f` runs and its value is recorded, its
  TransientStepError (or TransientError) recorded as a transient failure with {is_transient, code, message},
  any other Exception as a permanent one.

These are not our `pgqrs.workflow` / `pgqrs.step` (which take a WorkflowContext and `ctx.step`); the two may
be used in one program, each with its own kind of handler.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

from .builders import run_status
from .compat_015.errors import PausedError, StepNotReadyError
from .errors import AttemptsExhausted, InvalidState, LeaseLost, RunCancelled, TransientError
from .records import run_outcome
from .run import Run
from .vocabulary import StepAnswer

# raised through the decorators as they are: each leaves the run as the engine already recorded it
PASS_THROUGH = (StepNotReadyError, AttemptsExhausted, PausedError, LeaseLost, RunCancelled)


class WorkflowDef:
    """A decorated workflow: `name`, and `await wf(run, *args)` (see the module's docstring). Not the record
    `pgqrs.WorkflowDef` (a row of pgqrs.create_workflow): this name lives only in pgqrs.decorators."""

    __slots__ = ("name", "run", "func")

    def __init__(self, name: str, run: Callable[..., Awaitable[Any]],
                 func: Callable[..., Awaitable[Any]]) -> None:
        self.name = name
        self.run = run
        self.func = func

    def __call__(self, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        return self.run(*args, **kwargs)


def _need_run(value: Any, what: str) -> Run:
    if not isinstance(value, Run):
        raise TypeError(f"the first argument of a {what} must be a Run, got {type(value).__name__}")
    return value


def workflow(*, name: str) -> Callable[[Callable[..., Awaitable[Any]]], WorkflowDef]:
    """`@workflow(name=...)`: a WorkflowDef of the function (see the module's docstring). Raises TypeError
    for a name that is not a string, ValueError for an empty one."""
    if not isinstance(name, str):
        raise TypeError("a workflow's name must be a string")
    if not name:
        raise ValueError("a workflow's name cannot be empty")

    def decorate(func: Callable[..., Awaitable[Any]]) -> WorkflowDef:
        @functools.wraps(func)
        async def runner(run: Any, *args: Any, **kwargs: Any) -> Any:
            run = _need_run(run, "workflow")
            try:
                await run.start()
            except InvalidState:
                info = await run_status(run.store, run.run_id)
                if info.status != "SUCCESS":
                    raise
                return run_outcome(info)  # it succeeded before: its output, as a replay would give it
            if not args and not kwargs:
                args = (run.message.input,)
            try:
                result = await func(run, *args, **kwargs)
            except (*PASS_THROUGH, TransientError):
                raise
            except Exception as exc:
                if run.outcome is None:  # a step's permanent failure has ended the run already
                    with suppress(InvalidState):
                        await run.fail(str(exc))
                raise
            if run.outcome is None:
                await run.success(result)
            return result

        return WorkflowDef(name, runner, func)

    return decorate


def step(func: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """`@step`: a durable step whose id is the function's name (see the module's docstring). The decorated
    function raises TypeError when its first argument is not a Run, and StepNotReadyError when the step's
    retry is not due at the run's current time."""
    step_id = func.__name__

    @functools.wraps(func)
    async def wrapper(run: Any, *args: Any, **kwargs: Any) -> Any:
        run = _need_run(run, "step")
        acquired = await run.acquire_step(step_id, current_time=run.current_time if run.time_set else None)
        if acquired.status == StepAnswer.SKIPPED:
            return acquired.value
        if acquired.status == StepAnswer.WAIT:
            raise StepNotReadyError(f"step {step_id!r} of run {run.run_id} retries at {acquired.retry_at}",
                                    acquired.retry_at)
        try:
            result = await func(run, *args, **kwargs)
        except PASS_THROUGH:
            raise
        except TransientError as exc:
            code = getattr(exc, "code", "TRANSIENT_ERROR")
            await acquired.guard.fail_transient(code, str(exc), exc.retry_after)
            raise
        except Exception as exc:
            await acquired.guard.fail(str(exc))
            raise
        await acquired.guard.success(result)
        return result

    return wrapper


__all__ = ["WorkflowDef", "step", "workflow"]
