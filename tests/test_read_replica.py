"""Reads from a replica (issue 22): `pgqrs.connect(dsn, read_dsn=...)` and `pgqrs --read-dsn`, the staleness
rule, and the DSNs that must be refused.

One asynchronous primary/standby pair (scripts/ha.sh) for the module. A test that needs the replica behind
pauses its WAL replay (pg_wal_replay_pause: it goes on receiving, and applies nothing) and resumes it after.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

import pgqrs
import pgqrs.sync as pgqrs_sync
from ha_pair import Pair
from worker_procs import wait_for

pytestmark = pytest.mark.ha


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    pair = Pair(synchronous=False)
    pair.prefix += "-reads"
    pair.primary, pair.standby = f"{pair.prefix}-primary", f"{pair.prefix}-standby"
    pair.start()
    try:
        with psycopg.connect(pair.host_dsn(pair.primary, "postgres"), autocommit=True) as conn:
            conn.execute("create database pgqrs_ha")
        pgqrs.install(pair.dsn())
        with pgqrs_sync.connect(pair.dsn()) as store:
            store.create_workflow("reads")
        yield pair
    finally:
        pair.stop()


@pytest.fixture
def replica_paused(pair: Pair) -> Iterator[Any]:
    """A function that pauses the standby's replay (after it has replayed everything so far); resumed after
    the test."""
    standby = pair.host_dsn(pair.standby)

    def pause() -> None:
        caught_up(pair)
        with psycopg.connect(standby, autocommit=True) as conn:
            conn.execute("select pg_wal_replay_pause()")

    yield pause
    with psycopg.connect(standby, autocommit=True) as conn:
        conn.execute("select pg_wal_replay_resume()")


def caught_up(pair: Pair) -> None:
    """Wait until the standby has replayed all the primary has written."""
    with psycopg.connect(pair.host_dsn(pair.primary), autocommit=True) as conn:
        lsn = conn.execute("select pg_current_wal_lsn()").fetchone()[0]  # type: ignore[index]
    with psycopg.connect(pair.host_dsn(pair.standby), autocommit=True) as conn:
        wait_for("the standby to replay", lambda: conn.execute(
            "select pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[0], timeout=30)  # type: ignore[index]


def finish(dsn: str, run_id: int, output: Any) -> None:
    """Deliver run `run_id` (the next of queue `reads`) and complete it with `output`, on the primary."""
    with pgqrs_sync.connect(dsn) as store:
        consumer = pgqrs_sync.consumer("reads-worker", None, "reads").create(store)
        [message] = consumer.dequeue()
        assert message.id == run_id
        pgqrs_sync.run().message(message).store(store).execute().complete(output)


def test_a_standby_given_as_the_write_dsn_is_refused(pair: Pair) -> None:
    for dsn in (pair.host_dsn(pair.standby), f"{pair.host_dsn(pair.standby)} target_session_attrs=any"):
        with pytest.raises(pgqrs.NotPrimary, match="reached a standby") as refused:
            pgqrs_sync.connect(dsn)
        assert "target_session_attrs=read-write" in (refused.value.hint or "")
        with pytest.raises(pgqrs.NotPrimary):
            asyncio.run(pgqrs.connect(dsn))
    # the CLI: a worker does not start, a write names the cause
    cli = [sys.executable, "-m", "pgqrs", "--dsn", pair.host_dsn(pair.standby)]
    done = subprocess.run([*cli, "worker", "tests.ha_worker:ha", "--queue", "reads"], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 1 and "reached a standby" in done.stderr, done.stderr
    done = subprocess.run([*cli, "trigger", "reads"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "the server is read-only, a standby?" in done.stderr, done.stderr


@pytest.mark.parametrize("staleness", [-1, float("nan"), 86401, True, "5"])
def test_a_bad_max_staleness_is_refused_before_connecting(staleness: Any) -> None:
    with pytest.raises(pgqrs.InvalidArgument, match="max_staleness must be from 0 to 86400 seconds"):
        pgqrs_sync.connect("host=/nonexistent", read_dsn="host=/nonexistent", max_staleness=staleness)
    with pytest.raises(pgqrs.InvalidArgument):
        asyncio.run(pgqrs.connect("host=/nonexistent", read_dsn="host=/nonexistent", max_staleness=staleness))


def test_a_dsn_whose_hosts_are_all_standbys_fails_at_once(pair: Pair) -> None:
    standbys = f"host={pair.standby},{pair.standby} port=5432,5432 user=postgres dbname=pgqrs_ha " \
               "target_session_attrs=read-write"
    started = time.monotonic()
    with pytest.raises(psycopg.OperationalError, match="read-only"):
        pgqrs_sync.connect(standbys)
    assert time.monotonic() - started < 5


def test_get_reads_the_replica_and_never_an_older_state_than_seen(pair: Pair, replica_paused: Any) -> None:
    other = pgqrs_sync.connect(pair.dsn())  # a client that is not the store under test
    store = pgqrs_sync.connect(pair.dsn(), read_dsn=pair.host_dsn(pair.standby), max_staleness=60)
    try:
        seen, mine = other.trigger("reads", {"n": 1}), other.trigger("reads", {"n": 2})
        replica_paused()
        # a run the replica has not replayed: read from the primary
        fresh = store.trigger("reads", {"n": 3})
        assert pgqrs_sync.run().status(fresh).store(store).get().status == "QUEUED"
        # changed by someone else after the replica stopped: the replica's older state, which this store
        # has not seen newer of, is what get() returns (proof that it reads the replica)
        other.cancel_run(seen)
        assert pgqrs_sync.run().status(seen).store(store).get().status == "QUEUED"
        # once this store has seen the newer state (on the primary), never the older one again
        store.replica.max_staleness = 0.0  # type: ignore[union-attr]
        assert pgqrs_sync.run().status(seen).store(store).get().status == "CANCELLED"
        store.replica.max_staleness = 60.0  # type: ignore[union-attr]
        assert pgqrs_sync.run().status(seen).store(store).get().status == "CANCELLED"
        # a run this store changed itself is read from the primary
        store.cancel_run(mine)
        assert pgqrs_sync.run().status(mine).store(store).get().status == "CANCELLED"
    finally:
        store.close()
        other.close()


def test_a_replica_lagging_past_max_staleness_is_not_read(pair: Pair, replica_paused: Any) -> None:
    with pgqrs_sync.connect(pair.dsn(), read_dsn=pair.host_dsn(pair.standby), max_staleness=0.3) as store, \
            pgqrs_sync.connect(pair.dsn()) as other:
        run = other.trigger("reads", {"n": 4})
        replica_paused()
        other.cancel_run(run)
        other.trigger("reads", {"n": 5})  # a transaction the replica has not replayed: it lags from now on
        time.sleep(0.5)
        assert pgqrs_sync.run().status(run).store(store).get().status == "CANCELLED"


@pytest.mark.parametrize("flavour", ["async", "sync"])
def test_result_on_a_replica_falls_back_to_the_primary_past_max_staleness(
        pair: Pair, replica_paused: Any, flavour: str) -> None:
    """The notification comes from the primary, the replica does not show the run finished: result() reads
    the replica again (and keeps waiting) while the replica lags less than max_staleness, then the primary."""
    with pgqrs_sync.connect(pair.dsn()) as other:
        while other_run := _next_queued(pair):  # an earlier test's runs: out of the queue's way
            other.cancel_run(other_run)
        run_id = other.trigger("reads", {"n": 6}).id
    replica_paused()
    read_dsn = pair.host_dsn(pair.standby)

    async def wait_async(staleness: float, timeout: float) -> Any:
        async with await pgqrs.connect(pair.dsn(), read_dsn=read_dsn, max_staleness=staleness) as store:
            return await pgqrs.run().status(run_id).store(store).result(timeout=timeout)

    def wait_sync(staleness: float, timeout: float) -> Any:
        with pgqrs_sync.connect(pair.dsn(), read_dsn=read_dsn, max_staleness=staleness) as store:
            return pgqrs_sync.run().status(run_id).store(store).result(timeout=timeout)

    def wait(staleness: float, timeout: float) -> Any:
        if flavour == "async":
            return asyncio.run(wait_async(staleness, timeout))
        return wait_sync(staleness, timeout)

    finish(pair.dsn(), run_id, {"done": 6})
    with pytest.raises(pgqrs.ResultTimeout):  # staleness of a minute allowed: the replica has it unfinished
        wait(60.0, 1.5)
    started = time.monotonic()
    assert wait(1.0, 30) == {"done": 6}  # the replica lags more than 1 s by now: the primary
    assert time.monotonic() - started < 1.0


def test_result_on_a_replica_that_keeps_up(pair: Pair) -> None:
    with pgqrs_sync.connect(pair.dsn(), read_dsn=pair.host_dsn(pair.standby)) as store:
        while other_run := _next_queued(pair):
            store.cancel_run(other_run)
        run_id = store.trigger("reads", {"n": 7}).id
        threading.Timer(0.3, finish, (pair.dsn(), run_id, {"done": 7})).start()
        started = time.monotonic()
        assert pgqrs_sync.run().status(run_id).store(store).result(timeout=30) == {"done": 7}
        assert time.monotonic() - started < 2.0  # woken by NOTIFY, read on the replica once it replayed


def _next_queued(pair: Pair) -> int | None:
    with psycopg.connect(pair.host_dsn(pair.primary)) as conn:
        row = conn.execute("select run_id from pgqrs.runs where status = 'QUEUED' order by run_id"
                           " limit 1").fetchone()
    return row[0] if row else None


def test_the_cli_reads_the_replica_with_read_dsn(pair: Pair, replica_paused: Any) -> None:
    cli = [sys.executable, "-m", "pgqrs", "--dsn", pair.dsn(), "--read-dsn", pair.host_dsn(pair.standby),
           "--json"]

    def pgqrs_cli(*args: str) -> Any:
        done = subprocess.run([*cli, *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    replica_paused()
    with pgqrs_sync.connect(pair.dsn()) as store:
        run_id = store.trigger("reads", {"n": 8}).id
    # the listing comes from the replica, which has not replayed the trigger
    assert run_id not in [r["run_id"] for r in pgqrs_cli("runs", "--limit", "1000")]
    pgqrs_cli("stats")
    pgqrs_cli("workers")
    pgqrs_cli("schedule", "list")
    # one run the replica does not know: from the primary
    assert pgqrs_cli("run", str(run_id))["run"]["status"] == "QUEUED"
