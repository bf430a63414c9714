"""How a step body ends other than by returning a value (Step.pause, a body that could not start), how a
handler unwinds when its run leaves the worker (Suspended), and how an exception is stored (error_json).

Flavour-neutral: `pgqrs.sync` raises and catches the same classes.
"""

from __future__ import annotations

import traceback
from datetime import timedelta
from typing import Any

from ._json import storable_text
from .errors import LeaseLost, seconds


class StepPause(Exception):
    """Raised (via `raise Step.pause(...)`) inside a step body to pause the run at that step."""

    def __init__(self, timeout: float | None) -> None:
        super().__init__(f"pause for {timeout} s" if timeout is not None else "pause until resumed")
        self.timeout = timeout


class Step:
    """`raise Step.pause(seconds | timedelta | None)` pauses the run until `resume_run` or the timeout."""

    @staticmethod
    def pause(timeout: float | timedelta | None = None) -> StepPause:
        """`raise Step.pause(timeout)` in a step body: ctx.step pauses the run at that step
        (``pgqrs.pause_step``) until ``pgqrs.resume_run`` or `timeout` (seconds or a timedelta; None: until
        resumed)."""
        return StepPause(seconds(timeout) if timeout is not None else None)


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


class Suspended(BaseException):
    """Unwinds a handler whose run left this worker (retry scheduled, paused, waiting, or failed for good).

    A BaseException so that a user's `except Exception` around `ctx.step` cannot swallow it.
    """

    def __init__(self, run_status: str) -> None:
        super().__init__(run_status)
        self.run_status = run_status
