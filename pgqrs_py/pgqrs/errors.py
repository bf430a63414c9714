"""Exceptions, and the one registry that maps engine SQLSTATEs to them (see docs/errors.md)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, ClassVar

import psycopg


class PgqrsError(Exception):
    """Base of every error pgqrs raises. `sqlstate` is the engine's code, when the database raised it."""

    sqlstate: ClassVar[str | None] = None

    def __init__(self, message: str, *, detail: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.hint = hint


class UnknownWorkflow(PgqrsError):
    sqlstate = "QR001"


class UnknownRun(PgqrsError):
    sqlstate = "QR002"


class InvalidState(PgqrsError):
    sqlstate = "QR003"


class LeaseLost(PgqrsError):
    sqlstate = "QR004"


class StepConflict(PgqrsError):
    sqlstate = "QR005"


class IdempotencyConflict(PgqrsError):
    sqlstate = "QR006"


class AttemptsExhausted(PgqrsError):
    sqlstate = "QR007"


class UnknownWorker(PgqrsError):
    sqlstate = "QR008"


class WorkflowFailed(PgqrsError):
    """`result()` of a run that ended in ERROR; `.error` holds the run's stored error."""

    def __init__(self, run_id: int, error: Any) -> None:
        super().__init__(f"run {run_id} failed: {error}")
        self.run_id = run_id
        self.error = error


class RunCancelled(WorkflowFailed):
    """The run was cancelled (`pgqrs.cancel_run`): raised by `result()`, and by a worker's write on the run
    (QR009), which stops its handler. `.error` holds {kind: cancelled, reason} when known."""

    sqlstate = "QR009"

    def __init__(self, message: str, *, detail: str | None = None, hint: str | None = None,
                 run_id: int | None = None, error: Any = None) -> None:
        PgqrsError.__init__(self, message, detail=detail, hint=hint)
        self.run_id = run_id  # type: ignore[assignment]
        self.error = error


class ChildFailed(WorkflowFailed):
    """`ctx.wait_child(h)` or `ctx.gather(...)`: a child run ended ERROR or CANCELLED. `.run_id` is the
    child's run id, `.status` its status, `.error` its stored error. Recorded with the wait's outcome: a
    replay raises it again; the handler may catch it."""

    def __init__(self, run_id: int, status: str, error: Any) -> None:
        reason = error.get("message") if isinstance(error, dict) else None
        PgqrsError.__init__(self, f"child run {run_id} ended {status}: {reason or error}")
        self.run_id = run_id
        self.status = status
        self.error = error


class StepKindConflict(PgqrsError):
    """A durable wait (`sleep_step`, `wait_event`, `recv`) on a step id that the run recorded as another kind
    of step (an ordinary step, another kind of wait, or a wait for another event key or topic), or an ordinary
    step (`ctx.step`, `acquire_step`, `complete_step`, `fail_step`, `pause_step`, `update_step`) on a step id
    a durable wait or a child workflow recorded: QR010."""

    sqlstate = "QR010"


class NotAChild(PgqrsError):
    """`wait_children` (`ctx.wait_child`, `ctx.gather`) with a run that this run did not start with
    `start_child`: QR011."""

    sqlstate = "QR011"


class InvalidArgument(PgqrsError, ValueError):
    sqlstate = "22023"


class WaitTimeout(PgqrsError, TimeoutError):
    """`ctx.wait_for_event(key, timeout=...)` or `ctx.recv(topic, timeout=...)`: the timeout passed before the
    event was emitted (the message came). `key` is the event key (the topic). Recorded as the step's outcome,
    so a replay raises it again; the handler may catch it."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class NotSerializable(PgqrsError, TypeError):
    """A step result, run input or output that JSON cannot represent. Nothing was stored."""


class UnreadableValue(PgqrsError):
    """A stored JSON value (a run's input or output, a step's value) that Python's json cannot decode: nested
    deeper than its recursion limit, or an integer of more than 4,300 digits. jsonb holds both."""


class DuplicateStepId(PgqrsError):
    """`ctx.step` was called twice with the same explicit id in one execution of a workflow."""


class ReplayDrift(PgqrsError):
    """A replay asked for steps in another order than the run recorded them: the workflow's code changed
    while the run was in flight (a step renamed, removed, reordered, or added before recorded ones).
    `expected` is the recorded step the replay should have asked for, `requested` the one it asked for
    (None: the handler returned without asking for `expected`). Raised before anything runs or is recorded
    under the wrong step; the run ends ERROR with kind replay_drift, whatever the handler does with the
    exception; `retry_run` after the code is fixed continues it (docs/reliability.md, "Replay drift")."""

    def __init__(self, run_id: int, expected: str, requested: str | None) -> None:
        if requested is None:
            message = (f"run {run_id} recorded step {expected!r}, but the handler returned without asking for"
                       " it: a step was removed while the run was in flight")
        else:
            message = (f"run {run_id} recorded step {expected!r} before {requested!r} was asked for: the"
                       " workflow's steps changed while the run was in flight (renamed, removed, reordered,"
                       " or added before recorded ones)")
        super().__init__(message)
        self.run_id = run_id
        self.expected = expected
        self.requested = requested

    def error(self) -> dict[str, Any]:
        """The run's stored error: kind replay_drift, expected, requested and message."""
        return {"kind": "replay_drift", "type": "ReplayDrift", "message": self.message,
                "expected": self.expected, "requested": self.requested}


class ResultTimeout(PgqrsError, TimeoutError):
    """`result(timeout=...)` gave up before the run finished."""


class NotPrimary(PgqrsError):
    """`pgqrs.connect(dsn)` reached a standby (read-only) with the DSN meant for writes."""


REGISTRY: dict[str, type[PgqrsError]] = {
    cls.sqlstate: cls
    for cls in (
        UnknownWorkflow,
        UnknownRun,
        InvalidState,
        LeaseLost,
        StepConflict,
        IdempotencyConflict,
        AttemptsExhausted,
        UnknownWorker,
        RunCancelled,
        StepKindConflict,
        NotAChild,
        InvalidArgument,
    )
    if cls.sqlstate is not None
}


@contextmanager
def mapped_errors() -> Iterator[None]:
    """Re-raise engine SQLSTATEs as their PgqrsError class; every other psycopg error passes unchanged."""
    try:
        yield
    except psycopg.Error as exc:
        cls = REGISTRY.get(exc.sqlstate or "")
        if cls is None:
            raise
        diag = exc.diag
        message = diag.message_primary or str(exc)
        raise cls(message, detail=diag.message_detail, hint=diag.message_hint) from exc


class TransientError(Exception):
    """Raise from a step body for a failure that may pass (timeouts, rate limits).

    The step is retried after `retry_after` (seconds or a timedelta), or after the retry policy's backoff
    when it is None, until the policy's max_attempts is used up.
    """

    def __init__(
        self, message: str = "transient error", retry_after: float | timedelta | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after = seconds(retry_after) if retry_after is not None else None


def seconds(value: float | timedelta) -> float:
    """A duration given as seconds or a timedelta, in seconds."""
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
