"""JSON in and out of the engine: dataclasses become objects; anything else JSON can't hold is an error."""

from __future__ import annotations

import dataclasses
import json
import typing
from datetime import date, datetime
from typing import Any

from .errors import NotSerializable


def _default(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def dumps(value: Any, what: str) -> str:
    """Serialise `value`; `what` names it in the error ("the result of step 'fetch'")."""
    try:
        return json.dumps(value, default=_default, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:  # RecursionError: nested deeper than ~1000 levels
        raise NotSerializable(f"{what} is not JSON-serialisable: {exc}") from None


def from_json(value: Any, annotation: Any) -> Any:
    """Build `annotation` from decoded JSON when it is a dataclass type (the seeds' ZipParams); else as is."""
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation) and isinstance(value, dict):
        hints = typing.get_type_hints(annotation)
        fields = {f.name: from_json(value[f.name], hints.get(f.name)) for f in dataclasses.fields(annotation)
                  if f.name in value}
        return annotation(**fields)
    return value
