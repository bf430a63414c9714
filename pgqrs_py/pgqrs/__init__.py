"""pgqrs: durable workflows inside PostgreSQL.

The engine is SQL (schema `pgqrs`); this package wraps its functions and adds `ctx.step`, the worker loop and
the `pgqrs` command. See README.md for the tour.
"""

from ._children import ChildHandle
from ._dsn import resolve_dsn
from ._json import UnreadableJson
from .builders import RunBuilder, WorkflowBuilder, run, workflow
from .consumer import Consumer, ConsumerBuilder, consumer
from .errors import (
    AttemptsExhausted,
    ChildFailed,
    DuplicateStepId,
    IdempotencyConflict,
    InvalidArgument,
    InvalidState,
    LeaseLost,
    NotAChild,
    NotPrimary,
    NotSerializable,
    PgqrsError,
    ReplayDrift,
    ResultTimeout,
    RunCancelled,
    StepConflict,
    StepKindConflict,
    TransientError,
    UnknownRun,
    UnknownWorker,
    UnknownWorkflow,
    UnreadableValue,
    WaitTimeout,
    WorkflowFailed,
)
from .handler import WorkflowFunction, step
from .install import install
from .outcomes import Step, StepPause
from .records import RunInfo, Schedule, ScheduledRun, StepRecord, TriggerHandle, WorkflowDef
from .run import AcquiredStep, Message, Run
from .store import Store, connect
from .vocabulary import RunStatus, StepAnswer, StepStatus
from .workflow import WorkflowContext

# The pgqrs 0.15 dialect (docs/migrating-from-pgqrs.md): its names that ours does not have, as module
# attributes outside __all__. Async only, as pgqrs 0.15 was: the generated pgqrs.sync skips this block (its
# __name__ is pgqrs.sync). `pgqrs.decorators` is 0.15's module of decorators.
if __name__ == "pgqrs":
    from . import decorators as decorators
    from .compat_015 import Admin as Admin
    from .compat_015 import BackoffStrategy as BackoffStrategy
    from .compat_015 import Config as Config
    from .compat_015 import ConfigError as ConfigError
    from .compat_015 import DequeueBuilder as DequeueBuilder
    from .compat_015 import MessageNotFoundError as MessageNotFoundError
    from .compat_015 import PausedError as PausedError
    from .compat_015 import QueueNotFoundError as QueueNotFoundError
    from .compat_015 import RetriesExhaustedError as RetriesExhaustedError
    from .compat_015 import SerializationError as SerializationError
    from .compat_015 import StateTransitionError as StateTransitionError
    from .compat_015 import StepNotReadyError as StepNotReadyError
    from .compat_015 import StepResultStatus as StepResultStatus
    from .compat_015 import StepRetryPolicy as StepRetryPolicy
    from .compat_015 import TransientStepError as TransientStepError
    from .compat_015 import ValidationError as ValidationError
    from .compat_015 import WorkerInterrupted as WorkerInterrupted
    from .compat_015 import WorkerNotFoundError as WorkerNotFoundError
    from .compat_015 import WorkflowStatus as WorkflowStatus
    from .compat_015 import admin as admin
    from .compat_015 import connect_with as connect_with
    from .compat_015 import dequeue as dequeue

__version__ = "0.1.0"

__all__ = [
    "AcquiredStep",
    "AttemptsExhausted",
    "Consumer",
    "ConsumerBuilder",
    "DuplicateStepId",
    "IdempotencyConflict",
    "InvalidArgument",
    "InvalidState",
    "LeaseLost",
    "Message",
    "NotSerializable",
    "PgqrsError",
    "ReplayDrift",
    "ResultTimeout",
    "Run",
    "RunBuilder",
    "RunCancelled",
    "RunInfo",
    "RunStatus",
    "Schedule",
    "ScheduledRun",
    "Step",
    "StepConflict",
    "StepKindConflict",
    "NotAChild",
    "NotPrimary",
    "ChildFailed",
    "ChildHandle",
    "StepPause",
    "StepAnswer",
    "StepRecord",
    "StepStatus",
    "Store",
    "TransientError",
    "TriggerHandle",
    "UnknownRun",
    "UnknownWorker",
    "UnknownWorkflow",
    "UnreadableJson",
    "UnreadableValue",
    "WaitTimeout",
    "WorkflowBuilder",
    "WorkflowContext",
    "WorkflowDef",
    "WorkflowFailed",
    "WorkflowFunction",
    "connect",
    "consumer",
    "install",
    "resolve_dsn",
    "run",
    "step",
    "workflow",
]
