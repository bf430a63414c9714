"""`pgqrs limits`: a workflow's flow-control limits, set on a live system (pgqrs.set_workflow_limits)."""

from __future__ import annotations

import argparse

from .. import _sql
from .._params import limits_params
from .common import EXIT_OK, AddCommand, connect, emit_json, positive_int, query


def rate(text: str) -> dict[str, object]:
    """A rate limit written LIMIT/PERIOD, e.g. 100/1m, 100/60s or "100/1 minute"."""
    limit, sep, period = text.partition("/")
    if not sep or not limit.strip().isdigit() or not period.strip():
        raise argparse.ArgumentTypeError(f"a rate limit is LIMIT/PERIOD, e.g. 100/1m, got {text!r}")
    return {"limit": int(limit), "period": period.strip()}


def register(add: AddCommand) -> None:
    """Add the commands of this group to the parser."""
    p = add("limits", "set a workflow's limits exactly as given; no option removes them all", cmd_limits)
    p.add_argument("workflow", metavar="NAME")
    p.add_argument("--max-concurrency", type=positive_int, help="runs holding a lease at once, in all")
    p.add_argument("--max-concurrency-per-key", type=positive_int,
                   help="runs holding a lease at once per trigger concurrency key")
    p.add_argument("--rate-limit", type=rate, metavar="LIMIT/PERIOD",
                   help="deliveries per period, e.g. 100/1m (period: 1 second to 1 day)")


def cmd_limits(args: argparse.Namespace) -> int:
    """`pgqrs limits`: calls ``pgqrs.set_workflow_limits``. Raises UnknownWorkflow (QR001) and
    InvalidArgument (22023: a limit out of range, a malformed rate limit)."""
    params = limits_params(args.max_concurrency, args.max_concurrency_per_key, args.rate_limit)
    with connect(args) as conn:
        row = query(conn, _sql.SET_WORKFLOW_LIMITS, (args.workflow, *params))[0]
    if args.json:
        emit_json(row)
        return EXIT_OK
    shown = {k: row[k] for k in ("max_concurrency", "max_concurrency_per_key", "rate_limit")}
    limits = ", ".join(f"{k} {v}" for k, v in shown.items() if v is not None) or "no limits"
    print(f"{row['name']}: {limits}")
    return EXIT_OK
