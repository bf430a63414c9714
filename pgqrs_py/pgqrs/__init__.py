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
