"""`pgqrs versions` and `pgqrs set-version`: the live runs of each version of the workflow code during a
deploy, and moving a run to another version (pgqrs.queue_version_stats, pgqrs.set_run_version;
docs/operations.md, "Retention and deploys")."""

from __future__ import annotations

import argparse

from .. import _sql
from .._sql import ops as ops_sql
from .common import EXIT_OK, EXIT_USAGE, AddCommand, CliError, connect, emit_json, query, run_id
from .output import table


def register(add: AddCommand) -> None:
    """Add the commands of this group to the parser."""
    add("versions", "live runs per queue and version of the workflow code (pgqrs.queue_version_stats)",
        cmd_versions)
    p = add("set-version", "move runs to another version of their workflow's code, asserting it replays what"
            " they recorded (pgqrs.set_run_version)", cmd_set_version)
    p.add_argument("version", metavar="VERSION", nargs="?", help="the version to move them to")
    p.add_argument("run_ids", metavar="RUN", type=run_id, nargs="+")
    p.add_argument("--unversioned", action="store_true", help="make them unversioned instead (no VERSION)")


def cmd_versions(args: argparse.Namespace) -> int:
    """`pgqrs versions`: the rows of the view pgqrs.queue_version_stats."""
    with connect(args) as conn:
        rows = query(conn, ops_sql.QUEUE_VERSION_STATS)
    if args.json:
        emit_json(rows)
        return EXIT_OK
    for r in rows:
        r["version"] = r["version"] if r["version"] is not None else "(none)"
    print(table(rows, [("queue", "queue"), ("version", "version"), ("ready", "ready"), ("leased", "leased"),
                       ("delayed", "delayed"), ("waiting", "waiting"), ("depth", "depth"),
                       ("never_delivered", "not started"), ("oldest_age", "oldest")], "(no live runs)"))
    return EXIT_OK


def cmd_set_version(args: argparse.Namespace) -> int:
    """`pgqrs set-version`: calls ``pgqrs.set_run_version`` for each run, all in one transaction (all move or
    none). Raises UnknownRun (QR002), InvalidState (QR003: a run SUCCESS or CANCELLED), InvalidArgument
    (22023: a malformed version); CliError (exit 2) without VERSION or --unversioned, or with both."""
    if (args.version is None) == (not args.unversioned):
        raise CliError("give a VERSION or --unversioned (not both)", EXIT_USAGE)
    moved = []
    with connect(args) as conn, conn.transaction():
        for run in args.run_ids:
            previous = query(conn, _sql.SET_RUN_VERSION, (run, args.version))[0]["set_run_version"]
            moved.append({"run_id": run, "from": previous, "to": args.version})
    if args.json:
        emit_json(moved)
    else:
        for m in moved:
            print(f"run {m['run_id']}: version {m['from'] or '(none)'} -> {m['to'] or '(none)'}")
    return EXIT_OK
