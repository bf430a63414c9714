"""JSON in and out of the engine: dataclasses become objects; anything else JSON can't hold is an error.

Both directions guard against values one side accepts and the other refuses:
- out: PostgreSQL's jsonb refuses U+0000 and lone surrogates, which Python's json writes happily; `dumps`
  raises NotSerializable for them before anything is sent (the engine call would fail on every delivery).
- in: jsonb holds what Python's json cannot read (nesting deeper than the recursion limit, an integer of more
  than 4,300 digits). The package's connections decode json/jsonb with `loads_or_marker`, which returns an
  `UnreadableJson` marker instead of raising inside psycopg, where the error would fail the whole fetch (a
  worker's dequeue, `pgqrs run N`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import typing
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
from psycopg.adapt import AdaptersMap
from psycopg.types.json import set_json_loads

from .errors import NotSerializable, UnreadableValue


def json_default(obj: Any, *, display: bool = False) -> Any:
    """The package's one `default` hook of json.dumps: what to write for a value JSON has no type for.

    Always: a dataclass as an object, a date or datetime in ISO 8601. With `display` (the JSON the `pgqrs`
    command prints from rows it read, never stored) also what the database hands back: a timedelta in
    seconds, a UUID as text, a numeric as a number, an unreadable stored value as its placeholder text.
    Raises TypeError for anything else (`dumps` turns it into NotSerializable).
    """
    if display:
        if isinstance(obj, UnreadableJson):  # before the dataclasses: what was stored cannot be shown
            return str(obj)
        if isinstance(obj, timedelta):
            return obj.total_seconds()
        if isinstance(obj, UUID):
            return str(obj)
        if isinstance(obj, Decimal):
            return int(obj) if obj == obj.to_integral_value() else float(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def dumps(value: Any, what: str) -> str:
    """Serialise `value`; `what` names it in the error ("the result of step 'fetch'")."""
    try:
        text = json.dumps(value, default=json_default, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:  # RecursionError: nested deeper than ~1000 levels
        raise NotSerializable(f"{what} is not JSON-serialisable: {exc}") from None
    refused = refused_by_postgres(text)
    if refused is not None:
        raise NotSerializable(f"{what} holds {refused}, which PostgreSQL cannot store in jsonb")
    return text


def display_json(value: Any) -> str:
    """JSON text of rows read from the database, indented for people and scripts (`pgqrs ... --json`)."""
    return json.dumps(value, default=functools.partial(json_default, display=True), indent=2)


# json.dumps (ensure_ascii) writes every non-ASCII character as a lowercase \uXXXX escape: U+0000 as \u0000,
# a lone surrogate as \ud800-\udfff. A candidate is a real escape only when the backslashes before it pair up
# (in `\\u0000` the backslash itself is escaped: the text holds a backslash, then "u0000").
_CANDIDATE = re.compile(r"\\u(0000|d[89a-f][0-9a-f]{2})")


def refused_by_postgres(text: str) -> str | None:
    """What in JSON text written by `json.dumps` jsonb refuses (U+0000, a lone surrogate), or None."""
    if "\\u0000" not in text and "\\ud" not in text:  # the hot path: one or two substring scans
        return None
    escapes = {}  # position -> code point, of the real escapes among the candidates
    for match in _CANDIDATE.finditer(text):
        start = match.start()
        before = start
        while before > 0 and text[before - 1] == "\\":
            before -= 1
        if (start - before) % 2 == 0:
            escapes[start] = int(match.group(1), 16)
    for start, code in escapes.items():
        if code == 0:
            return "U+0000 (a NUL character)"
        if 0xD800 <= code <= 0xDBFF:  # a high surrogate needs a low one right after it
            if 0xDC00 <= escapes.get(start + 6, 0) <= 0xDFFF:
                continue
        elif 0xD800 <= escapes.get(start - 6, 0) <= 0xDBFF:  # a low surrogate needs a high one right before
            continue
        return f"a lone surrogate, U+{code:04X} (not Unicode text: bytes decoded with surrogateescape?)"
    return None


_UNSTORABLE_CHARS = re.compile("[\x00\ud800-\udfff]")


def storable_text(text: str) -> str:
    """`text` with what jsonb refuses made visible: U+0000 as \\x00, a surrogate as \\udcff (for error
    messages and tracebacks, which must always be recorded)."""
    if "\x00" not in text and text.isascii():  # the common case
        return text
    return _UNSTORABLE_CHARS.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


@dataclasses.dataclass(frozen=True)
class UnreadableJson:
    """Stands for a stored JSON value that Python's json cannot decode (see the module docstring)."""

    reason: str
    size: int  # bytes of JSON text

    def __str__(self) -> str:
        return f"<unreadable JSON, {self.size:,} bytes: {self.reason}>"

    def error(self, what: str) -> UnreadableValue:
        """The UnreadableValue to raise for this value; `what` names it ("the output of run 7")."""
        return UnreadableValue(f"{what} could not be read ({self.size:,} bytes of JSON): {self.reason}")


def loads_or_marker(data: str | bytes) -> Any:
    """json.loads, or an UnreadableJson marker for JSON that jsonb holds and Python's json refuses."""
    try:
        return json.loads(data)
    except RecursionError:
        return UnreadableJson("nested deeper than Python's json can decode", len(data))
    except ValueError as exc:  # an integer of more than 4,300 digits (sys.get_int_max_str_digits)
        return UnreadableJson(str(exc), len(data))


# The adapters of every connection the package opens (`context=` of psycopg's connect): psycopg's defaults,
# with json and jsonb decoded by loads_or_marker.
ADAPTERS = AdaptersMap(psycopg.adapters)
set_json_loads(loads_or_marker, ADAPTERS)


def from_json(value: Any, annotation: Any) -> Any:
    """Build `annotation` from decoded JSON when it is a dataclass type (the seeds' ZipParams); else as is."""
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation) and isinstance(value, dict):
        hints = typing.get_type_hints(annotation)
        fields = {f.name: from_json(value[f.name], hints.get(f.name)) for f in dataclasses.fields(annotation)
                  if f.name in value}
        return annotation(**fields)
    return value
