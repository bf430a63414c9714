"""Helpers of the least-privilege tests (tests/test_security*.py): connecting as a login role, the SQLSTATE
of a call, a leased run to aim at, the public functions and docs/security.md's grant matrix. The login roles
themselves are made by the `logins` fixture (tests/conftest.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from conftest import REPO

Conn = psycopg.Connection[tuple[Any, ...]]


def as_login(dsn: str, login: str) -> Conn:
    return psycopg.connect(make_conninfo(dsn, user=login), autocommit=True)


def sqlstate(fn: Callable[[], object]) -> str | None:
    try:
        fn()
    except psycopg.Error as exc:
        return exc.sqlstate
    return None


def one(conn: Conn, query: Any, params: Any = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row


def setup_run(conn: Conn, wf: str = "sec_wf") -> dict[str, Any]:
    """As the superuser: a workflow, a worker, and a run leased by it with step s1 acquired."""
    conn.execute("select pgqrs.create_workflow(%s)", (wf,))
    worker = one(conn, "select pgqrs.register_worker(%s, 'h', 1, %s)", (f"{wf}_w", wf))[0]
    conn.execute("select pgqrs.trigger(%s, '{}')", (wf,))
    run, token = one(conn, "select run_id, lease_token from pgqrs.dequeue(%s, %s)", (wf, worker))
    conn.execute("select pgqrs.acquire_step(%s, 's1', %s)", (run, token))
    return {"worker": worker, "run": run, "token": token, "wf": wf}


def public_functions(conn: Conn) -> list[tuple[int, str, str]]:
    return conn.execute(
        "select p.oid::int, p.proname::text, p.oid::regprocedure::text from pg_proc as p"
        " where p.pronamespace = 'pgqrs'::regnamespace and p.proname !~ '^_' order by 2, 3"
    ).fetchall()


def docs_matrix() -> dict[str, set[str]]:
    """docs/security.md's "Who can call what" table: function -> roles marked ✓ (besides pgqrs_admin)."""
    text = (REPO / "docs" / "security.md").read_text()
    section = text.split("## Who can call what", 1)[1].split("\n## ", 1)[0]
    matrix: dict[str, set[str]] = {}
    for line in section.splitlines():
        m = re.match(r"^\| `(\w+)` \|([^|]*)\|([^|]*)\|", line)
        if m:
            matrix[m[1]] = {r for r, cell in (("pgqrs_worker", m[2]), ("pgqrs_client", m[3])) if "✓" in cell}
    assert matrix, "the table was not found in docs/security.md"
    return matrix
