"""`pgqrs dashboard`: serve the web dashboard (docs/dashboard.md) until Ctrl-C."""

from __future__ import annotations

import argparse
import os

from .common import EXIT_OK, EXIT_USAGE, AddCommand, CliError, connect, resolve_dsn

TOKEN_VARIABLE = "PGQRS_DASHBOARD_TOKEN"


def register(add: AddCommand) -> None:
    """Add the commands of this group to the parser."""
    p = add("dashboard", "serve the web dashboard: queues, runs, steps, workers, schedules, actions and "
            "/metrics (needs the extra pgqrs-engine[dashboard])", cmd_dashboard)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; another needs --token or --read-only)")
    p.add_argument("--port", type=int, default=8080, help="default 8080")
    p.add_argument("--token", default=None,
                   help=f"the token that logging in and every action need (default ${TOKEN_VARIABLE}); "
                        "without one the dashboard takes no action")
    p.add_argument("--read-only", action="store_true",
                   help="take no action, whatever the token; every transaction is read-only")
    p.add_argument("--poll", type=float, default=3.0, help="seconds between live updates (default 3)")


def cmd_dashboard(args: argparse.Namespace) -> int:
    """`pgqrs dashboard`: checks the bind (a non-local address needs a token or --read-only), then serves
    the app of pgqrs.dashboard with uvicorn. Raises CliError: exit 2 for an unsafe setting or a missing extra,
    exit 3 when the database cannot be reached."""
    try:
        import uvicorn

        from ..dashboard import DashboardConfig, UnsafeSetting, check_bind, create_app
    except ImportError as exc:
        raise CliError(f"the dashboard needs the extra: pip install \"pgqrs-engine[dashboard]\" ({exc})",
                       EXIT_USAGE) from None
    token = args.token if args.token is not None else os.environ.get(TOKEN_VARIABLE) or None
    try:
        check_bind(args.host, token, args.read_only)
    except UnsafeSetting as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    if not 0 < args.poll <= 3600:
        raise CliError("--poll must be more than 0 and at most 3600 seconds", EXIT_USAGE)
    connect(args).close()  # fail fast (exit 3) when the database cannot be reached
    config = DashboardConfig(dsn=resolve_dsn(args), token=token, read_only=args.read_only,
                             poll_seconds=args.poll)
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="info", server_header=False)
    return EXIT_OK
