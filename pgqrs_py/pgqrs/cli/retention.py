"""`pgqrs purge` and `pgqrs retention`: removing finished runs now, and how long a workflow keeps them
(pgqrs.purge_runs, pgqrs.set_workflow_retention; docs/operations.md, "Retention")."""

from __future__ import annotations

import argparse
import re

from .. import _sql
from .common import EXIT_OK, AddCommand, connect, emit_json, positive_int, query

UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def duration(text: str) -> str:
    """A duration as N followed by s, m, h, d or w (7d, 12h), or PostgreSQL interval text ("7 days")."""
    short = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    if short:
        number, unit = short.group(1), UNITS[short.group(2)]
        return f"{number} {unit.removesuffix('s') if number == '1' else unit}"
    if not text.strip() or not re.search(r"\d", text):
        raise argparse.ArgumentTypeError(f"a duration is N and s, m, h, d or w (e.g. 7d), got {text!r}")
    return text


def register(add: AddCommand) -> None:
    """Add the commands of this group to the parser."""
    p = add("purge", "remove finished runs older than a duration, batch after batch", cmd_purge)
    p.add_argument("--older-than", type=duration, required=True, metavar="DURATION", help="e.g. 7d, 12h, 30m")
    p.add_argument("--status", action="append", choices=["SUCCESS", "ERROR", "CANCELLED"],
                   help="only runs that ended so (repeat for several; default all three)")
    p.add_argument("--batch", type=positive_int, default=10000, help="runs per transaction (1-100000)")
    p.add_argument("--dry-run", action="store_true", help="count what would be removed, remove nothing")
    p = add("retention", "keep a workflow's finished runs for a duration (workers purge them), or 'none'",
            cmd_retention)
    p.add_argument("workflow", metavar="NAME")
    p.add_argument("keep_for", metavar="DURATION|none", type=lambda t: None if t == "none" else duration(t))


def cmd_purge(args: argparse.Namespace) -> int:
    """`pgqrs purge`: calls ``pgqrs.purge_runs`` until it removes nothing (each batch its own transaction).
    Raises InvalidArgument (22023: a bad duration or batch)."""
    removed = 0
    with connect(args) as conn:
        while True:
            row = query(conn, _sql.PURGE_RUNS, (args.older_than, args.status, args.batch, args.dry_run))[0]
            count = int(row["purge_runs"])
            removed += count
            if args.dry_run or count == 0:
                break
    if args.json:
        emit_json({"would_remove" if args.dry_run else "removed": removed})
    elif args.dry_run:
        print(f"would remove {removed} runs finished more than {args.older_than} ago")
    else:
        print(f"removed {removed} runs finished more than {args.older_than} ago")
    return EXIT_OK


def cmd_retention(args: argparse.Namespace) -> int:
    """`pgqrs retention`: calls ``pgqrs.set_workflow_retention``. Raises UnknownWorkflow (QR001) and
    InvalidArgument (22023: not more than 0 and at most 100 years)."""
    with connect(args) as conn:
        query(conn, _sql.SET_WORKFLOW_RETENTION, (args.workflow, args.keep_for))
    if args.json:
        emit_json({"workflow": args.workflow, "retention": args.keep_for})
    else:
        kept = f"for {args.keep_for}" if args.keep_for is not None else "for good"
        print(f"{args.workflow}: finished runs are kept {kept}")
    return EXIT_OK
