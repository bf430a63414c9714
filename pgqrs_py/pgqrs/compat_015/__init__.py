"""The pgqrs 0.15 dialect: the names a program written for pgqrs 0.15's Python workflow API uses that ours
does not have (docs/migrating-from-pgqrs.md lists them, and every name with two meanings). `pgqrs/__init__.py`
exports them; `pgqrs.decorators` holds 0.15's decorators. Async only, as 0.15 was: `pgqrs.sync` has none of
them. What a Store, a Consumer and a Run need for the dialect is in the core (`_pgqrs015.py`,
`_run_manual.py`, the builders), so both flavours have those."""

from .admin import Admin, Config, admin, connect_with
from .errors import (
    ConfigError,
    MessageNotFoundError,
    PausedError,
    QueueNotFoundError,
    RetriesExhaustedError,
    SerializationError,
    StateTransitionError,
    StepNotReadyError,
    StepResultStatus,
    TransientStepError,
    ValidationError,
    WorkerInterrupted,
    WorkerNotFoundError,
    WorkflowStatus,
)
from .policy import BackoffStrategy, StepRetryPolicy
from .worker import DequeueBuilder, dequeue

__all__ = [
    "Admin",
    "BackoffStrategy",
    "Config",
    "ConfigError",
    "DequeueBuilder",
    "MessageNotFoundError",
    "PausedError",
    "QueueNotFoundError",
    "RetriesExhaustedError",
    "SerializationError",
    "StateTransitionError",
    "StepNotReadyError",
    "StepResultStatus",
    "StepRetryPolicy",
    "TransientStepError",
    "ValidationError",
    "WorkerInterrupted",
    "WorkerNotFoundError",
    "WorkflowStatus",
    "admin",
    "connect_with",
    "dequeue",
]
