"""result() waiters and the NOTIFY channels (issue 13, classes 6 and 8), with real connections and processes.

- Waiting costs no pooled connection (one listener per store): 1,000 waiters on one default store all get
  their results while a worker process drains their runs, and triggers on that store stay fast; the README's
  pattern (a worker and result() on one store) serves 10 requests at once; a waiter survives its listener's
  backend being terminated, and a run whose notification never came is still seen (the 5 s re-check).
- The channels are public (any login may LISTEN and NOTIFY): a login with no pgqrs role cannot switch a
  worker's timed wake-ups off with garbage on the queue's channel, and learns neither run ids nor outcomes
  from pgqrs_runs.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

import pgqrs
import pgqrs.sync as pgqrs_sync
from pgqrs.results import run_token
from worker_procs import start_ready

WORKER = Path(__file__).with_name("worker_proc.py")
OUTSIDER = f"pgqrs_t_outsider_{os.getpid()}"


def sql_one(dsn: str, query: str, params: Any = ()) -> Any:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(query, params).fetchone()
        assert row is not None
        return row


def start_worker(dsn: str, tmp: Path, concurrency: int = 8) -> subprocess.Popen[str]:
    argv = [sys.executable, str(WORKER), dsn, f"w-{os.getpid()}", "--concurrency", str(concurrency)]
    return start_ready(argv, tmp / "worker.log")[0]


def stop_worker(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def finish_by_hand(dsn: str, run_id: int, output: str = '{"by": "hand"}') -> None:
    """Lease and complete one run as a worker would (complete_run sends the notification)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        worker = conn.execute("select pgqrs.register_worker('by-hand', 'h', null, 'probe')").fetchone()
        assert worker is not None
        row = conn.execute("select run_id, lease_token from pgqrs.dequeue('probe', %s)",
                           (worker[0],)).fetchone()
        assert row is not None and row[0] == run_id, row
        conn.execute("select pgqrs.complete_run(%s, %s, %s::jsonb)", (run_id, row[1], output))


# ---- class 6: result() waiters hold no pooled connection ------------------------------------------------


def test_a_thousand_waiters_on_one_default_store_get_their_results(db: str, tmp_path: Path) -> None:
    waiters_n = 1000

    async def scenario() -> None:
        async with await pgqrs.connect(db) as store:  # the default pool: max_size 10
            await store.create_workflow("probe")
            with psycopg.connect(db, autocommit=True) as conn:
                run_ids = [r[0] for r in conn.execute(
                    "select (pgqrs.trigger('probe', '{}')).run_id from generate_series(1, %s)", (waiters_n,))]
            waiters = [asyncio.create_task(pgqrs.run().status(r).store(store).result(timeout=120))
                       for r in run_ids]
            await asyncio.sleep(1.0)  # every waiter registered and made its first check
            assert not any(w.done() for w in waiters)

            # nothing drains yet: every waiter waits, and the store still serves a trigger at once
            started = time.monotonic()
            extra = await asyncio.wait_for(store.trigger("probe", {}), 10)
            assert time.monotonic() - started < 5

            worker = start_worker(db, tmp_path)
            try:
                latencies = []
                while not all(w.done() for w in waiters):
                    started = time.monotonic()
                    await asyncio.wait_for(store.trigger("probe", {}), 10)
                    latencies.append(time.monotonic() - started)
                    await asyncio.sleep(0.1)
                results = await asyncio.gather(*waiters)
                assert max(latencies) < 5, latencies
                assert all(r["steps"] == {} for r in results)
                assert await pgqrs.run().status(extra).store(store).result(timeout=30) is not None
            finally:
                stop_worker(worker)

    asyncio.run(scenario())


# The README's example: a worker and result() on one store (default pool, concurrency 1). Ten requests
# arrive while the worker is busy with a run of 1 s; each step takes 0.3 s. (Waiters that held pooled
# connections took all of them here, and the worker could never dequeue again: 0 of 10.)
README_TIMEOUT = 15


def step_seconds(params: dict[str, Any]) -> float:
    return 1.0 if params["n"] < 0 else 0.3


def test_the_readme_pattern_serves_ten_requests_at_once(db: str) -> None:
    async def double(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> dict[str, int]:
        async def body() -> int:
            await asyncio.sleep(step_seconds(params))
            return int(params["n"]) * 2

        return {"n": await ctx.step("double", body)}

    async def request(store: pgqrs.Store, n: int) -> Any:
        handle = await pgqrs.workflow().name("readme").store(store).trigger({"n": n}).execute()
        return await pgqrs.run().status(handle).store(store).result(timeout=README_TIMEOUT)

    async def scenario() -> None:
        async with await pgqrs.connect(db) as store:
            await pgqrs.workflow().name("readme").store(store).create()
            worker = await pgqrs.consumer("readme-w", 8080, "readme").handler(double).create(store)
            polling = asyncio.create_task(worker.poll_forever())
            try:
                busy = await store.trigger("readme", {"n": -1})
                while (await pgqrs.run().status(busy).store(store).get()).status != "RUNNING":
                    await asyncio.sleep(0.01)
                results = await asyncio.gather(*(request(store, n) for n in range(10)),
                                               return_exceptions=True)
            finally:
                worker.stop()
                await polling
            assert results == [{"n": 2 * n} for n in range(10)]

    asyncio.run(scenario())


def test_the_readme_pattern_serves_ten_requests_at_once_sync(db: str) -> None:
    def double(ctx: Any, params: dict[str, Any]) -> dict[str, int]:
        def body() -> int:
            time.sleep(step_seconds(params))
            return int(params["n"]) * 2

        return {"n": ctx.step("double", body)}

    results: dict[int, Any] = {}

    def request(store: pgqrs_sync.Store, n: int) -> None:
        try:
            handle = pgqrs_sync.workflow().name("readme").store(store).trigger({"n": n}).execute()
            results[n] = pgqrs_sync.run().status(handle).store(store).result(timeout=README_TIMEOUT)
        except Exception as exc:  # reported below
            results[n] = exc

    with pgqrs_sync.connect(db) as store:
        pgqrs_sync.workflow().name("readme").store(store).create()
        worker = pgqrs_sync.consumer("readme-w", 8080, "readme").handler(double).create(store)
        polling = threading.Thread(target=worker.poll_forever, daemon=True)
        polling.start()
        clients = [threading.Thread(target=request, args=(store, n)) for n in range(10)]
        try:
            busy = store.trigger("readme", {"n": -1})
            while pgqrs_sync.run().status(busy).store(store).get().status != "RUNNING":
                time.sleep(0.01)
            for c in clients:
                c.start()
            for c in clients:
                c.join(README_TIMEOUT + 15)
        finally:
            worker.stop()
            polling.join(30)
        assert [results.get(n) for n in range(10)] == [{"n": 2 * n} for n in range(10)]


@pytest.mark.parametrize("flavour", ["async", "sync"])
def test_a_waiter_survives_its_listener_being_terminated(db: str, flavour: str) -> None:
    app = f"pgqrs-waiter-{os.getpid()}-{flavour}"
    dsn = make_conninfo(db, application_name=app)
    sql_one(db, "select pgqrs.create_workflow('probe')")
    run_id = sql_one(db, "select run_id from pgqrs.trigger('probe', '{}')")[0]
    outcome: dict[str, Any] = {}

    def wait_sync() -> None:
        with pgqrs_sync.connect(dsn) as store:
            outcome["value"] = pgqrs_sync.run().status(run_id).store(store).result(timeout=30)

    async def wait_async() -> None:
        async with await pgqrs.connect(dsn) as store:
            outcome["value"] = await pgqrs.run().status(run_id).store(store).result(timeout=30)

    waiter = threading.Thread(target=wait_sync if flavour == "sync" else lambda: asyncio.run(wait_async()))
    waiter.start()
    deadline = time.monotonic() + 10
    listening = "select count(*) from pg_stat_activity where application_name = %s and query ilike %s"
    while not sql_one(db, listening, (app, "%unnest%"))[0]:  # the listener's first check is done
        assert time.monotonic() < deadline, "no listener connection"
        time.sleep(0.05)
    killed = sql_one(db, "select count(pg_terminate_backend(pid)) from pg_stat_activity"
                         " where application_name = %s", (app,))[0]
    assert killed >= 1
    finish_by_hand(db, run_id)
    started = time.monotonic()
    waiter.join(30)
    assert outcome.get("value") == {"by": "hand"}
    assert time.monotonic() - started < 4  # the reconnect's check or the notification, not the 5 s re-check


def test_a_run_finished_without_a_notification_is_seen_by_the_recheck(db: str) -> None:
    sql_one(db, "select pgqrs.create_workflow('probe')")
    run_id = sql_one(db, "select run_id from pgqrs.trigger('probe', '{}')")[0]

    async def scenario() -> None:
        async with await pgqrs.connect(db) as store:
            waiter = asyncio.create_task(pgqrs.run().status(run_id).store(store).result(timeout=30))
            await asyncio.sleep(0.5)
            # finished behind the engine's back: no NOTIFY is sent
            with psycopg.connect(db, autocommit=True) as conn:
                conn.execute("update pgqrs.runs set status = 'SUCCESS', output = '7' where run_id = %s",
                             (run_id,))
            assert await asyncio.wait_for(waiter, 8) == 7

    asyncio.run(scenario())


def test_a_finished_run_whose_input_python_cannot_read_does_not_stop_the_other_waiters(db: str) -> None:
    """The listener reads the finished runs' rows (input included); a 3,000-deep input used to raise
    RecursionError out of its loop, over and over: every waiter of the store timed out."""
    sql_one(db, "select pgqrs.create_workflow('probe')")
    deep = "[" * 3000 + "]" * 3000
    poison = sql_one(db, "select run_id from pgqrs.trigger('probe', jsonb_build_object('x', %s::jsonb))",
                     (deep,))[0]
    ordinary = sql_one(db, "select run_id from pgqrs.trigger('probe', '{}')")[0]

    async def scenario() -> list[Any]:
        async with await pgqrs.connect(db) as store:
            waiters = [asyncio.create_task(pgqrs.run().status(r).store(store).result(timeout=10))
                       for r in (poison, ordinary)]
            await asyncio.sleep(0.5)
            finish_by_hand(db, poison, '"first"')
            finish_by_hand(db, ordinary, '"second"')
            return list(await asyncio.gather(*waiters))

    assert asyncio.run(scenario()) == ["first", "second"]


# ---- class 8: the channels are public --------------------------------------------------------------------


@pytest.fixture
def outsider(pg_dsn: str) -> Iterator[str]:
    """A login role with no pgqrs role at all (what any account of the cluster is)."""
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(OUTSIDER)))
        conn.execute(sql.SQL("create role {} login").format(sql.Identifier(OUTSIDER)))
    yield OUTSIDER
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(OUTSIDER)))


GARBAGE = ["nan", "NaN", "inf", "-inf", "1e400", "9" * 400, "0", "-5", "1e15", "not a number", "12:34", " "]


def test_garbage_on_the_queue_channel_does_not_switch_timed_wakeups_off(db: str, outsider: str) -> None:
    async def flaky(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> str:
        if params.get("retry") and ctx.attempt == 1:
            raise pgqrs.TransientError("once", retry_after=1.0)
        return "done"

    async def finished_within(store: pgqrs.Store, run_id: int, seconds: float) -> bool:
        try:
            await pgqrs.run().status(run_id).store(store).result(timeout=seconds)
        except pgqrs.ResultTimeout:
            return False
        return True

    async def scenario() -> None:
        async with await pgqrs.connect(db) as store:
            await store.create_workflow("timed")
            # an idle worker looks only every 30 s: a delayed run is on time only through its notification
            worker = await (pgqrs.consumer("timed-w", None, "timed").handler(flaky).poll_interval(30)
                            .create(store))
            polling = asyncio.create_task(worker.poll_forever())
            try:
                await asyncio.sleep(0.3)
                with psycopg.connect(make_conninfo(db, user=outsider), autocommit=True) as conn:
                    for payload in GARBAGE:
                        conn.execute("select pg_notify(%s, %s)", (worker.channel, payload))
                await asyncio.sleep(0.3)  # delivered to the worker's listener

                delayed = await store.trigger("timed", {}, delay=1.0)
                assert await finished_within(store, delayed, 4), "a delayed start was missed"
                retried = await store.trigger("timed", {"retry": True})
                assert await finished_within(store, retried, 4), "a retry after 1 s was missed"
            finally:
                worker.stop()
                await polling

    asyncio.run(scenario())


def test_a_non_member_listening_on_pgqrs_runs_learns_no_run_ids_nor_outcomes(db: str, outsider: str) -> None:
    sql_one(db, "select pgqrs.create_workflow('probe')")
    finished = {}
    with psycopg.connect(make_conninfo(db, user=outsider), autocommit=True) as spy:
        spy.execute("listen pgqrs_runs")
        with psycopg.connect(db, autocommit=True) as conn:
            worker = conn.execute("select pgqrs.register_worker('w', 'h', null, 'probe')").fetchone()
            assert worker is not None
            for outcome in ("SUCCESS", "ERROR", "SUCCESS", "ERROR"):
                conn.execute("select pgqrs.trigger('probe', '{}')")
                row = conn.execute("select run_id, lease_token from pgqrs.dequeue('probe', %s)",
                                   (worker[0],)).fetchone()
                assert row is not None
                call = "complete_run" if outcome == "SUCCESS" else "fail_run"
                conn.execute(f"select pgqrs.{call}(%s, %s)", row)
                finished[row[0]] = outcome
        payloads = [n.payload for n in spy.notifies(timeout=2, stop_after=len(finished))]

        assert len(payloads) == len(finished)
        for payload in payloads:
            assert "SUCCESS" not in payload and "ERROR" not in payload and ":" not in payload, payload
            assert not any(payload == str(r) or payload.startswith(f"{r}:") for r in finished), payload
            # not a function of the run id alone: without the key nobody can map a payload to a run
            assert all(payload != hashlib.sha256(str(r).encode()).hexdigest()[:16] for r in finished)
        # ... and the key is out of the spy's reach
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            spy.execute("select pgqrs.runs_channel_key()")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            spy.execute("select secret from pgqrs.channel_key")
    # a member can tell: the payloads are the keyed tokens of the runs, in order
    key = bytes(sql_one(db, "select pgqrs.runs_channel_key()")[0])
    assert payloads == [run_token(key, r) for r in finished]
