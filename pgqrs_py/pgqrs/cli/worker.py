"""`pgqrs worker MODULE:FUNCTION`: run a worker for a workflow handler until SIGTERM / Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import re
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

from .common import EXIT_OK, EXIT_USAGE, AddCommand, CliError, connect, one_line, positive_int, resolve_dsn

log = logging.getLogger("pgqrs.cli")


def register(add: AddCommand) -> None:
    """Add the commands of this group to the parser."""
    p = add("worker", "run a worker for a workflow handler until SIGTERM / Ctrl-C", cmd_worker)
    p.add_argument("target", metavar="MODULE:FUNCTION",
                   help="the handler: an async function (ctx, params) or a @workflow function")
    p.add_argument("--queue", "-q", help="workflow / queue name (default: the @workflow name)")
    p.add_argument("--concurrency", "-c", type=positive_int, default=1,
                   help="runs in flight at once (default 1)")
    p.add_argument("--name", help="worker name (default: QUEUE-HOST-PID); registering is an upsert by name")
    p.add_argument("--visibility", type=float, default=30.0,
                   help="lease duration in seconds; heartbeats renew it every third (default 30)")
    p.add_argument("--port", type=int, default=None, help="informational port stored with the worker")
    p.add_argument("--version", default=None,
                   help="the version of the workflow code this worker runs (default: the @workflow version):"
                        " it takes only runs of that version, and new runs without one")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    p.add_argument("--metrics-port", type=int, default=None,
                   help="serve Prometheus metrics on this port at /metrics (needs the extra "
                        "pgqrs-engine[dashboard])")
    p.add_argument("--metrics-host", default="127.0.0.1",
                   help="address of the metrics server (default 127.0.0.1; 0.0.0.0 for a remote Prometheus)")


def load_handler(target: str) -> tuple[Callable[..., Any], str | None]:
    """Import MODULE:FUNCTION; returns the handler and its workflow name when it is a @workflow function.
    Raises CliError (exit 2) when it cannot be imported or is not callable."""
    from ..handler import WorkflowFunction

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
    """QUEUE-HOST-PID, at most 128 characters (the engine's limit on a worker name)."""
    host = re.sub(r"[^A-Za-z0-9_.:-]", "-", socket.gethostname()) or "host"
    return f"{queue}-{host}-{os.getpid()}"[:128]


def cmd_worker(args: argparse.Namespace) -> int:
    """`pgqrs worker`: calls ``pgqrs.create_workflow`` for the queue, registers a worker
    (``pgqrs.register_worker``) and polls until SIGTERM / SIGINT (see pgqrs.consumer). Raises CliError (exit
    2) for a bad handler or setting, exit 3 when the database cannot be reached; SchemaMismatch when the
    installed schema is another version."""
    handler, workflow_name = load_handler(args.target)
    queue = args.queue or workflow_name
    if not queue:
        raise CliError(f"{args.target} is not a @workflow function: give the queue with --queue", EXIT_USAGE)
    from .._settings import MAX_CONCURRENCY, VISIBILITY_RANGE, checked_version

    low, high = VISIBILITY_RANGE  # the worker's bounds, within the engine's for a lease
    if not low <= args.visibility <= high:
        raise CliError(f"--visibility must be at least {low:g} and at most {high:g} seconds (1 day)",
                       EXIT_USAGE)
    if args.concurrency > MAX_CONCURRENCY:
        raise CliError(f"--concurrency must be at most {MAX_CONCURRENCY}", EXIT_USAGE)
    try:
        checked_version(args.version or getattr(handler, "version", None))
    except ValueError as exc:
        raise CliError(f"--version: {exc}", EXIT_USAGE) from None
    if args.metrics_port is not None:
        if not 0 < args.metrics_port < 65536:
            raise CliError("--metrics-port must be from 1 to 65535", EXIT_USAGE)
        try:
            import prometheus_client  # noqa: F401
        except ImportError:
            raise CliError("--metrics-port needs prometheus-client: pip install \"pgqrs-engine[dashboard]\"",
                           EXIT_USAGE) from None
    connect(args).close()  # fail fast (exit 3) instead of waiting for the pool to time out
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return asyncio.run(_worker(args, resolve_dsn(args), handler, queue))


async def _worker(args: argparse.Namespace, dsn: str, handler: Callable[..., Any], queue: str) -> int:
    from ..consumer import consumer
    from ..store import connect as store_connect

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
                        .visibility(args.visibility).version(args.version).create(store))
        log.info("worker %s (id %s, pid %s) polling queue %s: concurrency %s, visibility %.1f s, version %s",
                 name, worker.id, os.getpid(), queue, args.concurrency, args.visibility,
                 worker.version or "(none)")
        if args.metrics_port is not None:
            from ..worker_metrics import serve

            serve(args.metrics_host, args.metrics_port, dsn, queue, worker.id, store)
            log.info("metrics on http://%s:%s/metrics", args.metrics_host, args.metrics_port)
        if not stopping:
            await worker.poll_forever()  # installs its own SIGTERM / SIGINT handlers: a graceful stop
        log.info("worker %s stopped", name)
    finally:
        await store.close()
    return EXIT_OK
