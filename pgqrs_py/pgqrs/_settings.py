"""The bounds and checks of the worker settings (pgqrs.consumer's builder and `pgqrs worker`)."""

from __future__ import annotations

import numbers
import re
from datetime import timedelta

from .errors import InvalidArgument

# Bounds of the worker settings. The engine leases for more than 0 s and at most 1 day, and dequeues at most
# 1000 runs at once; below the lower bounds a worker would flood the database (a heartbeat every third of the
# visibility, a dequeue every poll interval when idle).
MAX_CONCURRENCY = 1000
VISIBILITY_RANGE = (0.1, 86400.0)
POLL_INTERVAL_RANGE = (0.01, 86400.0)
SHUTDOWN_TIMEOUT_RANGE = (0.0, 86400.0)


RANGES = {"visibility": VISIBILITY_RANGE, "poll_interval": POLL_INTERVAL_RANGE,
          "shutdown_timeout": SHUTDOWN_TIMEOUT_RANGE, "schedule_interval": VISIBILITY_RANGE}


def checked_setting(name: str, value: float | timedelta) -> float:
    """The worker setting `name` (a key of RANGES) in seconds, within its range: checked_seconds."""
    return checked_seconds(name, value, *RANGES[name])


def checked_seconds(name: str, value: float | timedelta, low: float, high: float) -> float:
    """A worker setting in seconds (a number or a timedelta) from `low` to `high`, else InvalidArgument (a
    ValueError); bools, NaN and infinities are refused."""
    number = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(number, bool) or not isinstance(number, numbers.Real) or not low <= number <= high:
        raise InvalidArgument(f"{name} must be from {low:g} to {high:g} seconds, got {value!r}")
    return float(number)


# A version of workflow code is a name, as the engine checks it (pgqrs._check_name): checked before the worker
# starts, so that a typo fails at once instead of every dequeue.
VERSION_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}")


def checked_version(version: str | None) -> str | None:
    """`version` when it is None or a valid version name (1-128 ASCII letters, digits and _ . : -, not
    starting with . : -), else InvalidArgument."""
    if version is not None and (not isinstance(version, str) or not VERSION_PATTERN.fullmatch(version)):
        raise InvalidArgument(f"version must be 1-128 letters, digits and _ . : -, got {version!r}")
    return version
