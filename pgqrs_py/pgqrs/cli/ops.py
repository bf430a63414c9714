"""`pgqrs workers` and `pgqrs stats`: the fleet and the queues, from the ops views."""

from __future__ import annotations

import argparse

from .._sql import ops as ops_sql
from ..vocabulary import RUN_STATUSES
from .common import EXIT_OK, AddCommand, connect, emit_json, query
from .output import table


def register(add: AddCommand) -> None:
    """Add the commands of this group to the parser."""
    add("workers", "list workers with heartbeat age and leases (pgqrs.worker_status)", cmd_workers)
    add("stats", "queue depth and run counts by status (pgqrs.queue_stats)", cmd_stats)


def cmd_workers(args: argparse.Namespace) -> int:
    """`pgqrs workers`: the rows of the view pgqrs.worker_status."""
    with connect(args, read=True) as conn:
        rows = query(conn, ops_sql.WORKERS)
    if args.json:
        emit_json(rows)
        return EXIT_OK
    print(table(rows, [("worker_id", "id"), ("name", "name"), ("hostname", "host"), ("queue", "queue"),
                       ("status", "status"), ("heartbeat_age", "heartbeat age"), ("leases", "leases"),
                       ("started_at", "started")], "(no workers)"))
    return EXIT_OK


def cmd_stats(args: argparse.Namespace) -> int:
    """`pgqrs stats`: the view pgqrs.queue_stats, and each queue's runs by status (pgqrs.run_overview)."""
    with connect(args, read=True) as conn:
        queues = query(conn, ops_sql.QUEUE_STATS)
        counts = query(conn, ops_sql.RUN_COUNTS)
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
               ("depth", "depth"), ("oldest_age", "oldest"), ("limited", "held by limit"),
               ("limited_by", "limit")] + [(s, s.lower()) for s in RUN_STATUSES]
    print(table(rows, columns, "(no workflows)"))
    print()
    print("runs by status: " + ", ".join(f"{s} {n}" for s, n in totals.items()))
    return EXIT_OK
