"""Helpers of the schema lifecycle tests (tests/test_upgrade.py): empty databases, the frozen schema
fixtures (sql/fixtures/), a database filled with runs in every status (`populate`), its rows and its
`pg_dump --schema-only` to compare an upgraded install with a fresh one, and synthetic migration directories.
"""

from __future__ import annotations

import difflib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

from conftest import REPO, _admin_execute, drop_db
from pg_binaries import pg_tool
from pgqrs.install import migrations, target_version

FIXTURES = REPO / "sql" / "fixtures"
Conn = psycopg.Connection[tuple[Any, ...]]
T0 = "2030-01-01 00:00:00+00"


# --- helpers ----------------------------------------------------------------------------------------------


def empty_db(pg_dsn: str, name: str) -> str:
    drop_db(name, pg_dsn)
    _admin_execute(pg_dsn, sql.SQL("create database {}").format(sql.Identifier(name)))
    return make_conninfo(pg_dsn, dbname=name)


def apply_fixture(dsn: str, version: int) -> None:
    """Install schema version `version` exactly as it shipped (one script, as psql -f would send it)."""
    text = (FIXTURES / f"schema-v{version}.sql").read_text(encoding="utf-8")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("set client_min_messages = warning")
        conn.execute(text.encode(), prepare=False)


def schema_dump(dsn: str) -> list[str]:
    """`pg_dump --schema-only -n pgqrs`, normalised: no comments, blank lines, session SETs or the random
    \\restrict keys of recent pg_dump releases."""
    out = subprocess.run(
        [pg_tool("pg_dump"), "--schema-only", "--schema=pgqrs", "--dbname", dsn],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    lines = []
    for line in out.splitlines():
        if not line.strip() or line.startswith("--") or line.startswith(("\\restrict", "\\unrestrict")):
            continue
        if re.match(r"^(SET |SELECT pg_catalog\.set_config)", line):
            continue
        lines.append(line.rstrip())
    return lines


def assert_same_schema(upgraded: list[str], fresh: list[str]) -> None:
    if upgraded != fresh:
        diff = "\n".join(difflib.unified_diff(fresh, upgraded, "fresh install", "upgraded", lineterm="", n=2))
        pytest.fail(
            "the upgraded schema differs from a fresh install: a change to the schema files needs a "
            f"migration (sql/migrations/<from>--<to>.sql, see docs/upgrades.md)\n{diff[:8000]}"
        )


def snapshot(conn: Conn) -> dict[str, Any]:
    """Every row of every pgqrs table, as JSON, in a stable order."""
    tables = [
        r[0]
        for r in conn.execute(
            "select c.relname from pg_class as c where c.relnamespace = 'pgqrs'::regnamespace"
            " and c.relkind in ('r', 'p') order by 1"
        )
    ]
    snap: dict[str, Any] = {}
    for t in tables:
        row = conn.execute(
            sql.SQL(
                "select coalesce(jsonb_agg(to_jsonb(t) order by to_jsonb(t)::text), '[]') from pgqrs.{} as t"
            ).format(sql.Identifier(t))
        ).fetchone()
        assert row is not None
        snap[t] = row[0]
    return snap


def one(conn: Conn, query: str, params: Any = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row


def populate(conn: Conn) -> dict[str, Any]:
    """Runs in every status, steps in every status, dead letters, workers, through version 1's own API.

    One workflow per scenario so that each dequeue gets the intended run. Returns the ids and tokens needed
    to continue the live runs after the upgrade.
    """
    conn.execute("select set_config('pgqrs.now', %s, false)", (T0,))
    ids: dict[str, Any] = {}

    def wf(name: str, policy: dict[str, Any] | None = None) -> int:
        conn.execute("select pgqrs.create_workflow(%s, %s)", (name, Jsonb(policy) if policy else None))
        return int(one(conn, "select pgqrs.register_worker(%s, 'host', 8080, %s)", (f"w_{name}", name))[0])

    def trigger(name: str, payload: dict[str, Any], **kw: Any) -> int:
        return int(
            one(
                conn,
                "select run_id from pgqrs.trigger(p_workflow => %s, p_input => %s,"
                " p_idempotency_key => %s, p_delay => %s::interval)",
                (name, Jsonb(payload), kw.get("key"), kw.get("delay")),
            )[0]
        )

    def dequeue(name: str, worker: int, visibility: str = "1 hour") -> tuple[int, Any]:
        row = one(
            conn,
            "select run_id, lease_token from pgqrs.dequeue(%s, %s, 1, %s::interval)",
            (name, worker, visibility),
        )
        return int(row[0]), row[1]

    def acquire(run: int, step: str, token: Any) -> str:
        return str(one(conn, "select status from pgqrs.acquire_step(%s, %s, %s)", (run, step, token))[0])

    # QUEUED: plain, delayed, with an idempotency key, and with a unicode / nested input
    w = wf("up_queued")
    ids["queued"] = trigger("up_queued", {"n": 1})
    ids["delayed"] = trigger("up_queued", {"n": 2}, delay="2 days")
    ids["keyed"] = trigger("up_queued", {"n": 3}, key="order-42")
    ids["unicode"] = trigger("up_queued", {"ключ": ["☃", {"deep": [1, 2.5, None, True]}], "big": 10**30})
    conn.execute("select pgqrs.trigger_batch('up_queued', %s)", (Jsonb([{"b": i} for i in range(3)]),))

    # RUNNING: one step SUCCESS, one step RUNNING, lease held
    w = wf("up_running")
    trigger("up_running", {"n": 4})
    run, token = dequeue("up_running", w)
    assert acquire(run, "fetch", token) == "EXECUTE"
    conn.execute(
        "select pgqrs.complete_step(%s, 'fetch', %s, %s)", (run, token, Jsonb({"files": ["a", "b"]}))
    )
    assert acquire(run, "zip", token) == "EXECUTE"
    ids["running"], ids["running_token"] = run, token

    # RUNNING with an expired lease (a crashed worker), and a heartbeat seen
    w = wf("up_stuck")
    trigger("up_stuck", {"n": 5})
    run, token = dequeue("up_stuck", w, "10 seconds")
    conn.execute("select * from pgqrs.heartbeat(%s, array[%s]::uuid[])", (w, token))
    ids["stuck"] = run

    # QUEUED waiting for a retry: a step ERROR with retry_at
    w = wf("up_retry", {"max_attempts": 5, "backoff": "fixed", "base_seconds": 60, "max_seconds": 60})
    trigger("up_retry", {"n": 6})
    run, token = dequeue("up_retry", w)
    acquire(run, "flaky", token)
    conn.execute(
        "select * from pgqrs.fail_step(%s, 'flaky', %s, %s, true)", (run, token, Jsonb({"e": "timeout"}))
    )
    ids["retrying"] = run

    # PAUSED in a step, with another step recorded from outside (update_step)
    w = wf("up_paused")
    trigger("up_paused", {"n": 7})
    run, token = dequeue("up_paused", w)
    conn.execute("select pgqrs.complete_step(%s, 'prepare', %s, '\"ok\"')", (run, token))
    acquire(run, "approval", token)
    conn.execute("select * from pgqrs.pause_step(%s, 'approval', %s, '3 days')", (run, token))
    conn.execute("select pgqrs.update_step(%s, 'note', 'RUNNING', 'null')", (run,))
    ids["paused"] = run

    # SUCCESS, archived (archive after complete_run is the seeds' no-op)
    w = wf("up_success")
    trigger("up_success", {"n": 8})
    run, token = dequeue("up_success", w)
    acquire(run, "only", token)
    conn.execute("select pgqrs.complete_step(%s, 'only', %s, '42')", (run, token))
    conn.execute("select pgqrs.complete_run(%s, %s, %s)", (run, token, Jsonb({"archive": "s3://x"})))
    conn.execute("select pgqrs.archive(%s, %s)", (run, w))
    ids["success"] = run

    # ERROR: a permanent step failure (dead letter) and a fail_run; an exhausted transient failure
    w = wf("up_error", {"max_attempts": 1})
    trigger("up_error", {"n": 9})
    run, token = dequeue("up_error", w)
    acquire(run, "boom", token)
    conn.execute(
        "select * from pgqrs.fail_step(%s, 'boom', %s, %s, false)", (run, token, Jsonb({"e": "bad"}))
    )
    ids["dead_step"] = run
    trigger("up_error", {"n": 10})
    run, token = dequeue("up_error", w)
    conn.execute("select pgqrs.fail_run(%s, %s, %s)", (run, token, Jsonb({"e": "gave up"})))
    ids["dead_run"] = run
    trigger("up_error", {"n": 11})
    run, token = dequeue("up_error", w)
    acquire(run, "flaky", token)
    # (a per-call policy: version 1's fail_step ignored the workflow's own policy, fixed in 57d1214)
    conn.execute(
        "select * from pgqrs.fail_step(%s, 'flaky', %s, '{}', true, null, '{\"max_attempts\": 1}')",
        (run, token),
    )
    ids["exhausted"] = run

    # a stopped worker
    conn.execute("select pgqrs.stop_worker(%s)", (w,))

    # the lease of up_stuck expires; the held ones (1 hour) do not
    conn.execute("select set_config('pgqrs.now', %s, false)", ("2030-01-01 00:01:00+00",))
    statuses = {r[0] for r in conn.execute("select status from pgqrs.runs")}
    assert statuses == {"QUEUED", "RUNNING", "PAUSED", "SUCCESS", "ERROR"}
    step_statuses = {r[0] for r in conn.execute("select status from pgqrs.steps")}
    assert step_statuses == {"RUNNING", "SUCCESS", "ERROR", "PAUSED"}
    assert one(conn, "select count(*) from pgqrs.dead_letters")[0] == 3
    assert one(conn, "select count(*) from pgqrs.stuck_runs")[0] == 1
    return ids


def statuses(conn: Conn) -> dict[int, Any]:
    """run_status and run_steps of every run, through the public API, as dicts (column -> value)."""
    out: dict[int, Any] = {}

    def rows(query: str, run_id: int) -> list[dict[str, Any]]:
        cur = conn.execute(query, (run_id,))
        names = [c.name for c in cur.description or []]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    for (run_id,) in conn.execute("select run_id from pgqrs.runs order by run_id").fetchall():
        out[run_id] = (
            rows("select * from pgqrs.run_status(%s)", run_id),
            rows("select * from pgqrs.run_steps(%s)", run_id),
        )
    return out


def without_new_columns(after: Any, before: Any) -> Any:
    """`after` with the keys `before` did not have dropped, recursively: columns the migrations added are
    checked separately; every column that existed must hold exactly what it held."""
    if isinstance(after, dict) and isinstance(before, dict):
        return {k: without_new_columns(v, before[k]) for k, v in after.items() if k in before}
    if isinstance(after, list | tuple) and isinstance(before, list | tuple) and len(after) == len(before):
        return type(after)(without_new_columns(a, b) for a, b in zip(after, before, strict=True))
    return after


def new_column_values(after: dict[str, Any], before: dict[str, Any]) -> dict[str, set[str]]:
    """table.column -> the set of JSON values the migrations gave the columns they added."""
    found: dict[str, set[str]] = {}
    for table, rows in after.items():
        old_keys = set(before[table][0]) if before.get(table) else None
        for row in rows:
            for key in set(row) - (old_keys if old_keys is not None else set(row)):
                found.setdefault(f"{table}.{key}", set()).add(json.dumps(row[key]))
    return found


def synthetic(tmp_path: Path, extra: dict[int, str]) -> Path:
    """A migrations directory: the shipped migrations plus `extra` (step n: `<T+n-1>--<T+n>.sql`, where T is
    this package's version), so synthetic versions build on the real ones."""
    directory = tmp_path / "migrations"
    directory.mkdir()
    for m in migrations():
        shutil.copy(m.path, directory / m.path.name)
    base = target_version()
    for n, text in extra.items():
        (directory / f"{base + n - 1}--{base + n}.sql").write_text(text)
    return directory
