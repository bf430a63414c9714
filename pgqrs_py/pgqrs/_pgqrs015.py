"""What pgqrs 0.15's dialect asks of a Store and a Consumer (docs/migrating-from-pgqrs.md):
`store.consumer(q)`, the record listings `store.get_workflows()`, `get_workflow_runs()`,
`get_workflow_steps()`, `get_messages()` (read from the record views of sql/ops/records.sql), and a
consumer's `worker_id` and `interrupt()`. Mixed into Store and Consumer, so both flavours have them; the rest
of the dialect is `pgqrs.compat_015`."""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._sql import records as records_sql
from .errors import UnknownWorkflow

if TYPE_CHECKING:
    from ._acompat import Event
    from ._wakeups import Wakeups
    from .consumer import Consumer


@dataclass(frozen=True)
class WorkflowRecord:
    """A workflow definition (view pgqrs.workflow_records): `id` is the workflow's id, `queue_id` its
    queue's."""

    id: int
    name: str
    queue_id: int
    created_at: datetime


@dataclass(frozen=True)
class RunRecord:
    """A run (view pgqrs.run_records). `status` is the status text ("SUCCESS"), equal to WorkflowStatus's."""

    id: int
    workflow_id: int
    status: str
    input: Any
    output: Any
    error: Any
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class StepRow:
    """A step of a run (view pgqrs.step_records), named as pgqrs 0.15 names it: `step_name` is the step id,
    `output` its value; `id` increases with the first time a step was recorded. `input` is always None (steps
    record no input here)."""

    id: int
    run_id: int
    step_name: str
    status: str
    output: Any
    error: Any
    retry_at: datetime | None
    created_at: datetime | None
    updated_at: datetime
    input: Any = None


@dataclass(frozen=True)
class ArchivedMessage:
    """A retired message (view pgqrs.archived_messages) of a finished run; `payload` is the run's input."""

    id: int
    queue_id: int
    payload: Any
    enqueued_at: datetime
    archived_at: datetime
    read_ct: int
    consumer_worker_id: int | None


class _Reader:
    def __init__(self, store: Store015) -> None:
        self._store = store


class Workflows(_Reader):
    """`await store.get_workflows()`: the workflow definitions."""

    async def get_by_name(self, name: str) -> WorkflowRecord:
        """The definition of workflow `name`, from the view ``pgqrs.workflow_records``. Raises
        UnknownWorkflow."""
        rows = await self._store.call(records_sql.WORKFLOW_BY_NAME, (name,))
        if not rows:
            raise UnknownWorkflow(f"unknown workflow: {name}")
        return WorkflowRecord(*rows[0])


class WorkflowRuns(_Reader):
    """`await store.get_workflow_runs()`: the runs."""

    async def list(self) -> list[RunRecord]:
        """Every run, oldest first, from the view ``pgqrs.run_records``."""
        return [RunRecord(*row) for row in await self._store.call(records_sql.RUNS, ())]


class WorkflowSteps(_Reader):
    """`await store.get_workflow_steps()`: the step journal of every run."""

    async def list(self) -> list[StepRow]:
        """Every recorded step, in recorded order, from the view ``pgqrs.step_records``."""
        return [StepRow(*row) for row in await self._store.call(records_sql.STEPS, ())]


class Messages(_Reader):
    """`await store.get_messages()`: the queues' messages."""

    async def count(self) -> int:
        """How many messages the queues hold (live runs), from the view ``pgqrs.queue_stats``."""
        return int((await self._store.call(records_sql.MESSAGE_COUNT, ()))[0][0])

    async def list_archived_by_queue(self, queue_id: int | str) -> list[ArchivedMessage]:
        """The retired messages of a queue given by id or by name (a trigger result's `queue_id` is the name),
        from the views ``pgqrs.archived_messages`` and ``pgqrs.workflow_records``. Raises UnknownWorkflow
        for an unknown queue name."""
        if isinstance(queue_id, str):
            rows = await self._store.call(records_sql.QUEUE_ID, (queue_id,))
            if not rows:
                raise UnknownWorkflow(f"unknown queue: {queue_id}")
            queue_id = int(rows[0][0])
        return [ArchivedMessage(*row) for row in await self._store.call(records_sql.ARCHIVED_BY_QUEUE,
                                                                          (queue_id,))]


class Store015:
    """pgqrs 0.15's calls of a Store (mixed into Store, which provides `call`)."""

    if TYPE_CHECKING:
        async def call(self, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]: ...

    async def consumer(self, queue: str) -> Consumer:
        """Register a worker of `queue` named after this host and a random id, as pgqrs 0.15 does: calls
        ``pgqrs.register_worker`` (ConsumerBuilder.create, with its errors)."""
        from .consumer import ConsumerBuilder  # consumer.py builds on the store

        name = f"{socket.gethostname()}-{uuid.uuid4()}"
        return await ConsumerBuilder(name, None, queue).create(self)  # type: ignore[arg-type]

    async def get_workflows(self) -> Workflows:
        """The workflow definitions' reader (`get_by_name`)."""
        return Workflows(self)

    async def get_workflow_runs(self) -> WorkflowRuns:
        """The runs' reader (`list`)."""
        return WorkflowRuns(self)

    async def get_workflow_steps(self) -> WorkflowSteps:
        """The steps' reader (`list`)."""
        return WorkflowSteps(self)

    async def get_messages(self) -> Messages:
        """The messages' reader (`count`, `list_archived_by_queue`)."""
        return Messages(self)


class Consumer015:
    """pgqrs 0.15's calls of a consumer (mixed into Consumer)."""

    if TYPE_CHECKING:
        id: int
        _stop: Event
        _wakeups: Wakeups

        def stop(self) -> None: ...

    @property
    def worker_id(self) -> int:
        """The worker's id (as `id`)."""
        return self.id

    @property
    def interrupted(self) -> bool:
        """True once interrupt() or stop() was called."""
        return self._stop.is_set()

    async def interrupt(self) -> None:
        """Stop this worker's loops (pgqrs.dequeue()...poll(), poll_forever) at their next turn: stop()."""
        self.stop()

    async def idle(self, seconds: float) -> None:
        """Wait up to `seconds`, less when the worker is interrupted."""
        await self._wakeups.sleep(seconds)
