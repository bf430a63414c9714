"""The rows the engine answers with, as Python values. Flavour-neutral: `pgqrs.sync` uses the same classes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ._json import UnreadableJson, from_json
from .errors import RunCancelled, WorkflowFailed


@dataclass(frozen=True)
class WorkflowDef:
    """A row of pgqrs.create_workflow: the definition, its retry policy and its limits (None: no limit)."""

    workflow_id: int
    name: str
    retry_policy: dict[str, Any]
    max_concurrency: int | None = None
    max_concurrency_per_key: int | None = None
    rate_limit: dict[str, Any] | None = None


class TriggerHandle(int):
    """What a trigger returns: the run id (= message id) as an int, with `.id`, `.run_id` and `.created`;
    pgqrs 0.15 reads it as the run's queue message: `.payload` (the input as given) and `.queue_id`."""

    created: bool
    payload: Any
    queue: str | None

    def __new__(cls, run_id: int, created: bool = True, payload: Any = None,
                queue: str | None = None) -> TriggerHandle:
        handle = super().__new__(cls, run_id)
        handle.created = created
        handle.payload = payload
        handle.queue = queue
        return handle

    @property
    def queue_id(self) -> str | None:
        """The run's queue, by name (the workflow's name): the trigger does not read the queue's number, and
        every call that takes a queue id takes its name too (docs/migrating-from-pgqrs.md)."""
        return self.queue

    @property
    def id(self) -> int:
        """The run id (a run and its queue message share their id)."""
        return int(self)

    @property
    def run_id(self) -> int:
        """The run id."""
        return int(self)

    @property
    def message_id(self) -> int:
        """The id of the run's queue message: the run id."""
        return int(self)

    def __repr__(self) -> str:
        return f"TriggerHandle(id={int(self)}, created={self.created})"


@dataclass(frozen=True)
class StepRecord:
    """A row of pgqrs.update_step / pgqrs.run_steps."""

    run_id: int
    step_id: str
    status: str
    value: Any
    error: Any
    attempt: int


@dataclass(frozen=True)
class RunInfo:
    """A row of pgqrs.run_status. `.output()` is the run's JSON output (a method, as in the seeds)."""

    run_id: int
    workflow: str
    status: str
    input: Any
    output_value: Any
    error: Any
    attempt: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    current_step: str | None
    visible_at: datetime | None
    current_step_status: str | None = None
    current_step_since: datetime | None = None
    parent_run_id: int | None = None  # the run that started this one with start_child
    forked_from: int | None = None  # the run fork_run made this one from
    version: str | None = None  # of the workflow code it runs on (runs.version)

    def output(self, as_type: Any = None) -> Any:
        """The run's output as stored (JSON), or built into `as_type` when that is a dataclass. Raises
        UnreadableValue when the stored output is JSON Python cannot decode."""
        if isinstance(self.output_value, UnreadableJson):
            raise self.output_value.error(f"the output of run {self.run_id}")
        return from_json(self.output_value, as_type) if as_type is not None else self.output_value

    @property
    def id(self) -> int:
        """The run id."""
        return self.run_id


def run_outcome(info: RunInfo) -> Any:
    """What `result()` gives for a finished run: its output; raises RunCancelled (a CANCELLED run),
    WorkflowFailed (an ERROR run) or UnreadableValue (an output Python's json cannot decode)."""
    if info.status == "SUCCESS":
        return info.output()
    if info.status == "CANCELLED":
        raise RunCancelled(f"run {info.run_id} was cancelled", run_id=info.run_id, error=info.error)
    raise WorkflowFailed(info.run_id, info.error)


@dataclass(frozen=True)
class Schedule:
    """A row of the view pgqrs.schedules (docs/schedules.md): next_fire_at is None while disabled."""

    name: str
    workflow: str
    cron: str
    timezone: str
    catch_up: str
    enabled: bool
    input: Any  # any JSON value
    next_fire_at: datetime | None
    last_fire_at: datetime | None
    last_run_id: int | None
    last_run_status: str | None


@dataclass(frozen=True)
class ScheduledRun:
    """A run that pgqrs.fire_schedules started: the schedule, the tick it stands for and the run id."""

    schedule: str
    tick: datetime
    run_id: int
