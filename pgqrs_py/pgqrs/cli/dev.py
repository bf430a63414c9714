"""`pgqrs dev`: a local PostgreSQL server with the schema installed, for trying pgqrs without installing
PostgreSQL (pgqrs.embedded, docs/embedded.md). `--stop` and `--status` act on the same data directory."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from .. import embedded
from ..embedded import DevServer, DevServerError
from .common import EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, AddCommand, CliError, emit_json

FAST_WARNING = ("WARNING: --fast: fsync and synchronous_commit are off: a power cut or an OS crash can lose "
                "the last commits or corrupt this cluster. For throwaway data only.")


def register(add: AddCommand) -> None:
    """Add the command of this group to the parser."""
    p = add("dev", "start (or reuse) a local PostgreSQL server with the pgqrs schema: no set-up needed "
                   "(needs pgqrs-engine[embedded])", cmd_dev)
    p.add_argument("--data", type=Path, default=None, metavar="DIR",
                   help=f"data directory (default: $PGQRS_DEV_DIR, else {embedded.default_data_dir()})")
    p.add_argument("--fast", action="store_true",
                   help="turn fsync and synchronous_commit off when starting (data can be lost on a crash)")
    action = p.add_mutually_exclusive_group()
    action.add_argument("--stop", action="store_true", help="stop the server")
    action.add_argument("--status", action="store_true", help="say whether the server runs (exit 3 if not)")


def cmd_dev(args: argparse.Namespace) -> int:
    """`pgqrs dev`: start or reuse the server of --data and install the schema (`pgqrs.install`, which calls
    the schema's own functions); `--stop`, `--status`. Raises CliError (exit 2) for a data directory it
    cannot use, with what to do."""
    data_dir = args.data if args.data is not None else embedded.default_data_dir()
    try:
        if args.stop:
            return _stop(args, data_dir)
        if args.status:
            return _status(args, data_dir)
        return _start(args, data_dir)
    except DevServerError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    except OSError as exc:  # e.g. a data directory of another user, which we may not even look into
        raise CliError(f"{exc.strerror}: {exc.filename} (choose another --data)", EXIT_USAGE) from None


def _start(args: argparse.Namespace, data_dir: Path) -> int:
    from ..install import install

    server, started = embedded.start(data_dir, fast=args.fast)
    version = install(server.dsn)
    if args.json:
        emit_json(_describe(server) | {"started": started, "schema_version": version})
    else:
        verb = "started" if started else "already running:"
        print(f"{verb} PostgreSQL {embedded.MAJOR_VERSION} in {server.data_dir} ({_durability(server)}), "
              f"pgqrs schema version {version}")
        print(f"DSN: {server.dsn}")
        if args.data is not None:  # the fallback of the other commands only finds the default data directory
            print(f"other commands use it with: export PGQRS_DSN={shlex.quote(server.dsn)}")
        print(f"stop it with: {_command(args, '--stop', server.data_dir)}")
    if server.fast:
        print(f"pgqrs dev: {FAST_WARNING}", file=sys.stderr)
    elif args.fast:
        stop = _command(args, "--stop", server.data_dir)
        print(f"pgqrs dev: --fast ignored: the server already runs durable ({stop} first)", file=sys.stderr)
    return EXIT_OK


def _stop(args: argparse.Namespace, data_dir: Path) -> int:
    stopped = embedded.stop(data_dir)
    if args.json:
        emit_json({"data_dir": str(data_dir), "stopped": stopped})
    else:
        print(f"{'stopped the server in' if stopped else 'no server running in'} {data_dir}")
    return EXIT_OK


def _status(args: argparse.Namespace, data_dir: Path) -> int:
    server = embedded.status(data_dir)
    if args.json:
        emit_json(_describe(server) if server else {"data_dir": str(data_dir), "running": False})
    elif server is None:
        print(f"not running: {data_dir}")
    else:
        print(f"running: {server.data_dir} ({_durability(server)})")
        print(f"DSN: {server.dsn}")
    return EXIT_OK if server else EXIT_UNREACHABLE


def _describe(server: DevServer) -> dict[str, object]:
    return {"data_dir": str(server.data_dir), "running": True, "dsn": server.dsn, "durable": not server.fast}


def _durability(server: DevServer) -> str:
    if server.fast:
        return "FAST: fsync and synchronous_commit off"
    return "durable: fsync and synchronous_commit on"


def _command(args: argparse.Namespace, flag: str, data_dir: Path) -> str:
    data = f" --data {shlex.quote(str(data_dir))}" if args.data is not None else ""
    return f"pgqrs dev {flag}{data}"
