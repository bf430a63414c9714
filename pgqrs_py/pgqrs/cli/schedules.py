"""`pgqrs schedule add/rm/list/enable/disable`: schedules (docs/schedules.md)."""

from __future__ import annotations

import argparse

from .. import _sql
from .._json import dumps
from .._sql import ops as ops_sql
from .common import EXIT_ENGINE, EXIT_OK, AddCommand, CliError, connect, emit_json, parse_json, query
from .output import table


def register(add: AddCommand) -> None:
    """Add the commands of this group to the parser."""
    p = add("schedule", "start runs of a workflow on a cron schedule: add, rm, list, enable, disable",
            cmd_list)
    actions = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        a = actions.add_parser(name, help=help_text, description=help_text)
        # --dsn / --json also after the action
        a.add_argument("--dsn", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        a.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        return a

    a = action("add", "create or replace a schedule (pgqrs.create_schedule)")
    a.set_defaults(func=cmd_add)
    a.add_argument("name", metavar="NAME")
    a.add_argument("workflow", metavar="WORKFLOW")
    a.add_argument("cron", metavar="CRON", help='5 fields, e.g. "*/15 9-17 * * MON-FRI" (quote it)')
    a.add_argument("--input", default="{}", help="the runs' input, any JSON value (default {})")
    a.add_argument("--timezone", default="UTC", help="IANA time zone of the expression (default UTC)")
    a.add_argument("--catch-up", choices=["latest", "all"], default="latest",
                   help="ticks missed while no worker ran: the newest only (default) or each, at most 100")
    a = action("rm", "drop a schedule; runs it started stay (pgqrs.drop_schedule)")
    a.set_defaults(func=cmd_rm)
    a.add_argument("name", metavar="NAME")
    action("list", "list schedules with their next and last fire (view pgqrs.schedules)").set_defaults(
        func=cmd_list)
    for name, enabled in (("enable", True), ("disable", False)):
        a = action(name, f"{name} a schedule (pgqrs.set_schedule_enabled)")
        a.set_defaults(func=cmd_enable, enabled=enabled)
        a.add_argument("name", metavar="NAME")


def cmd_add(args: argparse.Namespace) -> int:
    """`pgqrs schedule add`: calls ``pgqrs.create_schedule``; prints the next fire. Raises UnknownWorkflow
    (QR001), InvalidArgument (22023: a bad cron expression, time zone, name or input) and NotSerializable."""
    payload = dumps(parse_json(args.input, "the input"), "the input")
    params = (args.name, args.workflow, args.cron, payload, args.timezone, args.catch_up)
    with connect(args) as conn:
        next_fire = query(conn, _sql.CREATE_SCHEDULE, params)[0]["next_fire_at"]
    if args.json:
        emit_json({"name": args.name, "next_fire_at": next_fire})
    else:
        print(f"schedule {args.name}: {args.workflow} at {args.cron!r} ({args.timezone}), next {next_fire}")
    return EXIT_OK


def cmd_rm(args: argparse.Namespace) -> int:
    """`pgqrs schedule rm`: calls ``pgqrs.drop_schedule``. Raises CliError (exit 1) when there is no such
    schedule, InvalidArgument (22023: a bad name)."""
    with connect(args) as conn:
        found = bool(next(iter(query(conn, _sql.DROP_SCHEDULE, (args.name,))[0].values())))
    return _report(args, found, "dropped")


def cmd_enable(args: argparse.Namespace) -> int:
    """`pgqrs schedule enable/disable`: calls ``pgqrs.set_schedule_enabled``. Raises CliError (exit 1) when
    there is no such schedule, InvalidArgument (22023: a bad name)."""
    with connect(args) as conn:
        rows = query(conn, _sql.SET_SCHEDULE_ENABLED, (args.name, args.enabled))
    found = bool(next(iter(rows[0].values())))
    return _report(args, found, "enabled" if args.enabled else "disabled")


def _report(args: argparse.Namespace, found: bool, done: str) -> int:
    if not found:
        raise CliError(f"no schedule named {args.name}", EXIT_ENGINE)
    if args.json:
        emit_json({"name": args.name, done: True})
    else:
        print(f"schedule {args.name} {done}")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    """`pgqrs schedule list` (also plain `pgqrs schedule`): the rows of the view pgqrs.schedules."""
    with connect(args, read=True) as conn:
        rows = query(conn, ops_sql.SCHEDULES)
    if args.json:
        emit_json(rows)
        return EXIT_OK
    print(table(rows, [("name", "name"), ("workflow", "workflow"), ("cron", "cron"), ("timezone", "zone"),
                       ("catch_up", "catch-up"), ("enabled", "enabled"), ("next_fire_at", "next fire"),
                       ("last_fire_at", "last fire"), ("last_run_id", "last run"),
                       ("last_run_status", "status")], "(no schedules)"))
    return EXIT_OK
