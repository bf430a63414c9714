"""The engine's words, in one place: run statuses, step statuses and the answers of `pgqrs.acquire_step`.

The SQL is their source (the CHECK constraints `runs_status_check` and `steps_status_check`, the list of
`update_step`, the answers of `acquire_step`); tests/test_vocabulary.py compares this module with the
catalog. Python code and the CLI take them from here. The members are strings (`StrEnum`):
`StepStatus.SUCCESS == "SUCCESS"`.
"""

from __future__ import annotations

import enum


class RunStatus(enum.StrEnum):
    """A run's status (`runs.status`). `WAITING`: in a durable wait (pgqrs.waiting_runs)."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    WAITING = "WAITING"
    SUCCESS = "SUCCESS"
    ERROR = "ERROR"
    CANCELLED = "CANCELLED"


class StepStatus(enum.StrEnum):
    """A step's status (`steps.status`); the plain strings ("SUCCESS") work wherever these do. `WAITING`: a
    durable wait's step (sleep, event) that has not ended; only the engine records it (not `update_step`)."""

    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    ERROR = "ERROR"
    PAUSED = "PAUSED"
    WAITING = "WAITING"


class StepAnswer(enum.StrEnum):
    """What `pgqrs.acquire_step` answers: run the body, replay the stored value, or wait for the retry."""

    EXECUTE = "EXECUTE"
    SKIPPED = "SKIPPED"
    WAIT = "WAIT"


RUN_STATUSES = tuple(s.value for s in RunStatus)
STEP_STATUSES = tuple(s.value for s in StepStatus)
# What pgqrs.update_step records from outside: WAITING is recorded by the durable waits only.
UPDATABLE_STEP_STATUSES = tuple(s for s in STEP_STATUSES if s != StepStatus.WAITING.value)
FINISHED_RUN_STATUSES = (RunStatus.SUCCESS.value, RunStatus.ERROR.value, RunStatus.CANCELLED.value)
