"""Is a connection still alive? Answered without a round trip, for the pools' check at every checkout and for
the worker deciding whether a lost connection was its own. Shared by both flavours (no I/O wait)."""

from __future__ import annotations

import select
from typing import Any

import psycopg
from psycopg.pq import ConnStatus, DiagnosticField
from psycopg.pq.abc import PGresult


def connection_lost(conn: psycopg.BaseConnection[Any]) -> bool:
    """True when `conn` is closed or the server has closed it, or is closing it (a restart,
    `pg_terminate_backend`).

    An idle connection has nothing to read: when its socket is readable the server sent something, normally
    a terminated backend's FATAL message followed, a moment later, by end-of-file. Reading (PQconsumeInput)
    either meets that end-of-file, which marks the connection bad, or messages, parsed here (PQisBusy): a
    FATAL one means the backend is exiting, even while its socket is still open (a checkout in that moment
    used to get a connection whose first statement failed); others (a notice, a NOTIFY) go to the
    connection's handlers, a NOTIFY with its next statement. Nothing is sent to the server.
    """
    if conn.closed:
        return True
    pgconn = conn.pgconn
    try:
        if not select.select([pgconn.socket], [], [], 0)[0]:
            return bool(pgconn.status != ConnStatus.OK)  # nothing sent: the usual case
    except (psycopg.OperationalError, OSError, ValueError):
        return True
    fatal: list[bool] = []
    handler = pgconn.notice_handler  # psycopg's own, which hands notices to the connection's handlers

    def on_notice(result: PGresult) -> None:
        fatal.append(result.error_field(DiagnosticField.SEVERITY_NONLOCALIZED) == b"FATAL")
        if handler is not None:
            handler(result)

    pgconn.notice_handler = on_notice
    try:
        for _ in range(8):  # a message, then end-of-file: a few reads at most
            pgconn.consume_input()
            pgconn.is_busy()  # parses what was read: a message that arrives while idle is a notice
            if not select.select([pgconn.socket], [], [], 0)[0]:
                break
    except (psycopg.OperationalError, OSError, ValueError):
        return True
    finally:
        pgconn.notice_handler = handler
    return any(fatal) or bool(pgconn.status != ConnStatus.OK)
