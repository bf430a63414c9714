"""Schedules (docs/schedules.md) through real worker processes and the Python and CLI surfaces. The cron
arithmetic and the firing rules are pinned by pgTAP (pgtap/schedules/) on the engine clock; here the clock is
the real one, and ticks are made due by moving a schedule's next fire into the past."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

import pgqrs
import pgqrs.sync
from test_cli import assert_one_line_error, ok_json
from test_cli import pgqrs as pgqrs_cli
from test_worker import SIDE_TABLE, Workers

SCHEDULES = 12
MISSED = 30  # minutes of ticks due when the workers start


@pytest.fixture
def workers(db: str, tmp_path: Path) -> Iterator[Workers]:
    """Worker processes of tests/worker_proc.py (workflow `probe`), killed at the end."""
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(SIDE_TABLE)
    w = Workers(db, tmp_path)
    yield w
    w.close()


def test_four_workers_start_each_due_tick_exactly_once(
    workers: Workers, conn: psycopg.Connection[Any]
) -> None:
    """4 worker processes of workflow `probe`, each firing every 0.1 s, and schedules of a workflow none of
    them runs (`ticks`, made from SQL only) whose last 30 minutes of ticks become due at once: every due tick
    gets exactly one run, none is missed, the workers report each run once and log no failed call."""
    for n in range(4):
        workers.start(f"fire-{n}", "--schedule-interval", "0.1")
    conn.execute("select pgqrs.create_workflow('ticks')")
    for i in range(SCHEDULES):
        conn.execute("select pgqrs.create_schedule(%s, 'ticks', '* * * * *', %s::jsonb, 'UTC', 'all')",
                     (f"s{i}", f'{{"i": {i}}}'))
    # as if no worker had run for half an hour: the ticks of the last MISSED minutes are due, all at once
    due_until = conn.execute(
        "update pgqrs.schedule_defs set next_fire_at = date_trunc('minute', now()) - %s * interval '1 minute'"
        " returning date_trunc('minute', now())", (MISSED - 1,)).fetchone()[0]  # type: ignore[index]
    deadline = time.monotonic() + 30
    while conn.execute("select count(*) from pgqrs.schedule_defs where next_fire_at <= %s",
                       (due_until,)).fetchone()[0] and time.monotonic() < deadline:  # type: ignore[index]
        time.sleep(0.1)
    time.sleep(1.0)  # the workers keep firing: nothing more may start for these ticks
    keys = [k for (k,) in conn.execute(
        "select r.idempotency_key from pgqrs.runs as r join pgqrs.workflows as w using (workflow_id)"
        " where w.name = 'ticks'").fetchall()]
    expected = {int((due_until - timedelta(minutes=m)).timestamp()) for m in range(MISSED)}
    ticks: dict[str, list[int]] = {}
    for key in keys:
        _, schedule_id, epoch = key.split(":")
        ticks.setdefault(schedule_id, []).append(int(epoch))
    assert len(ticks) == SCHEDULES
    for schedule_id, epochs in ticks.items():
        assert len(epochs) == len(set(epochs)), f"schedule {schedule_id}: a tick started twice"
        assert expected <= set(epochs), f"schedule {schedule_id}: missed {sorted(expected - set(epochs))}"
        # a minute boundary may have passed meanwhile: its tick is fired too, once
        assert all(e <= max(expected) + 60 for e in epochs), epochs
    logs = "".join(path.read_text() for path in workers.logs.values())
    assert "firing schedules failed" not in logs, logs
    assert logs.count(" started run ") == len(keys), "a worker reported a run it did not start"


def test_store_schedule_calls_and_errors(db: str) -> None:
    async def scenario() -> None:
        async with await pgqrs.connect(db) as store:
            await store.create_workflow("report")
            nxt = await store.create_schedule("nightly", "report", "30 2 * * *", {"kind": "daily"},
                                              timezone="Europe/Berlin")
            local = nxt.astimezone(pgqrs_zone("Europe/Berlin"))
            assert (local.hour, local.minute) == (2, 30) or local.hour == 3, local  # 03:30 on a DST day
            assert nxt > datetime.now(UTC) and nxt - datetime.now(UTC) <= timedelta(days=1, hours=1)
            [row] = await store.schedules()
            assert (row.name, row.workflow, row.cron, row.timezone, row.catch_up, row.enabled, row.input) == (
                "nightly", "report", "30 2 * * *", "Europe/Berlin", "latest", True, {"kind": "daily"})
            assert await store.fire_schedules() == []  # not due
            assert await store.set_schedule_enabled("nightly", False) is True
            assert (await store.schedules())[0].next_fire_at is None
            assert await store.set_schedule_enabled("nope", True) is False
            with pytest.raises(pgqrs.InvalidArgument, match='day-of-week field "MON-XYZ"'):
                await store.create_schedule("bad", "report", "0 9 * * MON-XYZ")
            with pytest.raises(pgqrs.InvalidArgument, match="unknown time zone: Moon/Base"):
                await store.create_schedule("bad", "report", "0 9 * * *", timezone="Moon/Base")
            with pytest.raises(pgqrs.UnknownWorkflow):
                await store.create_schedule("bad", "nope", "0 9 * * *")
            assert await store.drop_schedule("nightly") is True
            assert await store.drop_schedule("nightly") is False
            assert await store.schedules() == []

    asyncio.run(scenario())


def pgqrs_zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def test_sync_store_fires_a_due_schedule(db: str, conn: psycopg.Connection[Any]) -> None:
    with pgqrs.sync.connect(db) as store:
        store.create_workflow("report")
        store.create_schedule("every-minute", "report", "* * * * *", catch_up="all")
        conn.execute("update pgqrs.schedule_defs set next_fire_at = date_trunc('minute', now())"
                     " - interval '2 minutes'")
        started = store.fire_schedules()
        assert [s.schedule for s in started] == ["every-minute"] * 3
        assert len({s.run_id for s in started}) == 3
        assert store.fire_schedules() == []
        [row] = store.schedules()
        assert row.last_run_id == started[-1].run_id and row.last_run_status == "QUEUED"


def test_cli_schedule_add_list_disable_rm(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("select pgqrs.create_workflow('report')")
    added = ok_json("schedule", "add", "weekdays", "report", "0 9 * * MON-FRI", "--timezone",
                    "America/New_York", "--input", '{"to": "ops"}', "--catch-up", "all", dsn=db)
    assert added["name"] == "weekdays" and added["next_fire_at"]
    [row] = ok_json("schedule", "list", dsn=db)
    assert (row["workflow"], row["cron"], row["catch_up"], row["input"]) == (
        "report", "0 9 * * MON-FRI", "all", {"to": "ops"})
    assert ok_json("schedule", "disable", "weekdays", dsn=db) == {"name": "weekdays", "disabled": True}
    listed = pgqrs_cli("schedule", "list", dsn=db)
    assert listed.returncode == 0 and "weekdays" in listed.stdout and "False" in listed.stdout
    assert_one_line_error(pgqrs_cli("schedule", "add", "x", "report", "0 9 * *", dsn=db), 2,
                          "it has 4 fields, not 5")
    assert pgqrs_cli("schedule", "rm", "weekdays", dsn=db).returncode == 0
    assert_one_line_error(pgqrs_cli("schedule", "rm", "weekdays", dsn=db), 1, "no schedule named weekdays")
    assert ok_json("schedule", "list", dsn=db) == []
