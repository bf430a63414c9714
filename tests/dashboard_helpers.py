"""What the dashboard's tests share (tests/test_dashboard*.py): runs in known states made with the engine's
own functions, and a dashboard app on a test database."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from starlette.testclient import TestClient

from pgqrs.dashboard import DashboardConfig, create_app

TOKEN = "a-test-token-of-32-characters-xx"
SCRIPT = "<script>document.title='pwned'</script>"


def trigger(conn: psycopg.Connection[Any], workflow: str, payload: Any, key: str | None = None) -> int:
    row = conn.execute("select run_id from pgqrs.trigger(p_workflow => %s, p_input => %s::jsonb,"
                       " p_idempotency_key => %s)", (workflow, json.dumps(payload), key)).fetchone()
    assert row is not None
    return int(row[0])


def lease(conn: psycopg.Connection[Any], workflow: str) -> tuple[int, Any]:
    """Dequeue one run of `workflow` as a worker registered for it: (run id, lease token)."""
    worker = conn.execute("select pgqrs.register_worker(p_name => %s, p_queue => %s)",
                          (f"{workflow}-w1", workflow)).fetchone()[0]  # type: ignore[index]
    row = conn.execute("select run_id, lease_token from pgqrs.dequeue(p_queue => %s, p_worker => %s)",
                       (workflow, worker)).fetchone()
    assert row is not None
    return int(row[0]), row[1]


def fail(conn: psycopg.Connection[Any], workflow: str, message: str = "boom") -> int:
    """Leases the next run of `workflow`, records a step and fails the run for good (a dead letter)."""
    run_id, token = lease(conn, workflow)
    conn.execute("select pgqrs.acquire_step(%s, 'load', %s)", (run_id, token))
    conn.execute("select pgqrs.complete_step(%s, 'load', %s, '{\"rows\": 3}')", (run_id, token))
    error = {"type": "ValueError", "message": message,
             "traceback": "Traceback (most recent call last):\n  File \"job.py\", line 7\n"
                          f"ValueError: {message}"}
    conn.execute("select pgqrs.fail_run(%s, %s, %s::jsonb)", (run_id, token, json.dumps(error)))
    return run_id


def demo(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Workflows `orders` and `emails`: a dead run, a run whose input holds a <script>, a queued run with an
    idempotency key."""
    for name in ("orders", "emails"):
        conn.execute("select pgqrs.create_workflow(p_name => %s)", (name,))
    runs = {"failed": trigger(conn, "orders", {"order": 1})}
    fail(conn, "orders", "card declined")
    runs["script"] = trigger(conn, "emails", {"subject": SCRIPT})
    runs["keyed"] = trigger(conn, "emails", {"to": "a@example.org"}, key="welcome-42")
    return runs


@contextmanager
def dashboard(dsn: str, **options: Any) -> Iterator[TestClient]:
    """A client of the dashboard on `dsn` (in process, the whole ASGI app with its pool)."""
    app = create_app(DashboardConfig(dsn=dsn, poll_seconds=0.5, **options))
    with TestClient(app, base_url="http://127.0.0.1:8080", follow_redirects=False) as client:
        yield client


def log_in(client: TestClient, run_id: int) -> str:
    """Logs in with TOKEN; returns the CSRF token of the session's forms (read from the confirmation page of
    an action on `run_id`)."""
    response = client.post("/login", data={"token": TOKEN, "next": "/"})
    assert response.status_code == 303, response.text
    page = client.get(f"/runs/{run_id}/confirm/cancel")
    return csrf_of(page.text)


def csrf_of(html: str) -> str:
    marker = 'name="csrf" value="'
    start = html.index(marker) + len(marker)
    return html[start:html.index('"', start)]


# ---- real processes: a worker and the dashboard (the browser tests, make screenshots) ---------------------

TESTS = Path(__file__).resolve().parent
LOGS = Path(tempfile.gettempdir()) / "pgqrs-dashboard-tests"  # the processes' output, for a post-mortem


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(*args: str, dsn: str) -> subprocess.Popen[bytes]:
    """`python -m pgqrs ARGS` on `dsn`, in tests/ (where dashboard_worker.py is), its output in a log file."""
    LOGS.mkdir(exist_ok=True)
    log = open(LOGS / f"{args[0]}-{os.getpid()}.log", "ab")  # noqa: SIM115 (the child writes it)
    return subprocess.Popen([sys.executable, "-m", "pgqrs", *args], cwd=TESTS, stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL, env={**os.environ, "PGQRS_DSN": dsn})


def serve(dsn: str, *options: str) -> tuple[subprocess.Popen[bytes], str]:
    """`pgqrs dashboard` on a free port; returns the process and its base URL once it answers."""
    port = free_port()
    proc = start("dashboard", "--port", str(port), "--poll", "0.5", *options, dsn=dsn)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/static/style.css", timeout=2).close()
            return proc, url
        except OSError:
            assert proc.poll() is None, "the dashboard exited"
            assert time.monotonic() < deadline, "the dashboard did not answer in 30 s"
            time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then wait (kill after 20 s)."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_for(what: str, check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def run_status(dsn: str, run_id: int) -> str:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return str(conn.execute("select status from pgqrs.runs where run_id = %s", (run_id,)).fetchone()[0])  # type: ignore[index]
