"""What the dashboard's tests share (tests/test_dashboard*.py): runs in known states made with the engine's
own functions, and a dashboard app on a test database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
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
             "traceback": f"Traceback (most recent call last):\n  File \"job.py\", line 7\nValueError: {message}"}
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
