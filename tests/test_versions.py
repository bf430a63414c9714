"""Versions of workflow code (issue 20): a run records the version of the code that started it, and a worker
takes only runs of the version it serves, so old runs finish on old code during a rolling deploy.

The rolling deploy runs real worker processes (tests/versions_worker.py): v1 workers start runs that then wait
for an event, a v2 worker (whose first step was renamed: a v1 journal would drift under it) joins, the events
come, and every v1 run must finish on v1 code while new runs go to v2 once the v1 worker is gone.
pgtap/versions/ covers the SQL (dequeue's filter, set_run_version, bad input).
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

import pgqrs
from test_cli import pgqrs as cli
from versions_worker import SIDE_TABLE
from worker_procs import WorkerProcs, wait_for

HERE = Path(__file__).parent
Conn = psycopg.Connection[Any]


def one(conn: Conn, query: str, *params: Any) -> Any:
    return conn.execute(query, params).fetchone()[0]  # type: ignore[index]


def statuses(conn: Conn, run_ids: list[int]) -> dict[str, int]:
    query = "select status, count(*) from pgqrs.runs where run_id = any(%s) group by 1"
    return dict(conn.execute(query, (run_ids,)).fetchall())


def trigger(conn: Conn, n: int) -> list[int]:
    return [one(conn, "select run_id from pgqrs.trigger('deploy', '{}')") for _ in range(n)]


def emit_all(conn: Conn, run_ids: list[int]) -> None:
    for run_id in run_ids:
        conn.execute("select pgqrs.emit_event(%s, '{}')", (f"go:{run_id}",))


@pytest.fixture
def procs(db: str, conn: Conn, tmp_path: Path) -> Any:
    conn.execute(SIDE_TABLE)
    conn.execute("select pgqrs.create_workflow('deploy', '{\"max_attempts\": 1}')")
    workers = WorkerProcs(HERE / "versions_worker.py", db, tmp_path)
    yield workers
    workers.close()


def test_a_rolling_deploy_finishes_old_runs_on_old_code(procs: WorkerProcs, conn: Conn) -> None:
    old, _ = procs.start("old", "v1")
    first = trigger(conn, 10)
    wait_for("10 v1 runs waiting", lambda: statuses(conn, first) == {"WAITING": 10})
    versions = one(conn, "select array_agg(distinct version) from pgqrs.runs where run_id = any(%s)", first)
    assert versions == ["v1"], "the first worker to take a run gave it its version"

    procs.start("new", "v2")  # the deploy: v2 comes up beside v1
    emit_all(conn, first)
    wait_for("the v1 runs finished", lambda: statuses(conn, first) == {"SUCCESS": 10})
    outputs = conn.execute("select output from pgqrs.runs where run_id = any(%s)", (first,)).fetchall()
    assert all(o == {"fetch": "v1", "charge": "v1"} for (o,) in outputs), "every v1 run finished on v1 code"

    old.send_signal(signal.SIGTERM)  # v1 leaves; new runs go to v2 alone
    assert old.wait(30) == 0
    second = trigger(conn, 10)
    wait_for("10 v2 runs waiting", lambda: statuses(conn, second) == {"WAITING": 10})
    emit_all(conn, second)
    wait_for("the v2 runs finished", lambda: statuses(conn, second) == {"SUCCESS": 10})
    outputs = conn.execute("select output from pgqrs.runs where run_id = any(%s)", (second,)).fetchall()
    assert all(o == {"load": "v2", "charge": "v2"} for (o,) in outputs)

    by_version = conn.execute(
        "select e.version, r.version, count(*) from executions as e join pgqrs.runs as r using (run_id)"
        " group by 1, 2 order by 1"
    ).fetchall()
    assert by_version == [("v1", "v1", 20), ("v2", "v2", 20)], "no step body ran on another version's code"
    assert one(conn, "select count(*) from pgqrs.runs where error ->> 'kind' = 'replay_drift'") == 0


def test_a_run_left_on_a_version_no_worker_serves_is_moved_on_purpose(procs: WorkerProcs, conn: Conn) -> None:
    """v1 workers are gone with a v1 run still waiting: a v2 worker leaves it (queue_version_stats shows it)
    until set_run_version moves it, the operator asserting that v2 replays what v1 recorded."""
    old, _ = procs.start("old", "v1")
    [run_id] = trigger(conn, 1)
    wait_for("the run waiting", lambda: statuses(conn, [run_id]) == {"WAITING": 1})
    old.send_signal(signal.SIGTERM)
    assert old.wait(30) == 0
    procs.start("new", "v2")
    emit_all(conn, [run_id])
    wait_for("the run queued", lambda: statuses(conn, [run_id]) == {"QUEUED": 1})
    time.sleep(1.0)  # the v2 worker was woken by the emit: give it the chance to take the run it must not
    rows = conn.execute("select version, ready from pgqrs.queue_version_stats where queue = 'deploy'")
    assert rows.fetchall() == [("v1", 1)]
    assert one(conn, "select count(*) from executions where version = 'v2'") == 0, "v2 left the v1 run alone"

    # v2 renamed the first step, so moving the run means v2 drifts on replay: the engine says so, not silently
    assert one(conn, "select pgqrs.set_run_version(%s, 'v2')", run_id) == "v1"
    wait_for("the run ended", lambda: statuses(conn, [run_id]) == {"ERROR": 1})
    assert one(conn, "select error ->> 'kind' from pgqrs.runs where run_id = %s", run_id) == "replay_drift"


async def _decorated_versions(db: str) -> dict[str, Any]:
    store = await pgqrs.connect(db)
    try:
        await store.create_workflow("vwf")

        @pgqrs.workflow(name="vwf", version="2024-06-01")
        async def v1(ctx: pgqrs.WorkflowContext, params: Any) -> str:
            return await ctx.step("a", lambda: "one")

        pinned = await pgqrs.workflow("vwf").trigger({}).version("2024-07-01").execute(store)
        fresh = await store.trigger("vwf", {})
        worker = await pgqrs.consumer("vw", None, "vwf").handler(v1).create(store)
        got = [m.run_id for m in await worker.dequeue(10)]
        return {
            "worker_version": worker.version,
            "got": got,
            "fresh": (await pgqrs.run().status(fresh).store(store).get()).version,
            "pinned": (await pgqrs.run().status(pinned).store(store).get()).version,
            "pinned_id": pinned.id,
            "fresh_id": fresh.id,
            "moved_from": await store.set_run_version(pinned, "2024-06-01"),
            "then": [m.run_id for m in await worker.dequeue(10)],
        }
    finally:
        await store.close()


def test_a_decorated_workflow_serves_its_version(db: str) -> None:
    seen = asyncio.run(_decorated_versions(db))
    assert seen["worker_version"] == "2024-06-01"
    assert seen["got"] == [seen["fresh_id"]], "the run pinned to another version is not taken"
    assert seen["fresh"] == "2024-06-01", "the fresh run got the worker's version"
    assert seen["pinned"] == "2024-07-01"
    assert seen["moved_from"] == "2024-07-01"
    assert seen["then"] == [seen["pinned_id"]], "moved, it is taken"


def test_a_bad_version_is_refused_and_changes_nothing(db: str, conn: Conn) -> None:
    async def scenario() -> None:
        store = await pgqrs.connect(db)
        try:
            await store.create_workflow("vbad")
            for bad in ("", "v 1", "x" * 129, ".v1"):
                with pytest.raises(pgqrs.InvalidArgument):
                    pgqrs.consumer("vb", None, "vbad").version(bad)
                with pytest.raises(pgqrs.InvalidArgument):
                    await store.trigger("vbad", {}, version=bad)
        finally:
            await store.close()

    asyncio.run(scenario())
    assert one(conn, "select count(*) from pgqrs.runs") == 0


def test_the_cli_shows_and_moves_versions(db: str, conn: Conn) -> None:
    conn.execute("select pgqrs.create_workflow('vcli')")
    pinned = cli("trigger", "vcli", "--version", "v1", dsn=db)
    assert pinned.returncode == 0, pinned.stderr
    run_a = int(pinned.stdout)
    run_b = one(conn, "select run_id from pgqrs.trigger('vcli', '{}')")
    versions = cli("versions", "--json", dsn=db)
    assert versions.returncode == 0, versions.stderr
    assert [(r["version"], r["depth"]) for r in json.loads(versions.stdout)] == [(None, 1), ("v1", 1)]
    listed = cli("runs", "--version", "v1", "--json", dsn=db)
    assert [r["run_id"] for r in json.loads(listed.stdout)] == [run_a]

    moved = cli("set-version", "v2", str(run_a), str(run_b), dsn=db)
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout == f"run {run_a}: version v1 -> v2\nrun {run_b}: version (none) -> v2\n"
    shown = cli("run", str(run_a), dsn=db)
    assert "version:      v2" in shown.stdout

    # all or nothing: one bad run leaves the others where they were
    conn.execute("select pgqrs.cancel_run(%s)", (run_b,))
    refused = cli("set-version", "v3", str(run_a), str(run_b), dsn=db)
    assert refused.returncode != 0 and "CANCELLED" in refused.stderr
    assert one(conn, "select version from pgqrs.runs where run_id = %s", run_a) == "v2"
    for args in (["set-version", str(run_a)], ["set-version", "v4", str(run_a), "--unversioned"],
                 ["set-version", "v 4", str(run_a)]):
        res = cli(*args, dsn=db)
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert one(conn, "select version from pgqrs.runs where run_id = %s", run_a) == "v2"
    back = cli("set-version", "--unversioned", str(run_a), dsn=db)
    assert back.returncode == 0 and back.stdout == f"run {run_a}: version v2 -> (none)\n"


def test_pgqrs_worker_refuses_a_bad_version_before_it_starts(db: str) -> None:
    res = cli("worker", "json:dumps", "--queue", "vq", "--version", "", dsn=db)  # any callable: never run
    assert res.returncode == 2 and "version must be 1-128 letters" in res.stderr, res.stderr
