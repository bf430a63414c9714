"""The partitioned history (sql/retention/partitions.sql, drop_partitions.sql; docs/operations.md,
"Retention"): what takes two sessions or a worker process. A purge never waits for a lock to drop a partition:
with the tables in use it deletes in batches and drops the partition once free; a running worker makes the
partitions ahead on its own."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
import pytest

import pgqrs
from pgqrs import sync as pgqrs_sync
from pgqrs.errors import InvalidArgument
from test_retention import count, finished_runs

pytestmark = pytest.mark.timeout(120)


def small_partitions(db: str, width: int) -> None:
    """A fresh database's (empty) ranged partitions replaced by partitions of `width` run ids from id 1."""
    with psycopg.connect(db, autocommit=True) as conn:
        for (first,) in conn.execute("select first_id from pgqrs._history_partitions()").fetchall():
            conn.execute(f"drop table pgqrs.runs_from_{first}, pgqrs.steps_from_{first},"
                         f" pgqrs.messages_archive_from_{first}")
        assert conn.execute("select pgqrs.maintain_history(%s)", (width,)).fetchone() == (2,)


def partitions(db: str) -> list[tuple[int, int]]:
    with psycopg.connect(db) as conn:
        return [(a, b) for a, b in conn.execute("select first_id, end_id from pgqrs._history_partitions()")]


def test_a_drop_is_skipped_while_the_tables_are_in_use_and_done_once_free(db: str) -> None:
    small_partitions(db, 3)
    finished_runs(db, "old", 3, "2020-01-01 00:00:00+00")  # run ids 1-3: the first partition, full
    assert partitions(db)[0] == (1, 4)
    with psycopg.connect(db) as reader:  # a transaction that read the runs: holds a lock until it ends
        assert reader.execute("select count(*) from pgqrs.runs").fetchone() == (3,)
        with psycopg.connect(db, autocommit=True) as purger:
            t0 = time.monotonic()
            assert purger.execute("select pgqrs.purge_runs('7 days')").fetchone() == (3,)
            waited = time.monotonic() - t0
            # the drop gave up after its 100 ms lock timeout; the batches deleted the runs meanwhile
            assert waited < 2, waited
            assert partitions(db)[0] == (1, 4), "dropped while in use"
            assert count(db, "select count(*) from pgqrs.runs") == 0
        reader.rollback()
    with psycopg.connect(db, autocommit=True) as purger:
        # nothing left to delete: the emptied old partition is dropped
        assert purger.execute("select pgqrs.purge_runs('7 days')").fetchone() == (0,)
    assert partitions(db)[0] == (4, 7)
    with psycopg.connect(db) as conn:
        gone = "select to_regclass('pgqrs.steps_from_1'), to_regclass('pgqrs.messages_archive_from_1')"
        assert conn.execute(gone).fetchone() == (None, None)


def test_making_a_partition_never_waits_for_a_busy_table(db: str) -> None:
    small_partitions(db, 2)
    finished_runs(db, "busy", 3, "2020-01-01 00:00:00+00")  # ids 1-3: one partition ahead is left
    with psycopg.connect(db) as reader:  # a transaction that read the runs: holds a lock until it ends
        reader.execute("select count(*) from pgqrs.runs").fetchone()
        with psycopg.connect(db, autocommit=True) as maker:
            t0 = time.monotonic()
            assert maker.execute("select pgqrs.maintain_history()").fetchone() == (0,)
            assert time.monotonic() - t0 < 2  # gave up after its 100 ms lock timeout
        reader.rollback()
    assert len(partitions(db)) == 2
    with psycopg.connect(db, autocommit=True) as maker:
        assert maker.execute("select pgqrs.maintain_history()").fetchone() == (1,)
    assert len(partitions(db)) == 3


def test_a_running_worker_makes_the_partitions_ahead(db: str) -> None:
    small_partitions(db, 2)
    finished_runs(db, "busy", 3, "2020-01-01 00:00:00+00")  # ids 1-3: one partition ahead is left

    async def worker() -> None:
        async with await pgqrs.connect(db) as store:
            async def noop(ctx: Any, params: Any) -> None:
                return None

            consumer = await (
                pgqrs.consumer("keeper", None, "busy").handler(noop).schedule_interval(0.2).create(store)
            )
            polling = asyncio.create_task(consumer.poll_forever())
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len(partitions(db)) < 3:
                await asyncio.sleep(0.2)
            consumer.stop()
            await polling

    asyncio.run(worker())
    # the new partition takes the minimum width: a quiet database gets large ones
    assert partitions(db) == [(1, 3), (3, 5), (5, 1000005)]


def test_store_maintain_history_checks_the_width(db: str) -> None:
    async def calls() -> int:
        async with await pgqrs.connect(db) as store:
            with pytest.raises(InvalidArgument):
                await store.maintain_history(0)
            return await store.maintain_history()

    assert asyncio.run(calls()) == 0  # a fresh install has its two partitions
    with pgqrs_sync.connect(db) as store:
        assert store.maintain_history(10**6) == 0
