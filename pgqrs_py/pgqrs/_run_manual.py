"""A run driven by hand: the step guard of `acquire_step`, and the run handle's calls of pgqrs 0.15's dialect
(`run.start()`, `run.success(v)`, `run.pause(message, seconds)`, `run.id()`, `run.with_time(t)`), which `Run`
inherits (docs/migrating-from-pgqrs.md). The engine calls are the same as a worker's: start() leases the run
with ``pgqrs.lease_run``, and every later write carries that lease."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from . import _sql
from .errors import InvalidArgument, InvalidState
from .vocabulary import StepAnswer

if TYPE_CHECKING:
    from .run import Run

# the lease start() takes: dequeue's default
DEFAULT_VISIBILITY = 30.0
# The lease token of a run handle that holds no lease yet (built from a trigger result): no lease has it, so
# the engine fences every write made with it (QR004) until start() leases the run.
NO_LEASE = UUID(int=0)


class RunId(int):
    """A run id that is also callable: `run.id == 42` (ours) and `run.id() == 42` (pgqrs 0.15) both hold."""

    def __call__(self) -> int:
        return int(self)


def as_time(value: datetime | str | None) -> datetime | None:
    """A step's `current_time` given as a datetime or an ISO 8601 text ("2024-01-15T10:30:00Z", as pgqrs 0.15
    takes it); a time without a zone is UTC. Raises InvalidArgument (a ValueError) for a text that is not
    ISO 8601."""
    if value is None or isinstance(value, datetime):
        return value
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidArgument(f"current_time must be a datetime or an ISO 8601 text, got {value!r}") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


class StepGuard:
    """Records the outcome of a step that acquire_step told you to EXECUTE."""

    def __init__(self, run: Run, step_id: str) -> None:
        self._run = run
        self.step_id = step_id

    async def success(self, value: Any = None) -> bool:
        """Record the success with `value`: Run.complete_step (``pgqrs.complete_step``)."""
        return await self._run.complete_step(self.step_id, value)

    async def fail(self, error: Any, *, transient: bool = False, retry_after: float | None = None) -> str:
        """Record a failed attempt: Run.fail_step (``pgqrs.fail_step``); returns the run's status. Permanent
        unless `transient` (as in pgqrs 0.15: the run ends ERROR); raises as fail_step."""
        return await self._run.fail_step(self.step_id, error, transient=transient, retry_after=retry_after)

    async def fail_transient(self, code: str, message: str, retry_after: float | None = None) -> str:
        """Record a transient failure with the error {is_transient, code, message} (pgqrs 0.15's shape):
        Run.fail_step (``pgqrs.fail_step``), retried after `retry_after` seconds or the policy's backoff
        while attempts are left. Returns the run's status; raises as fail_step."""
        error = {"is_transient": True, "code": code, "message": message}
        return await self._run.fail_step(self.step_id, error, transient=True, retry_after=retry_after)

    async def pause(self, timeout: float | None = None) -> tuple[str, Any]:
        """Pause the run at this step: Run.pause_step (``pgqrs.pause_step``)."""
        return await self._run.pause_step(self.step_id, timeout)


class ManualRun:
    """pgqrs 0.15's calls of a run handle. A run built from a trigger result (`pgqrs.run().message(handle)`)
    holds no lease until start(); one built from a dequeued message holds its delivery's lease."""

    message: Any  # a Message (run.py)
    current_time: datetime | None
    outcome: str | None
    step_in_progress: str | None = None  # the step acquire_step last answered EXECUTE, until it is recorded
    time_set = False  # with_time() gave this handle its current_time (the decorated steps then pass it on)

    if TYPE_CHECKING:
        @property
        def run_id(self) -> int: ...

        async def _call(self, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]: ...

        async def complete(self, output: Any = None) -> str: ...

        async def pause_step(self, step_id: str, timeout: float | None = None) -> tuple[str, Any]: ...

    async def start(self, visibility: float = DEFAULT_VISIBILITY) -> str:
        """Lease the run to this caller for `visibility` seconds: calls ``pgqrs.lease_run``, which gives back
        the lease this handle holds unchanged (a dequeued run), or takes a new one (a handle built from a
        trigger result, or one whose lease a retry or a pause released). Returns "RUNNING". Raises
        InvalidState (QR003: another lease holds it, it is PAUSED, WAITING or finished, or its last lease had
        expired too often and the engine ended it), RunCancelled (QR009), UnknownRun (QR002),
        InvalidArgument (22023: a visibility not within 0-1 day), and psycopg's FeatureNotSupported (0A000)
        for a workflow with flow limits."""
        rows = await self._call(_sql.LEASE_RUN, (self.run_id, None, visibility, self.message.lease_token))
        if not rows:
            raise InvalidState(f"run {self.run_id} ended ERROR: its deliveries kept losing their lease")
        leased = type(self.message)(*rows[0])  # a Message (run.py imports this module)
        if leased.lease_token != self.message.lease_token:  # a new lease: nothing of the last one holds
            self.outcome = None
            self.step_in_progress = None
        self.message = leased
        return "RUNNING"

    async def success(self, output: Any = None) -> str:
        """pgqrs 0.15's name for complete(): finish the run SUCCESS with `output` (``pgqrs.complete_run``);
        returns and raises as complete()."""
        return await self.complete(output)

    async def pause(self, message: str, resume_after_seconds: float | None = None) -> str:
        """Pause the run at the step in progress (the one acquire_step last answered EXECUTE) until
        ``pgqrs.resume_run`` or `resume_after_seconds`: calls ``pgqrs.pause_step``, which releases the lease.
        `message` is not stored (the engine records the paused step). Returns "PAUSED", or "SUCCESS" when the
        step was recorded from outside first. Raises InvalidState when no step is in progress, and the errors
        of pause_step."""
        step_id = self.step_in_progress
        if step_id is None:
            raise InvalidState(f"run {self.run_id} has no step in progress to pause at ({message}): "
                               "acquire_step(...) the step that waits first")
        status, _value = await self.pause_step(step_id, resume_after_seconds)
        return status

    def with_time(self, time: datetime | str) -> ManualRun:
        """A copy of this run handle whose `current_time` is `time` (a datetime or ISO 8601 text), for
        acquire_step(current_time=run.current_time) in tests. Raises InvalidArgument for a bad text."""
        moved = copy.copy(self)
        moved.current_time = as_time(time)
        moved.time_set = True
        return moved

    def note_acquired(self, step_id: str, status: str) -> None:
        """Remember the step acquire_step answered EXECUTE for (run.pause() pauses there)."""
        if status == StepAnswer.EXECUTE:
            self.step_in_progress = step_id
        elif self.step_in_progress == step_id:
            self.step_in_progress = None
