"""pgqrs/_conncheck.py: is a pooled connection still alive, without a round trip?

A terminated backend (pg_terminate_backend, a shutdown) sends its FATAL message, then exits, and the client
sees its socket close a moment later. A pool checkout in that moment used to find the connection alive (the
message was read but not looked at) and hand out a connection whose first statement fails. Here the client
reaches the real server through a small relay that holds back the end of the stream after the server closed
it (a slow network, stretched), so that moment lasts as long as the test needs.
"""

from __future__ import annotations

import os
import select
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgqrs._conncheck import connection_lost

PORT = 5499


class Relay:
    """A unix socket that relays one client to the real server; the server's end of stream reaches the client
    only once `release` is set."""

    def __init__(self, directory: Path, server_socket: str) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(directory / f".s.PGSQL.{PORT}"))
        self.listener.listen(1)
        self.server_socket = server_socket
        self.server_closed = threading.Event()
        self.release = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        client, _ = self.listener.accept()
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.connect(self.server_socket)
        threading.Thread(target=self._pump, args=(client, server, None), daemon=True).start()
        self._pump(server, client, self.server_closed)

    def _pump(self, source: socket.socket, sink: socket.socket, closed: threading.Event | None) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:  # the other end is gone (the client's goodbye to a server that already left)
            pass
        if closed is not None:  # the server closed its end: hold the client's open until released
            closed.set()
            self.release.wait(30)
        sink.close()


@pytest.fixture
def relayed(db: str) -> Iterator[tuple[Relay, str]]:
    params = psycopg.conninfo.conninfo_to_dict(db)
    server_socket = os.path.join(str(params["host"]), f".s.PGSQL.{params.get('port', 5432)}")
    with tempfile.TemporaryDirectory() as directory:
        relay = Relay(Path(directory), server_socket)
        yield relay, psycopg.conninfo.make_conninfo(db, host=directory, port=PORT)
        relay.release.set()
        relay.listener.close()


def wait_until(what: str, check: Any) -> None:
    deadline = time.monotonic() + 10
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_a_connection_whose_backend_said_fatal_is_lost_before_its_socket_closes(
        relayed: tuple[Relay, str], conn: psycopg.Connection[Any]) -> None:
    relay, dsn = relayed
    with psycopg.connect(dsn, autocommit=True) as client:
        pid = client.execute("select pg_backend_pid()").fetchone()[0]  # type: ignore[index]
        assert not connection_lost(client), "an idle connection with nothing to read is alive"
        conn.execute("select pg_terminate_backend(%s)", (pid,))
        wait_until("the backend to exit",
                   lambda: relay.server_closed.is_set() and not os.path.exists(f"/proc/{pid}"))
        assert select.select([client.pgconn.socket], [], [], 10)[0], "its FATAL message has arrived"
        assert connection_lost(client), "the backend is gone, though the socket is still open"
        relay.release.set()


def test_a_notify_while_idle_leaves_the_connection_alive_and_is_delivered_with_the_next_statement(
        relayed: tuple[Relay, str], conn: psycopg.Connection[Any]) -> None:
    _relay, dsn = relayed
    with psycopg.connect(dsn, autocommit=True) as client:
        got: list[str] = []
        client.add_notify_handler(lambda n: got.append(n.payload))
        client.execute("listen pgqrs_conncheck")
        conn.execute("notify pgqrs_conncheck, 'hello'")
        assert select.select([client.pgconn.socket], [], [], 10)[0]
        assert not connection_lost(client), "a NOTIFY is no end"
        assert client.execute("select 1").fetchone() == (1,)
        assert got == ["hello"], "nor is it lost"
