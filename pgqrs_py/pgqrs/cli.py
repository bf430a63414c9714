"""The `pgqrs` command (also `python -m pgqrs`): install the schema, run a worker, trigger and inspect runs.

    pgqrs install | upgrade
    pgqrs worker MODULE:FUNCTION [--queue Q] [--concurrency N] [--name NAME] [--visibility SECONDS]
    pgqrs trigger NAME JSON [--idempotency-key K] [--delay SECONDS]
    pgqrs runs [--status S] [--workflow W] [--limit N]
    pgqrs run ID
    pgqrs update-step RUN STEP STATUS [JSON]
    pgqrs resume RUN | retry RUN
    pgqrs workers | stats

The database is `--dsn`, else $PGQRS_DSN, else libpq's own PG* variables (PGHOST, PGDATABASE, ...).
Output is a table for people; `--json` prints JSON for scripts.

Exit codes: 0 ok, 1 the engine refused (a pgqrs error: unknown run, wrong state...), 2 usage or bad input
(unknown command, bad JSON, an argument the engine rejects as invalid), 3 the database is unreachable.
Every failure is one line on stderr.

Reads come from the ops views (pgqrs.run_overview, worker_status, queue_stats) and pgqrs.run_status /
run_steps; every write is a call of an engine function, exactly as from psql.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import re
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, NoReturn
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from tabulate import tabulate  # type: ignore[import-untyped]

from . import _sql
from ._json import ADAPTERS, UnreadableJson
from .errors import InvalidArgument, PgqrsError, mapped_errors
from .vocabulary import RUN_STATUSES, STEP_STATUSES

EXIT_OK = 0
EXIT_ENGINE = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


# Reads: only the ops views and the engine's read functions, which pgqrs_client and pgqrs_worker may use
# (only pgqrs_admin may read the tables, see docs/security.md).
RUNS_QUERY = """
select * from pgqrs.run_overview
where (%(status)s::text is null or status = %(status)s)
  and (%(workflow)s::text is null or workflow = %(workflow)s)
order by run_id desc
limit %(limit)s
"""
RUN_STATUS_QUERY = "select * from pgqrs.run_status(p_run => %s::bigint)"
RUN_STEPS_QUERY = "select * from pgqrs.run_steps(p_run => %s::bigint)"
WORKERS_QUERY = "select * from pgqrs.worker_status order by worker_id"
QUEUE_STATS_QUERY = "select * from pgqrs.queue_stats order by queue"
RUN_COUNTS_QUERY = """
select workflow, status, count(*) as runs
from pgqrs.run_overview
group by workflow, status
order by workflow, status
"""
HAS_SCHEMA_QUERY = "select to_regclass('pgqrs.schema_version') is not null as installed"
SCHEMA_VERSION_QUERY = "select pgqrs.schema_version()"

log = logging.getLogger("pgqrs.cli")


class CliError(Exception):
    """A failure the CLI reports as one line on stderr with its exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def one_line(text: str) -> str:
    """Collapse a (possibly multi-line) message into one line."""
    return re.sub(r"\s+", " ", text).strip()


# ---- argument parsing ------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2), not usage text plus a message."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message} (see `{self.prog} --help`)", EXIT_USAGE)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _run_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a run id is an integer, got {text!r}") from None
    if not 1 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"a run id is a positive 64-bit integer, got {text}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0:  # also rejects NaN
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {text}")
    return value


def _status(choices: Sequence[str]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.upper()
        if value not in choices:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(choices)}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    # --dsn and --json are accepted before or after the command: SUPPRESS keeps a subcommand's absent option
    # from overwriting the value given before it.
    common = _Parser(add_help=False)
    common.add_argument("--dsn", default=argparse.SUPPRESS,
                        help="libpq connection string or URI (default: $PGQRS_DSN, else the PG* variables)")
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

    def add(name: str, help_text: str, func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
        p.set_defaults(func=func)
        return p

    add("install", "install the pgqrs schema (idempotent)", cmd_install)
    add("upgrade", "upgrade the pgqrs schema to this package's version (idempotent)", cmd_install)

    p = add("worker", "run a worker for a workflow handler until SIGTERM / Ctrl-C", cmd_worker)
    p.add_argument("target", metavar="MODULE:FUNCTION",
                   help="the handler: an async function (ctx, params) or a @workflow function")
    p.add_argument("--queue", "-q", help="workflow / queue name (default: the @workflow name)")
    p.add_argument("--concurrency", "-c", type=_positive_int, default=1,
                   help="runs in flight at once (default 1)")
    p.add_argument("--name", help="worker name (default: QUEUE-HOST-PID); registering is an upsert by name")
    p.add_argument("--visibility", type=float, default=30.0,
                   help="lease duration in seconds; heartbeats renew it every third (default 30)")
    p.add_argument("--port", type=int, default=None, help="informational port stored with the worker")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))

    p = add("trigger", "start a run of a workflow; prints the run id", cmd_trigger)
    p.add_argument("workflow", metavar="NAME")
    p.add_argument("input", metavar="JSON", nargs="?", default="{}",
                   help="run input, a JSON object (default {})")
    p.add_argument("--idempotency-key", "-k",
                   help="the same key with the same input returns the existing run")
    p.add_argument("--delay", type=_seconds, default=None, help="start after this many seconds")

    p = add("runs", "list runs, newest first (pgqrs.run_overview)", cmd_runs)
    p.add_argument("--status", "-s", type=_status(RUN_STATUSES), help=", ".join(RUN_STATUSES))
    p.add_argument("--workflow", "-w")
    p.add_argument("--limit", "-n", type=_positive_int, default=20, help="default 20")

    p = add("run", "show one run: status, input, output, error and its steps", cmd_run)
    p.add_argument("run_id", metavar="ID", type=_run_id)

    p = add("update-step", "record a step result from outside a worker (pgqrs.update_step)", cmd_update_step)
    p.add_argument("run_id", metavar="RUN", type=_run_id)
    p.add_argument("step_id", metavar="STEP")
    p.add_argument("status", metavar="STATUS", type=_status(STEP_STATUSES), help=", ".join(STEP_STATUSES))
    p.add_argument("value", metavar="JSON", nargs="?", default="null", help="the step's value (default null)")

    p = add("resume", "resume a PAUSED run (pgqrs.resume_run)", cmd_resume)
    p.add_argument("run_id", metavar="RUN", type=_run_id)

    p = add("cancel", "cancel a run that has not finished (pgqrs.cancel_run); its worker stops it",
            cmd_cancel)
    p.add_argument("run_id", metavar="RUN", type=_run_id)
    p.add_argument("--reason", help="why (kept in the run's error, at most 1000 characters)")

    p = add("retry", "put an ERROR run back in its queue from its last good step (pgqrs.retry_run)",
            cmd_retry)
    p.add_argument("run_id", metavar="RUN", type=_run_id)

    add("workers", "list workers with heartbeat age and leases (pgqrs.worker_status)", cmd_workers)
    add("stats", "queue depth and run counts by status (pgqrs.queue_stats)", cmd_stats)
    return parser


# ---- connection and output -------------------------------------------------------------------------------


def resolve_dsn(args: argparse.Namespace) -> str:
    """--dsn, else $PGQRS_DSN, else "" (libpq then reads PGHOST, PGPORT, PGDATABASE, PGUSER...)."""
    if args.dsn is not None:
        return str(args.dsn)
    return os.environ.get("PGQRS_DSN", "")


def connect(args: argparse.Namespace) -> psycopg.Connection[dict[str, Any]]:
    dsn = resolve_dsn(args)
    try:
        return psycopg.connect(dsn, autocommit=True, connect_timeout=10, row_factory=dict_row,
                               context=ADAPTERS)  # unreadable JSON is shown, not fatal (see _json.py)
    except psycopg.OperationalError as exc:
        raise CliError(f"cannot connect to the database: {one_line(str(exc))}", EXIT_UNREACHABLE) from None
    except psycopg.ProgrammingError as exc:  # a malformed connection string
        raise CliError(f"invalid connection string: {one_line(str(exc))}", EXIT_USAGE) from None


def query(conn: psycopg.Connection[dict[str, Any]], sql: str, params: Any = None) -> list[dict[str, Any]]:
    with mapped_errors():
        return conn.execute(sql.encode(), params).fetchall()


def parse_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{what} is not valid JSON: {exc}", EXIT_USAGE) from None
    except (RecursionError, ValueError) as exc:  # valid JSON beyond Python's limits (see _json.py)
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise CliError(f"{what} cannot be read: {reason}", EXIT_USAGE) from None


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, UnreadableJson):  # a placeholder string: what was stored cannot be shown
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def emit_json(value: Any) -> None:
    print(json.dumps(value, default=_jsonable, indent=2))


def human_duration(delta: timedelta | None) -> str:
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


# ---- commands --------------------------------------------------------------------------------------------


def cmd_install(args: argparse.Namespace) -> int:
    from .install import install

    with connect(args) as conn:
        before = None
        if query(conn, HAS_SCHEMA_QUERY)[0]["installed"]:
            before = query(conn, SCHEMA_VERSION_QUERY)[0]["schema_version"]
        with mapped_errors():
            version = install(conn)
        database = conn.info.dbname
    if args.json:
        emit_json({"database": database, "previous_version": before, "version": version})
    elif before is None:
        print(f"installed pgqrs schema version {version} in database {database}")
    elif before == version:
        print(f"pgqrs schema version {version} is up to date in database {database}")
    else:
        print(f"upgraded pgqrs schema from version {before} to {version} in database {database}")
    return EXIT_OK


def cmd_trigger(args: argparse.Namespace) -> int:
    payload = parse_json(args.input, "the run input")
    if not isinstance(payload, dict):
        raise CliError(f"the run input must be a JSON object, got {type(payload).__name__}", EXIT_USAGE)
    from .store import trigger_params

    params = trigger_params(args.workflow, payload, args.idempotency_key, args.delay, None)
    with connect(args) as conn:
        row = query(conn, _sql.TRIGGER, params)[0]
    if args.json:
        emit_json(row)
    else:
        print(row["run_id"])
        if not row["created"]:
            print(f"pgqrs: idempotency key {args.idempotency_key!r} already started run {row['run_id']}",
                  file=sys.stderr)
    return EXIT_OK


def cmd_runs(args: argparse.Namespace) -> int:
    with connect(args) as conn:
        params = {"status": args.status, "workflow": args.workflow, "limit": args.limit}
        rows = query(conn, RUNS_QUERY, params)
    if args.json:
        emit_json(rows)
        return EXIT_OK
    for r in rows:
        r["step"] = f"{r['current_step']} ({r['current_step_status']})" if r.get("current_step") else ""
        r["error_text"] = human_error(r.get("error"))
    print(table(rows, [("run_id", "run"), ("workflow", "workflow"), ("status", "status"),
                       ("attempt", "attempts"), ("step", "current step"), ("updated_at", "updated"),
                       ("worker", "worker"), ("error_text", "error")], "(no runs)"))
    return EXIT_OK


def _step_rows(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for s in steps:
        started, completed = s.get("started_at"), s.get("completed_at")
        s["duration"] = completed - started if started and completed else None
        s["result"] = human_error(s["error"]) if s.get("error") is not None else s.get("value")
        s["when"] = s.get("retry_at") or s.get("paused_until")
    return steps


def cmd_run(args: argparse.Namespace) -> int:
    with connect(args) as conn:
        status = query(conn, RUN_STATUS_QUERY, (args.run_id,))[0]
        steps = query(conn, RUN_STEPS_QUERY, (args.run_id,))
    if args.json:
        emit_json({"run": status, "steps": steps})
        return EXIT_OK
    print(f"run {status['run_id']}  {status['workflow']}  {status['status']}")
    fields = [
        ("input", status.get("input")),
        ("output", status.get("output")),
        ("error", human_error(status.get("error")) or None),
        ("deliveries", status.get("attempt")),
        ("current step", _current_step(status)),
        ("created", status.get("created_at")),
        ("started", status.get("started_at")),
        ("finished", status.get("finished_at")),
        ("updated", status.get("updated_at")),
        ("visible at", status.get("visible_at")),
    ]
    for label, value in fields:
        if value is not None:
            print(f"  {label + ':':14}{human(value, 100)}")
    print()
    print(table(_step_rows(steps), [("step_id", "step"), ("status", "status"), ("attempt", "attempts"),
                                    ("started_at", "started"), ("duration", "took"),
                                    ("when", "retry/pause until"), ("result", "value / error")],
                "(no steps recorded)"))
    return EXIT_OK


def _current_step(status: dict[str, Any]) -> str | None:
    """The step the run is in (the last recorded one) with its status and since when."""
    step = status.get("current_step")
    if step is None:
        return None
    since = status.get("current_step_since")
    return f"{step} ({status.get('current_step_status')} since {since})" if since else step


def cmd_update_step(args: argparse.Namespace) -> int:
    value = parse_json(args.value, "the step value")
    with connect(args) as conn:
        row = query(conn, _sql.UPDATE_STEP, (args.run_id, args.step_id, args.status, json.dumps(value)))[0]
    if args.json:
        emit_json(row)
    else:
        print(f"run {row['run_id']} step {row['step_id']}: {row['status']}")
    return EXIT_OK


def _transition(args: argparse.Namespace, sql: str, params: tuple[Any, ...] | None = None) -> int:
    with connect(args) as conn:
        row = query(conn, sql, params or (args.run_id,))[0]
    new_status = next(iter(row.values()))
    if args.json:
        emit_json({"run_id": args.run_id, "status": new_status})
    else:
        print(f"run {args.run_id}: {new_status}")
    return EXIT_OK


def cmd_resume(args: argparse.Namespace) -> int:
    return _transition(args, _sql.RESUME_RUN)


def cmd_cancel(args: argparse.Namespace) -> int:
    return _transition(args, _sql.CANCEL_RUN, (args.run_id, args.reason))


def cmd_retry(args: argparse.Namespace) -> int:
    return _transition(args, _sql.RETRY_RUN)


def cmd_workers(args: argparse.Namespace) -> int:
    with connect(args) as conn:
        rows = query(conn, WORKERS_QUERY)
    if args.json:
        emit_json(rows)
        return EXIT_OK
    print(table(rows, [("worker_id", "id"), ("name", "name"), ("hostname", "host"), ("queue", "queue"),
                       ("status", "status"), ("heartbeat_age", "heartbeat age"), ("leases", "leases"),
                       ("started_at", "started")], "(no workers)"))
    return EXIT_OK


def cmd_stats(args: argparse.Namespace) -> int:
    with connect(args) as conn:
        queues = query(conn, QUEUE_STATS_QUERY)
        counts = query(conn, RUN_COUNTS_QUERY)
    by_workflow: dict[str, dict[str, int]] = {}
    totals = dict.fromkeys(RUN_STATUSES, 0)
    for c in counts:
        by_workflow.setdefault(c["workflow"], {})[c["status"]] = int(c["runs"])
        totals[c["status"]] = totals.get(c["status"], 0) + int(c["runs"])
    for q in queues:
        q["runs"] = {s: by_workflow.get(q["queue"], {}).get(s, 0) for s in RUN_STATUSES}
    if args.json:
        emit_json({"queues": queues, "runs_by_status": totals})
        return EXIT_OK
    rows = [{**q, **q["runs"]} for q in queues]
    columns = [("queue", "queue"), ("ready", "ready"), ("leased", "leased"), ("delayed", "delayed"),
               ("depth", "depth"), ("oldest_age", "oldest")] + [(s, s.lower()) for s in RUN_STATUSES]
    print(table(rows, columns, "(no workflows)"))
    print()
    print("runs by status: " + ", ".join(f"{s} {n}" for s, n in totals.items()))
    return EXIT_OK


# ---- worker ----------------------------------------------------------------------------------------------


def load_handler(target: str) -> tuple[Callable[..., Any], str | None]:
    """Import MODULE:FUNCTION; returns the handler and its workflow name when it is a @workflow function."""
    from .workflow import WorkflowFunction

    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise CliError(f"expected MODULE:FUNCTION, got {target!r}", EXIT_USAGE)
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # the console script does not put the working directory on the path
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise CliError(f"cannot import {module_name!r}: {exc}", EXIT_USAGE) from None
    except Exception as exc:  # the user's module failed while importing: report it in one line
        raise CliError(f"importing {module_name!r} failed: {type(exc).__name__}: {one_line(str(exc))}",
                       EXIT_USAGE) from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise CliError(f"{module_name!r} has no attribute {attr!r}", EXIT_USAGE)
        obj = getattr(obj, part)
    if not callable(obj):
        raise CliError(f"{target} is not callable", EXIT_USAGE)
    return obj, (obj.name if isinstance(obj, WorkflowFunction) else None)


def default_worker_name(queue: str) -> str:
    host = re.sub(r"[^A-Za-z0-9_.:-]", "-", socket.gethostname()) or "host"
    return f"{queue}-{host}-{os.getpid()}"[:128]


def cmd_worker(args: argparse.Namespace) -> int:
    handler, workflow_name = load_handler(args.target)
    queue = args.queue or workflow_name
    if not queue:
        raise CliError(f"{args.target} is not a @workflow function: give the queue with --queue", EXIT_USAGE)
    from .consumer import MAX_CONCURRENCY, VISIBILITY_RANGE

    low, high = VISIBILITY_RANGE  # the worker's bounds, within the engine's for a lease
    if not low <= args.visibility <= high:
        raise CliError(f"--visibility must be at least {low:g} and at most {high:g} seconds (1 day)",
                       EXIT_USAGE)
    if args.concurrency > MAX_CONCURRENCY:
        raise CliError(f"--concurrency must be at most {MAX_CONCURRENCY}", EXIT_USAGE)
    connect(args).close()  # fail fast (exit 3) instead of waiting for the pool to time out
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return asyncio.run(_worker(args, resolve_dsn(args), handler, queue))


async def _worker(args: argparse.Namespace, dsn: str, handler: Callable[..., Any], queue: str) -> int:
    from .consumer import consumer
    from .store import connect as store_connect

    stopping = False

    def early_stop() -> None:  # SIGTERM before the loop runs: exit 0 without taking work
        nonlocal stopping
        stopping = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, early_stop)

    store = await store_connect(dsn, max_size=args.concurrency + 2)
    try:
        await store.create_workflow(queue)
        name = args.name or default_worker_name(queue)
        worker = await (consumer(name, args.port, queue).handler(handler).concurrency(args.concurrency)
                        .visibility(args.visibility).create(store))
        log.info("worker %s (id %s, pid %s) polling queue %s: concurrency %s, visibility %.1f s",
                 name, worker.id, os.getpid(), queue, args.concurrency, args.visibility)
        if not stopping:
            await worker.poll_forever()  # installs its own SIGTERM / SIGINT handlers: a graceful stop
        log.info("worker %s stopped", name)
    finally:
        await store.close()
    return EXIT_OK


# ---- entry point -----------------------------------------------------------------------------------------


def _engine_message(exc: PgqrsError) -> str:
    text = one_line(exc.message)
    if exc.hint:
        text += f" (hint: {one_line(exc.hint)})"
    return text


def _database_message(exc: psycopg.Error) -> str:
    text = one_line(exc.diag.message_primary or str(exc)) or type(exc).__name__
    if exc.sqlstate in ("3F000", "42P01") and "pgqrs" in text:
        return f"the pgqrs schema is not installed in this database (run `pgqrs install`): {text}"
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


if __name__ == "__main__":
    raise SystemExit(main())
