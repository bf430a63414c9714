"""The `pgqrs` command's tables for people: durations, errors and values in a few words."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from tabulate import tabulate  # type: ignore[import-untyped]

from .._json import UnreadableJson
from .common import one_line


def human_duration(delta: timedelta | None) -> str:
    """A duration in its two largest units ("1m05s", "3h12m", "2d04h"); "" for None."""
    if delta is None:
        return ""
    total = delta.total_seconds()
    sign = "-" if total < 0 else ""
    total = abs(total)
    if total < 60:
        return f"{sign}{total:.1f}s"
    minutes, secs = divmod(int(total), 60)
    if minutes < 60:
        return f"{sign}{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{sign}{hours}h{minutes:02d}m"
    return f"{sign}{hours // 24}d{hours % 24:02d}h"


def human_error(error: Any) -> str:
    """A stored error in a few words: the Python package stores {type, message, traceback}."""
    if error is None:
        return ""
    if isinstance(error, UnreadableJson):
        return str(error)
    if isinstance(error, dict) and ("message" in error or "type" in error):
        kind = error.get("type")
        message = error.get("message", "")
        return f"{kind}: {message}" if kind else str(message)
    return json.dumps(error)


def human(value: Any, width: int = 60) -> str:
    """A value as one line of at most `width` characters: local time, a duration, JSON, or its text."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, timedelta):
        return human_duration(value)
    if isinstance(value, dict | list):
        value = json.dumps(value)
    text = one_line(str(value))
    return text if len(text) <= width else text[: width - 1] + "…"


def table(rows: list[dict[str, Any]], columns: Sequence[tuple[str, str]], empty: str) -> str:
    """rows as a plain-text table; columns = (key, header)."""
    if not rows:
        return empty
    body = [[human(r.get(key)) for key, _header in columns] for r in rows]
    return str(tabulate(body, headers=[header for _key, header in columns], tablefmt="simple",
                        disable_numparse=True))
