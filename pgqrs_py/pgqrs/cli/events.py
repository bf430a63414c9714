"""The commands on events (docs/waits.md): `pgqrs emit`."""

from __future__ import annotations

import argparse

from .. import _sql
from .._json import dumps
from .common import EXIT_OK, AddCommand, connect, emit_json, parse_json, query


def register(add: AddCommand) -> None:
    """Add the commands of this group to the parser."""
    p = add("emit", "emit an event: the first emit of a key wakes the runs waiting for it (pgqrs.emit_event)",
            cmd_emit)
    p.add_argument("key", metavar="KEY")
    p.add_argument("payload", metavar="JSON", nargs="?", default="null", help="the payload (default null)")


def cmd_emit(args: argparse.Namespace) -> int:
    """`pgqrs emit`: calls ``pgqrs.emit_event``; prints whether this emit was the first of its key. Raises
    InvalidArgument (22023: a key not of 1-255 characters, a payload too big) and NotSerializable."""
    payload = dumps(parse_json(args.payload, "the payload"), "the payload")
    with connect(args) as conn:
        first = bool(next(iter(query(conn, _sql.EMIT_EVENT, (args.key, payload))[0].values())))
    if args.json:
        emit_json({"key": args.key, "emitted": first})
    else:
        print(f"event {args.key}: {'emitted' if first else 'already emitted (this emit changed nothing)'}")
    return EXIT_OK
