"""The commands on runs: `pgqrs trigger`, `runs`, `run`, `update-step`, `resume`, `cancel`, `retry`, `fork`.

Writes go through the same marshalling as the package's (store.trigger_params, store.update_step_params) and
call the engine function exactly as from psql; reads come from pgqrs.run_overview, run_status and run_steps.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import psycopg

from .. import _sql
from .._params import trigger_params, update_step_params
from .._sql import ops as ops_sql
from ..errors import UnknownRun
from ..vocabulary import RUN_STATUSES, UPDATABLE_STEP_STATUSES
from .common import (
    EXIT_OK,
    AddCommand,
    connect,
    emit_json,
    parse_json,
    positive_int,
    query,
    run_id,
    seconds,
    status,
)
from .output import human, human_error, table


def register(add: AddCommand) -> None:
    """Add the commands of this group to the parser."""
    p = add("trigger", "start a run of a workflow; prints the run id", cmd_trigger)
    p.add_argument("workflow", metavar="NAME")
    p.add_argument("input", metavar="JSON", nargs="?", default="{}",
                   help="run input, any JSON value (default {})")
    p.add_argument("--idempotency-key", "-k",
                   help="the same key with the same input returns the existing run")
    p.add_argument("--delay", type=seconds, default=None, help="start after this many seconds")
    p.add_argument("--priority", type=int, default=0, help="-100 to 100 (default 0): higher runs go first")
    p.add_argument("--concurrency-key", help="the key the workflow's max_concurrency_per_key counts")
    p.add_argument("--version", help="pin the run to this version of the workflow code (default: the first"
                   " versioned worker that takes it)")

    p = add("runs", "list runs, newest first (pgqrs.run_overview)", cmd_runs)
    p.add_argument("--status", "-s", type=status(RUN_STATUSES), help=", ".join(RUN_STATUSES))
    p.add_argument("--workflow", "-w")
    p.add_argument("--version", help="only runs of this version of the workflow code")
    p.add_argument("--limit", "-n", type=positive_int, default=20, help="default 20")

    p = add("run", "show one run: status, input, output, error and its steps", cmd_run)
    p.add_argument("run_id", metavar="ID", type=run_id)

    p = add("update-step", "record a step result from outside a worker (pgqrs.update_step)", cmd_update_step)
    p.add_argument("run_id", metavar="RUN", type=run_id)
    p.add_argument("step_id", metavar="STEP")
    p.add_argument("status", metavar="STATUS", type=status(UPDATABLE_STEP_STATUSES),
                   help=", ".join(UPDATABLE_STEP_STATUSES))
    p.add_argument("value", metavar="JSON", nargs="?", default="null", help="the step's value (default null)")

    p = add("resume", "resume a PAUSED run (pgqrs.resume_run)", cmd_resume)
    p.add_argument("run_id", metavar="RUN", type=run_id)

    p = add("cancel", "cancel a run that has not finished (pgqrs.cancel_run); its worker stops it",
            cmd_cancel)
    p.add_argument("run_id", metavar="RUN", type=run_id)
    p.add_argument("--reason", help="why (kept in the run's error, at most 1000 characters)")

    p = add("retry", "put an ERROR run back in its queue from its last good step (pgqrs.retry_run)",
            cmd_retry)
    p.add_argument("run_id", metavar="RUN", type=run_id)

    p = add("fork", "start a new run of RUN's workflow and input from step S, replaying the steps before it"
            " (pgqrs.fork_run); prints the new run id", cmd_fork)
    p.add_argument("run_id", metavar="RUN", type=run_id)
    p.add_argument("--from-step", metavar="S", required=True, help="the first step to execute again")


def cmd_trigger(args: argparse.Namespace) -> int:
    """`pgqrs trigger`: calls ``pgqrs.trigger``. Raises UnknownWorkflow (QR001), IdempotencyConflict
    (QR006), InvalidArgument (22023), NotSerializable; CliError (exit 2) for input that is not JSON (any
    JSON value is an input; null stands for {})."""
    payload = parse_json(args.input, "the run input")
    params = trigger_params(args.workflow, payload, args.idempotency_key, args.delay, None, args.priority,
                            args.concurrency_key, args.version)
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
    """`pgqrs runs`: the newest rows of pgqrs.run_overview, filtered by status, workflow and version."""
    with connect(args, read=True) as conn:
        params = {"status": args.status, "workflow": args.workflow, "version": args.version,
                  "limit": args.limit}
        rows = query(conn, ops_sql.RUNS, params)
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
    """`pgqrs run ID`: calls ``pgqrs.run_status``, ``pgqrs.run_steps`` and ``pgqrs.run_children``. Raises
    UnknownRun (QR002). With --read-dsn, from the replica, else (it has not replayed the run yet) the
    database."""
    try:
        with connect(args, read=True) as conn:
            run, steps, children = _run_rows(conn, args.run_id)
    except UnknownRun:
        if not args.read_dsn:
            raise
        with connect(args) as conn:
            run, steps, children = _run_rows(conn, args.run_id)
    if args.json:
        emit_json({"run": run, "steps": steps, "children": children})
        return EXIT_OK
    print(f"run {run['run_id']}  {run['workflow']}  {run['status']}")
    fields = [
        ("input", run.get("input")),
        ("output", run.get("output")),
        ("error", human_error(run.get("error")) or None),
        ("deliveries", run.get("attempt")),
        ("current step", _current_step(run)),
        ("created", run.get("created_at")),
        ("started", run.get("started_at")),
        ("finished", run.get("finished_at")),
        ("updated", run.get("updated_at")),
        ("visible at", run.get("visible_at")),
        ("parent run", run.get("parent_run_id")),
        ("forked from", run.get("forked_from")),
        ("version", run.get("version")),
    ]
    for label, value in fields:
        if value is not None:
            print(f"  {label + ':':14}{human(value, 100)}")
    print()
    print(table(_step_rows(steps), [("step_id", "step"), ("status", "status"), ("attempt", "attempts"),
                                    ("started_at", "started"), ("duration", "took"),
                                    ("when", "retry/pause until"), ("result", "value / error")],
                "(no steps recorded)"))
    if children:
        print()
        print(table(children, [("run_id", "child run"), ("workflow", "workflow"), ("status", "status"),
                               ("step_id", "started by step"), ("created_at", "created"),
                               ("finished_at", "finished")], ""))
    return EXIT_OK


def _run_rows(conn: psycopg.Connection[dict[str, Any]],
              run_id: int) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """The run, its steps and its children: ``pgqrs.run_status``, ``pgqrs.run_steps``, ``pgqrs.run_children``
    one after another. Raises UnknownRun (QR002)."""
    run = query(conn, ops_sql.RUN, (run_id,))[0]
    return run, query(conn, ops_sql.RUN_STEPS, (run_id,)), query(conn, ops_sql.RUN_CHILDREN, (run_id,))


def _current_step(run: dict[str, Any]) -> str | None:
    """The step the run is in (the last recorded one) with its status and since when."""
    step = run.get("current_step")
    if step is None:
        return None
    since = run.get("current_step_since")
    return f"{step} ({run.get('current_step_status')} since {since})" if since else step


def cmd_update_step(args: argparse.Namespace) -> int:
    """`pgqrs update-step`: calls ``pgqrs.update_step``. Raises UnknownRun (QR002), InvalidState (QR003),
    StepConflict (QR005), InvalidArgument (22023), NotSerializable."""
    value = parse_json(args.value, "the step value")
    params = update_step_params(args.run_id, args.step_id, args.status, value)
    with connect(args) as conn:
        row = query(conn, _sql.UPDATE_STEP, params)[0]
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
    """`pgqrs resume`: calls ``pgqrs.resume_run``. Raises UnknownRun (QR002), InvalidState (QR003)."""
    return _transition(args, _sql.RESUME_RUN)


def cmd_cancel(args: argparse.Namespace) -> int:
    """`pgqrs cancel`: calls ``pgqrs.cancel_run``. Raises UnknownRun (QR002), InvalidState (QR003),
    InvalidArgument (22023)."""
    return _transition(args, _sql.CANCEL_RUN, (args.run_id, args.reason))


def cmd_retry(args: argparse.Namespace) -> int:
    """`pgqrs retry`: calls ``pgqrs.retry_run``. Raises UnknownRun (QR002), InvalidState (QR003)."""
    return _transition(args, _sql.RETRY_RUN)


def cmd_fork(args: argparse.Namespace) -> int:
    """`pgqrs fork`: calls ``pgqrs.fork_run``. Raises UnknownRun (QR002), InvalidArgument (22023: RUN
    recorded no step S)."""
    with connect(args) as conn:
        new_run = query(conn, _sql.FORK_RUN, (args.run_id, args.from_step))[0]["fork_run"]
    if args.json:
        emit_json({"run_id": new_run, "forked_from": args.run_id, "from_step": args.from_step})
    else:
        print(new_run)
    return EXIT_OK
