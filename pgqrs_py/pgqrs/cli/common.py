"""What every command of `pgqrs` shares: exit codes, the one-line error, argument types, the connection,
queries and JSON in and out."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row

from .. import _dsn
from .._json import ADAPTERS, display_json
from ..embedded import DevServerError
from ..errors import mapped_errors

EXIT_OK = 0
EXIT_ENGINE = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

Command = Callable[[argparse.Namespace], int]
# add(name, help, command) -> the command's parser: how a command group registers its commands
AddCommand = Callable[[str, str, Command], argparse.ArgumentParser]


class CliError(Exception):
    """A failure the CLI reports as one line on stderr with its exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def one_line(text: str) -> str:
    """Collapse a (possibly multi-line) message into one line."""
    return re.sub(r"\s+", " ", text).strip()


# ---- argument types ----------------------------------------------------------------------------------------


def positive_int(text: str) -> int:
    """An integer of at least 1 (--limit, --concurrency); else argparse's one-line usage error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def run_id(text: str) -> int:
    """A run id: a positive 64-bit integer (the engine's bigint), checked before any connection."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a run id is an integer, got {text!r}") from None
    if not 1 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"a run id is a positive 64-bit integer, got {text}")
    return value


def seconds(text: str) -> float:
    """A number of seconds, 0 or more (NaN refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0:  # also rejects NaN
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {text}")
    return value


def status(choices: Sequence[str]) -> Callable[[str], str]:
    """An argument type taking one of `choices` (pgqrs.vocabulary), in any case, as its upper-case form."""

    def parse(text: str) -> str:
        value = text.upper()
        if value not in choices:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(choices)}")
        return value

    return parse


# ---- connection, queries, JSON -----------------------------------------------------------------------------


def resolve_dsn(args: argparse.Namespace) -> str:
    """--dsn, else what `pgqrs.resolve_dsn` chooses ($PGQRS_DSN, the PG* variables, the embedded server of
    `pgqrs dev`). Raises CliError (exit 3) when the embedded server cannot start."""
    try:
        return _dsn.resolve_dsn(args.dsn)
    except DevServerError as exc:
        raise CliError(f"cannot start the embedded server: {exc}", EXIT_UNREACHABLE) from None
    except OSError as exc:  # its data directory cannot even be looked into
        raise CliError(f"cannot start the embedded server: {exc.strerror}: {exc.filename}",
                       EXIT_UNREACHABLE) from None


def connect(args: argparse.Namespace, read: bool = False) -> psycopg.Connection[dict[str, Any]]:
    """An autocommit connection whose rows are dicts, to --read-dsn for a `read` command when given (a
    replica), else to the database. Raises CliError: exit 3 when the database cannot be reached, exit 2 for a
    malformed connection string."""
    dsn = args.read_dsn if read and args.read_dsn else resolve_dsn(args)
    try:
        return psycopg.connect(dsn, autocommit=True, connect_timeout=10, row_factory=dict_row,
                               context=ADAPTERS)  # unreadable JSON is shown, not fatal (see _json.py)
    except psycopg.OperationalError as exc:
        raise CliError(f"cannot connect to the database: {one_line(str(exc))}", EXIT_UNREACHABLE) from None
    except psycopg.ProgrammingError as exc:  # a malformed connection string
        raise CliError(f"invalid connection string: {one_line(str(exc))}", EXIT_USAGE) from None


def query(conn: psycopg.Connection[dict[str, Any]], sql: str, params: Any = None) -> list[dict[str, Any]]:
    """Run one statement of `pgqrs._sql` and return its rows. Engine SQLSTATEs are raised as their
    pgqrs.errors class (mapped_errors); any other database error as psycopg's."""
    with mapped_errors():
        return conn.execute(sql.encode(), params).fetchall()


def parse_json(text: str, what: str) -> Any:
    """Decode a JSON argument; CliError (exit 2) when it is not JSON or beyond Python's json."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{what} is not valid JSON: {exc}", EXIT_USAGE) from None
    except (RecursionError, ValueError) as exc:  # valid JSON beyond Python's limits (see _json.py)
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise CliError(f"{what} cannot be read: {reason}", EXIT_USAGE) from None


def emit_json(value: Any) -> None:
    """Print `value` (rows read from the database) as JSON: the output of `--json`."""
    print(display_json(value))
