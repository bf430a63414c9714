"""Retention (sql/retention/purge.sql; docs/operations.md, "Retention"): `pgqrs purge` and `store.purge_runs`
remove old finished runs and nothing else; `pgqrs retention` sets a workflow's retention, which a running
worker applies on its own."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from typing import Any

import psycopg
import pytest

import pgqrs
from pgqrs import sync as pgqrs_sync
from pgqrs.errors import InvalidArgument
from test_cli import pgqrs as cli

pytestmark = pytest.mark.timeout(120)


def finished_runs(db: str, workflow: str, n: int, at: str) -> list[int]:
    """n runs of `workflow` that finished SUCCESS at time `at` (the engine's clock set back)."""
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("select set_config('pgqrs.now', %s, false)", (at,))
        conn.execute("select pgqrs.create_workflow(%s)", (workflow,))
        worker = conn.execute("select pgqrs.register_worker(%s, 'h', null, %s)", (f"{workflow}-w", workflow))
        worker_id = worker.fetchone()[0]  # type: ignore[index]
        ids = []
        for i in range(n):
            conn.execute("select pgqrs.trigger(%s, %s)", (workflow, json.dumps({"i": i})))
            run, token = conn.execute(
                "select run_id, lease_token from pgqrs.dequeue(%s, %s)", (workflow, worker_id)
            ).fetchone()  # type: ignore[misc]
            conn.execute("select pgqrs.complete_step(%s, 'a', %s, '1')", (run, token))
            conn.execute("select pgqrs.complete_run(%s, %s, '{}')", (run, token))
            ids.append(run)
        return ids


def count(db: str, sql: str) -> int:
    with psycopg.connect(db) as conn:
        return int(conn.execute(sql).fetchone()[0])  # type: ignore[index]


def test_pgqrs_purge_removes_old_finished_runs_batch_after_batch(db: str) -> None:
    finished_runs(db, "old", 5, "2020-01-01 00:00:00+00")
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("select pgqrs.trigger('old', '{\"live\": true}')")  # queued: never purged
    dry = cli("purge", "--older-than", "7d", "--dry-run", dsn=db)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout == "would remove 5 runs finished more than 7 days ago\n"
    assert count(db, "select count(*) from pgqrs.runs") == 6
    done = cli("purge", "--older-than", "7d", "--batch", "2", "--json", dsn=db)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"removed": 5}
    assert count(db, "select count(*) from pgqrs.runs") == 1
    assert count(db, "select count(*) from pgqrs.steps") == 0
    assert count(db, "select count(*) from pgqrs.messages_archive") == 0


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--older-than", "0d"], "older_than must be more than 0"),
        (["--older-than", "soon"], "a duration is N and s, m, h, d or w"),
        (["--older-than", "7d", "--status", "RUNNING"], "invalid choice: 'RUNNING'"),
        (["--older-than", "7d", "--batch", "200000"], "limit must be 1-100000"),
    ],
)
def test_pgqrs_purge_bad_input_is_one_line_and_removes_nothing(db: str, args: list[str], says: str) -> None:
    finished_runs(db, "old", 1, "2020-01-01 00:00:00+00")
    res = cli("purge", *args, dsn=db)
    assert res.returncode == 2
    assert says in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert count(db, "select count(*) from pgqrs.runs") == 1


def test_store_purge_runs_in_both_flavours(db: str) -> None:
    finished_runs(db, "old", 3, "2020-01-01 00:00:00+00")

    async def purge() -> tuple[int, int]:
        async with await pgqrs.connect(db) as store:
            return (
                await store.purge_runs(timedelta(days=7), ["SUCCESS"], dry_run=True),
                await store.purge_runs("7 days", limit=1),
            )

    assert asyncio.run(purge()) == (3, 1)
    with pgqrs_sync.connect(db) as store:
        assert store.purge_runs(7 * 86400) == 2
        with pytest.raises(InvalidArgument):
            store.purge_runs(0)
        with pytest.raises(InvalidArgument):
            store.purge_runs(timedelta(days=1), ["QUEUED"])
    assert count(db, "select count(*) from pgqrs.runs") == 0


def test_a_running_worker_applies_the_workflows_retention(db: str) -> None:
    """`pgqrs retention NAME 1d`: a worker of any workflow removes that workflow's runs finished more than a
    day ago, on its own; the runs of a workflow without a retention stay."""
    finished_runs(db, "kept_short", 4, "2020-01-01 00:00:00+00")
    finished_runs(db, "kept_long", 2, "2020-01-01 00:00:00+00")
    res = cli("retention", "kept_short", "1d", dsn=db)
    assert res.returncode == 0 and res.stdout == "kept_short: finished runs are kept for 1 day\n", res.stderr

    async def idle_worker() -> None:
        async with await pgqrs.connect(db) as store:
            await store.create_workflow("other")

            async def noop(ctx: Any, params: Any) -> None:
                return None

            worker = await (
                pgqrs.consumer("janitor", None, "other").handler(noop).schedule_interval(0.2).create(store)
            )
            polling = asyncio.create_task(worker.poll_forever())
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and count(db, "select count(*) from pgqrs.runs") > 2:
                await asyncio.sleep(0.2)
            worker.stop()
            await polling

    asyncio.run(idle_worker())
    with psycopg.connect(db) as conn:
        left = conn.execute(
            "select w.name, count(*) from pgqrs.runs join pgqrs.workflows as w using (workflow_id) group by 1"
        ).fetchall()
    assert left == [("kept_long", 2)]
    assert cli("retention", "kept_short", "none", dsn=db).returncode == 0
    assert count(db, "select count(*) from pgqrs.retention") == 0
