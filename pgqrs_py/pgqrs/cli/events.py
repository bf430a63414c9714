"""The commands on events and messages (docs/waits.md): `pgqrs emit`, `pgqrs send`."""

from __future__ import annotations

import argparse

from .. import _sql
from .._json import dumps
from .common import EXIT_OK, AddCommand, connect, emit_json, parse_json, query, run_id


def register(add: AddCommand) -> None:
    """Add the commands of this group to the parser."""
    p = add("emit", "emit an event: the first emit of a key wakes the runs waiting for it (pgqrs.emit_event)",
            cmd_emit)
    p.add_argument("key", metavar="KEY")
    p.add_argument("payload", metavar="JSON", nargs="?", default="null", help="the payload (default null)")
    p = add("send", "send a message to a run: its recv steps of the topic take them in order (pgqrs.send)",
            cmd_send)
    p.add_argument("run", metavar="RUN", type=run_id)
    p.add_argument("topic", metavar="TOPIC")
    p.add_argument("message", metavar="JSON")
    p.add_argument("--idempotency-key", help="the same key again sends nothing (1-255 characters)")


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


def cmd_send(args: argparse.Namespace) -> int:
    """`pgqrs send`: calls ``pgqrs.send``; prints the message id. Raises UnknownRun (QR002), InvalidState
    (QR003: the run has finished), IdempotencyConflict (QR006), InvalidArgument (22023: a topic not of 1-255
    characters, a message too big) and NotSerializable."""
    message = dumps(parse_json(args.message, "the message"), "the message")
    params = (args.run, args.topic, message, args.idempotency_key)
    with connect(args) as conn:
        message_id = int(next(iter(query(conn, _sql.SEND, params)[0].values())))
    if args.json:
        emit_json({"run_id": params[0], "topic": args.topic, "message_id": message_id})
    else:
        print(f"message {message_id} sent to run {params[0]} on topic {args.topic}")
    return EXIT_OK
