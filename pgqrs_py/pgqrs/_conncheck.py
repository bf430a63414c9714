"""Is a connection still alive? Answered without a round trip, for the pools' check at every checkout and for
the worker deciding whether a lost connection was its own. Shared by both flavours (no I/O wait)."""

from __future__ import annotations

import select
from typing import Any

import psycopg
from psycopg.pq import ConnStatus


def connection_lost(conn: psycopg.BaseConnection[Any]) -> bool:
    """True when `conn` is closed or the server has closed it (a restart, `pg_terminate_backend`).

    An idle connection has nothing to read: when its socket is readable the server sent something, normally
    a terminated backend's FATAL message followed by end-of-file. Reading it (PQconsumeInput) either meets
    that end-of-file, which marks the connection bad, or harmless asynchronous messages (a NOTIFY, a parameter
    change) that stay buffered for psycopg. Nothing is sent to the server.
    """
    if conn.closed:
        return True
    pgconn = conn.pgconn
    try:
        for _ in range(8):  # a message, then end-of-file: a few reads at most
            readable, _w, _x = select.select([pgconn.socket], [], [], 0)
            if not readable:
                break
            pgconn.consume_input()
    except (psycopg.OperationalError, OSError, ValueError):
        return True
    return bool(pgconn.status != ConnStatus.OK)
