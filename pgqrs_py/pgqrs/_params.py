"""The marshalling of engine call parameters that the package, the CLI and the dashboard share: run ids,
trigger and limit parameters, update_step's status and value."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ._json import dumps
from ._tracing import injected
from .errors import seconds
from .vocabulary import StepStatus


def trigger_params(workflow: str, params: Any, idempotency_key: str | None, delay: float | Any,
                   run_at: datetime | None, priority: int = 0,
                   concurrency_key: str | None = None, version: str | None = None) -> tuple[Any, ...]:
    """The parameters of _sql.TRIGGER (input as JSON, delay in seconds, the caller's trace context): every
    trigger of the package and the CLI marshals through here. Raises NotSerializable."""
    payload = dumps({} if params is None else params, f"the input of workflow {workflow!r}")
    delay_s = seconds(delay) if delay is not None else None
    return (workflow, payload, idempotency_key, delay_s, run_at, priority, concurrency_key, injected(),
            version)



def limits_params(max_concurrency: int | None, max_concurrency_per_key: int | None,
                  rate_limit: dict[str, Any] | None) -> tuple[Any, ...]:
    """The limit parameters of _sql.CREATE_WORKFLOW and SET_WORKFLOW_LIMITS: the rate limit as JSON, its
    period given as seconds, a timedelta or an interval text ("1 minute"). Raises NotSerializable."""
    if rate_limit is not None and isinstance(rate_limit.get("period"), int | float | timedelta):
        rate_limit = {**rate_limit, "period": f"{seconds(rate_limit['period'])} seconds"}
    rate = dumps(rate_limit, "the rate limit") if rate_limit is not None else None
    return (max_concurrency, max_concurrency_per_key, rate)



def update_step_params(run_id: Any, step_id: str, status: str | StepStatus, value: Any) -> tuple[Any, ...]:
    """The parameters of _sql.UPDATE_STEP: the status as text, the value as JSON. Store.update_step and the
    CLI marshal through here. Raises NotSerializable, and TypeError for something that is not a run id."""
    status_text = status.value if isinstance(status, StepStatus) else status
    payload = dumps(value, f"the value of step {step_id!r}")
    return (as_id(run_id), step_id, status_text, payload)



def as_id(value: Any) -> int:
    """An id from anything that stands for a run: an int, a trigger handle, a message, a run, a status. Raises
    TypeError for anything else (a str, a float, None): every call that takes a run goes through here."""
    for attr in ("run_id", "id"):
        inner = getattr(value, attr, None)
        if isinstance(inner, int):
            return int(inner)
    if isinstance(value, int):
        return int(value)
    raise TypeError(f"expected a run id, trigger handle, message or run, got {type(value).__name__}")
