"""The `pgqrs` command (also `python -m pgqrs`): install the schema, run a worker, trigger and inspect runs.

    pgqrs dev [--data DIR] [--fast] [--stop | --status]
    pgqrs install | upgrade
    pgqrs worker MODULE:FUNCTION [--queue Q] [--concurrency N] [--name NAME] [--visibility SECONDS]
    pgqrs trigger NAME JSON [--idempotency-key K] [--delay S] [--priority N] [--concurrency-key K]
    pgqrs runs [--status S] [--workflow W] [--limit N]
    pgqrs run ID
    pgqrs update-step RUN STEP STATUS [JSON]
    pgqrs resume RUN | retry RUN
    pgqrs emit KEY [JSON]
    pgqrs workers | stats
    pgqrs limits NAME [--max-concurrency N] [--max-concurrency-per-key N] [--rate-limit N/PERIOD]
    pgqrs purge --older-than 7d [--status S] [--batch N] [--dry-run] | retention NAME 30d|none
    pgqrs dashboard [--host 127.0.0.1] [--port 8080] [--token T] [--read-only]

The database is `--dsn`, else $PGQRS_DSN, else libpq's own PG* variables (PGHOST, PGDATABASE, ...), else the
embedded server of `pgqrs dev` (pgqrs.resolve_dsn).
Output is a table for people; `--json` prints JSON for scripts.

Exit codes: 0 ok, 1 the engine refused (a pgqrs error: unknown run, wrong state...), 2 usage or bad input
(unknown command, bad JSON, an argument the engine rejects as invalid), 3 the database is unreachable.
Every failure is one line on stderr.

Reads come from the ops views (pgqrs.run_overview, worker_status, queue_stats) and pgqrs.run_status /
run_steps; every write is a call of an engine function, exactly as from psql. A module per command group:
`dev` (the local server), `admin` (install, upgrade), `worker`, `runs` (trigger, runs, run, update-step,
resume, cancel, retry), `events` (emit), `schedules` (schedule add/rm/list/enable/disable), `ops` (workers,
stats), `flow` (limits), `retention` (purge, retention), `dashboard` (the web UI, docs/dashboard.md);
`common` and `output` are what they share. Their SQL is in `pgqrs._sql`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

import psycopg

from ..errors import InvalidArgument, PgqrsError
from . import admin, dashboard, dev, events, flow, ops, retention, runs, schedules, versions, worker
from .common import EXIT_ENGINE, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, CliError, Command, one_line


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2), not usage text plus a message."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message} (see `{self.prog} --help`)", EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    """The parser of the `pgqrs` command: every command group adds its commands (`register`)."""
    # --dsn and --json are accepted before or after the command: SUPPRESS keeps a subcommand's absent option
    # from overwriting the value given before it.
    common = _Parser(add_help=False)
    common.add_argument("--dsn", default=argparse.SUPPRESS,
                        help="libpq connection string or URI (default: $PGQRS_DSN, else the PG* variables, "
                             "else the server of `pgqrs dev`)")
    common.add_argument("--read-dsn", default=argparse.SUPPRESS,
                        help="a replica for the read commands (runs, run, workers, stats, schedule list); "
                             "`run` reads the database when the replica does not have the run yet")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print JSON instead of tables")

    parser = _Parser(
        prog="pgqrs",
        description="pgqrs: durable workflows in PostgreSQL. Install the schema, run workers, trigger and "
                    "inspect runs.",
        epilog="Exit codes: 0 ok, 1 engine error, 2 usage or bad input, 3 database unreachable.",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)

    def add(name: str, help_text: str, func: Command) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
        p.set_defaults(func=func)
        return p

    # the order of `pgqrs --help`
    for group in (dev, admin, worker, runs, events, schedules, ops, flow, retention, versions, dashboard):
        group.register(add)
    return parser


def _engine_message(exc: PgqrsError) -> str:
    text = one_line(exc.message)
    if exc.hint:
        text += f" (hint: {one_line(exc.hint)})"
    return text


def _database_message(exc: psycopg.Error) -> str:
    text = one_line(exc.diag.message_primary or str(exc)) or type(exc).__name__
    if exc.sqlstate in ("3F000", "42P01") and "pgqrs" in text:
        return f"the pgqrs schema is not installed in this database (run `pgqrs install`): {text}"
    if exc.sqlstate == "25006":  # read_only_sql_transaction: a write sent to a standby
        return (f"the server is read-only, a standby? (give the primary with --dsn, or list the servers with "
                f"target_session_attrs=read-write): {text}")
    if exc.sqlstate == "42883" and "pgqrs" in text:
        return f"the pgqrs schema here lacks a function this package calls (run `pgqrs upgrade`): {text}"
    return f"database error{' ' + exc.sqlstate if exc.sqlstate else ''}: {text}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script passes it to sys.exit)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        # --dsn / --json may come before or after the command; absent, they are not set at all (SUPPRESS)
        args.dsn = getattr(args, "dsn", None)
        args.read_dsn = getattr(args, "read_dsn", None)
        args.json = getattr(args, "json", False)
        code: int = args.func(args)
        return code
    except CliError as exc:
        message, code = str(exc), exc.code
    except InvalidArgument as exc:  # the engine's 22023: the input was wrong, not the state
        message, code = _engine_message(exc), EXIT_USAGE
    except PgqrsError as exc:
        message, code = _engine_message(exc), EXIT_ENGINE
    except psycopg.OperationalError as exc:
        message, code = f"database unreachable: {one_line(str(exc))}", EXIT_UNREACHABLE
    except psycopg.Error as exc:
        message, code = _database_message(exc), EXIT_ENGINE
    except KeyboardInterrupt:
        message, code = "interrupted", 130
    except BrokenPipeError:  # `pgqrs runs | head`: the reader left; nothing to report
        sys.stderr.close()
        return EXIT_OK
    print(f"pgqrs: {message}", file=sys.stderr)
    return code
