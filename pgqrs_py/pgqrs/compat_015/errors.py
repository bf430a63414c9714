"""pgqrs 0.15's exception names and status enums, over ours (docs/migrating-from-pgqrs.md, "Errors").

An alias is our class itself (`except pgqrs.StateTransitionError` catches InvalidState, QR003); a class
0.15 had that we have no counterpart for is a PgqrsError subclass here. The enums are string enums equal to
the engine's strings, with 0.15's member names as aliases:
`WorkflowStatus.Success is WorkflowStatus.SUCCESS == "SUCCESS"`.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

from ..errors import (
    AttemptsExhausted,
    InvalidArgument,
    InvalidState,
    NotSerializable,
    PgqrsError,
    TransientError,
    UnknownRun,
    UnknownWorker,
    UnknownWorkflow,
    seconds,
)

ValidationError = InvalidArgument  # 22023: a bad argument
StateTransitionError = InvalidState  # QR003: the run's status does not allow the call
RetriesExhaustedError = AttemptsExhausted  # QR007: the step has used its policy's attempts
QueueNotFoundError = UnknownWorkflow  # QR001: a workflow's queue has the workflow's name
WorkerNotFoundError = UnknownWorker  # QR008
MessageNotFoundError = UnknownRun  # QR002: a run's message id is its run id
SerializationError = NotSerializable


class ConfigError(InvalidArgument):
    """A Config this engine cannot honour (a schema other than `pgqrs`)."""


class TransientStepError(PgqrsError, TransientError):
    """Raise from a step body for a failure that may pass, as pgqrs 0.15 did: `code` classifies it (default
    TRANSIENT_ERROR), `retry_after` (seconds or a timedelta; None: the policy's backoff) delays the retry.
    Also one of our TransientError, so `ctx.step` bodies may raise it too."""

    def __init__(self, message: str = "transient error", code: str = "TRANSIENT_ERROR",
                 retry_after: float | timedelta | None = None) -> None:
        Exception.__init__(self, message)
        self.message = message
        self.detail: str | None = None
        self.hint: str | None = None
        self.code = code
        self.retry_after = seconds(retry_after) if retry_after is not None else None


class StepNotReadyError(PgqrsError):
    """acquire_step answered WAIT: the step's retry is due at `retry_at`, not yet at the current_time
    given."""

    def __init__(self, message: str, retry_at: datetime | None = None) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class PausedError(PgqrsError):
    """Raise after `run.pause(...)` to leave the workflow body: the decorators pass it through, recording
    nothing more (the run is PAUSED)."""


class WorkerInterrupted(PgqrsError):
    """`pgqrs.dequeue()...poll(store)` ends with this once `consumer.interrupt()` was called (as in 0.15)."""


class WorkflowStatus(enum.StrEnum):
    """A run's (or a step's) status, equal to the engine's text; 0.15's names are aliases."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    WAITING = "WAITING"
    SUCCESS = "SUCCESS"
    ERROR = "ERROR"
    CANCELLED = "CANCELLED"
    Queued = "QUEUED"
    Running = "RUNNING"
    Paused = "PAUSED"
    Waiting = "WAITING"
    Success = "SUCCESS"
    Error = "ERROR"
    Cancelled = "CANCELLED"


class StepResultStatus(enum.StrEnum):
    """What acquire_step answers, equal to its text; 0.15's names are aliases (0.15 raised StepNotReadyError
    where the engine answers WAIT)."""

    EXECUTE = "EXECUTE"
    SKIPPED = "SKIPPED"
    WAIT = "WAIT"
    Execute = "EXECUTE"
    Skipped = "SKIPPED"
    Wait = "WAIT"
