"""Group commit (pgqrs/_groupcommit.py): a worker running several runs at once sends the step and run
completions of one moment in one transaction. Each call keeps its fencing, a refused call undoes none of the
others, a caller returns only once its call is committed, and a lost connection hands the runs back."""

from __future__ import annotations

import asyncio
import json
import os
import select
import socket
import tempfile
import threading
import time
from typing import Any

import psycopg
import pytest

import pgqrs
from pgqrs import _sql
from pgqrs import sync as pgqrs_sync
from pgqrs._groupcommit import GroupCommit
from pgqrs.errors import LeaseLost

pytestmark = pytest.mark.timeout(120)


def leased_runs(db: str, n: int) -> list[tuple[int, Any]]:
    """n runs of workflow `gc`, leased to one worker: (run_id, lease_token) each."""
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("select pgqrs.create_workflow('gc')")
        worker = conn.execute("select pgqrs.register_worker('gcw', 'h', 1, 'gc')").fetchone()[0]  # type: ignore[index]
        for i in range(n):
            conn.execute("select pgqrs.trigger('gc', %s)", (json.dumps({"i": i}),))
        return conn.execute(
            "select run_id, lease_token from pgqrs.dequeue('gc', %s, %s)", (worker, n)
        ).fetchall()


def test_calls_of_one_moment_share_a_transaction_and_a_refused_one_undoes_none_of_the_others(db: str) -> None:
    runs = leased_runs(db, 5)
    stolen_run = runs[2][0]

    async def scenario() -> tuple[list[Any], GroupCommit]:
        async with await pgqrs.connect(db) as store:
            group = GroupCommit(store)
            closing = pgqrs._acompat.Event()
            sender = asyncio.create_task(group.loop(closing))
            await asyncio.sleep(0)  # the sender waits for calls
            calls = [
                group.call(
                    _sql.COMPLETE_STEP,
                    (
                        run_id,
                        "s1",
                        token if run_id != stolen_run else "00000000-0000-0000-0000-000000000000",
                        '"v"',
                        None,
                    ),
                )
                for run_id, token in runs
            ]
            outcomes = await asyncio.gather(*calls, return_exceptions=True)
            closing.set()
            await sender
            return outcomes, group

    outcomes, group = asyncio.run(scenario())
    assert (group.batches, group.calls) == (1, 5), "the five calls were not sent as one batch"
    for (run_id, _token), outcome in zip(runs, outcomes, strict=True):
        if run_id == stolen_run:
            assert isinstance(outcome, LeaseLost)
        else:
            assert outcome == [(True,)]
    # committed before the callers returned: another session sees every step but the refused one
    with psycopg.connect(db) as conn:
        recorded = conn.execute("select run_id from pgqrs.steps where step_id = 's1' order by 1").fetchall()
    assert [r for (r,) in recorded] == sorted(run_id for run_id, _ in runs if run_id != stolen_run)


async def _steps(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> dict[str, Any]:
    a = await ctx.step("a", lambda: params["i"])
    b = await ctx.step("b", lambda: a * 2)
    c = await ctx.step("c", lambda: b + 1)
    return {"out": c}


def test_a_worker_at_concurrency_8_merges_its_completions_and_every_run_is_right(db: str) -> None:
    async def scenario() -> tuple[list[pgqrs.RunInfo], GroupCommit]:
        async with await pgqrs.connect(db) as store:
            await store.create_workflow("merge")
            handles = [await pgqrs.workflow("merge").trigger({"i": i}).execute(store) for i in range(200)]
            worker = (
                await pgqrs.consumer("merger", None, "merge").handler(_steps).concurrency(8).create(store)
            )
            polling = asyncio.create_task(worker.poll_forever())
            infos = [await pgqrs.run().status(h).store(store).result(timeout=60) for h in handles]
            worker.stop()
            await polling
            assert worker._group_commit is not None
            finals = [await pgqrs.run().status(h).store(store).get() for h in handles]
            assert [i["out"] for i in infos] == [2 * i + 1 for i in range(200)]
            return finals, worker._group_commit

    finals, group = asyncio.run(scenario())
    assert all(f.status == "SUCCESS" and f.attempt == 1 for f in finals)
    assert group.calls == 200 * 4  # three steps and the completion of each run
    assert group.batches < group.calls, "no two completions ever shared a transaction"


def _xid(db: str) -> int:
    """The next transaction id (taking one: each call counts once)."""
    with psycopg.connect(db, autocommit=True) as conn:
        row = conn.execute("select pg_current_xact_id()::text::bigint").fetchone()
        assert row is not None
        return int(row[0])


def test_a_batch_that_finishes_runs_leases_the_next_ones(db: str) -> None:
    """The runs a worker at concurrency 4 takes after its first dequeue come with the batches that finish
    runs: 40 queued runs drain in no more write transactions than batches, and the first dequeue (with a
    dequeue of its own per freed slot it would be about 10 more)."""

    async def scenario() -> tuple[list[pgqrs.RunInfo], GroupCommit, int]:
        async with await pgqrs.connect(db) as store:
            await store.create_workflow("lease_with")
            builder = pgqrs.consumer("leaser", None, "lease_with").handler(_steps).concurrency(4)
            worker = await builder.create(store)
            polling = asyncio.create_task(worker.poll_forever())
            for _ in range(200):  # its first (empty) dequeue made, its startup writes done
                if worker._poller._conn is not None:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            before = _xid(db)
            with psycopg.connect(db, autocommit=True) as conn:  # all queued at once: one transaction
                ids = [r[0] for r in conn.execute(
                    "select run_id from pgqrs.trigger_batch(p_workflow => 'lease_with',"
                    " p_inputs => %s::jsonb)", (json.dumps([{"i": i} for i in range(40)]),))]
            infos = [await pgqrs.run().status(i).store(store).result(timeout=60) for i in ids]
            used = _xid(db) - before - 2  # the measuring call, the trigger
            worker.stop()
            await polling
            assert worker._group_commit is not None
            assert [i["out"] for i in infos] == [2 * i + 1 for i in range(40)]
            finals = [await pgqrs.run().status(i).store(store).get() for i in ids]
            return finals, worker._group_commit, used

    finals, group, used = asyncio.run(scenario())
    assert all(f.status == "SUCCESS" and f.attempt == 1 for f in finals)
    assert used <= group.batches + 2, (used, group.batches)


def test_a_sender_connection_closed_while_idle_is_replaced_before_the_next_batch(db: str) -> None:
    """The server closes the sender's connection while no batch is on its way (a restart, an operator's
    pg_terminate_backend): the next batch goes out on a new connection and succeeds. Sent on the dead one, it
    failed with GroupCommitLost and its runs went back to the queue, their finished step bodies to run again
    (make chaos: pg_restart, pg_terminate)."""
    runs = leased_runs(db, 2)

    async def scenario() -> list[Any]:
        async with await pgqrs.connect(db) as store:
            group = GroupCommit(store, lanes=1)  # both batches on the same sender
            closing = pgqrs._acompat.Event()
            sender = asyncio.create_task(group.loop(closing))
            await asyncio.sleep(0)
            (run_id, token) = runs[0]
            first = await group.call(_sql.COMPLETE_STEP, (run_id, "s1", token, '"v"', None))
            assert group.lanes[0].conn is not None
            held = group.lanes[0].conn
            with psycopg.connect(db, autocommit=True) as admin:
                admin.execute("select pg_terminate_backend(%s)", (held.info.backend_pid,))
            readable, _, _ = select.select([held.pgconn.socket], [], [], 5)  # the server's goodbye arrived
            assert readable
            (run_id, token) = runs[1]
            second = await group.call(_sql.COMPLETE_STEP, (run_id, "s1", token, '"v"', None))
            closing.set()
            await sender
            return [first, second]

    assert asyncio.run(scenario()) == [[(True,)], [(True,)]]


def test_a_lost_sender_connection_hands_the_runs_back_and_they_finish(
    db: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The sender's backend is terminated while a batch is on its way (held there by a lock on the message
    row of the run whose step starts it all): the completions in it have an unknown outcome, so their runs go
    back to the queue at once (not counted against them) and finish on replay."""
    killed: list[int] = []

    def terminate_when_blocked(locker: psycopg.Connection[Any]) -> None:
        """Terminate the sender's backend once it waits for the lock `locker` holds; then let go."""
        group = worker._group_commit
        with psycopg.connect(db, autocommit=True) as admin:
            for _ in range(1000):
                pids = [lane.conn.info.backend_pid for lane in group.lanes if lane.conn is not None]
                blocked = admin.execute(
                    "select pid from pg_stat_activity where pid = any(%s) and wait_event_type = 'Lock'",
                    (pids,),
                ).fetchone()
                if blocked:
                    admin.execute("select pg_terminate_backend(%s)", blocked)
                    killed.append(blocked[0])
                    break
                time.sleep(0.01)
        locker.rollback()
        locker.close()

    async def killer(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> dict[str, Any]:
        def kill() -> int:
            if not locked:
                locked.append(ctx.run_id)
                locker = psycopg.connect(db)  # a transaction holding the run's message row
                locker.execute("select from pgqrs.messages where message_id = %s for update", (ctx.run_id,))
                threading.Thread(target=terminate_when_blocked, args=(locker,), daemon=True).start()
            return params["i"]

        value = await ctx.step("kill", kill)
        return {"out": await ctx.step("after", lambda: value + 1)}

    async def scenario() -> list[pgqrs.RunInfo]:
        nonlocal worker
        async with await pgqrs.connect(db) as store:
            await store.create_workflow("lost")
            handles = [await pgqrs.workflow("lost").trigger({"i": i}).execute(store) for i in range(20)]
            worker = await pgqrs.consumer("loser", None, "lost").handler(killer).concurrency(4).create(store)
            polling = asyncio.create_task(worker.poll_forever())
            outputs = [await pgqrs.run().status(h).store(store).result(timeout=60) for h in handles]
            worker.stop()
            await polling
            assert outputs == [{"out": i + 1} for i in range(20)]
            return [await pgqrs.run().status(h).store(store).get() for h in handles]

    worker: Any = None
    locked: list[int] = []
    finals = asyncio.run(scenario())
    assert killed, "the sender's connection was never terminated mid-batch"
    assert all(f.status == "SUCCESS" for f in finals)
    assert any(f.attempt == 2 for f in finals), "no run was handed back by the lost connection"
    handed_back = [r.getMessage() for r in caplog.records if "handing it back" in r.getMessage()]
    assert handed_back and all("interrupted by a lost connection" in m for m in handed_back), (
        "a completion of unknown outcome was counted as a failed engine call: " + repr(handed_back)
    )


def test_the_sync_worker_merges_its_completions_too(db: str) -> None:
    def steps(ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
        a = ctx.step("a", lambda: params["i"])
        return {"out": ctx.step("b", lambda: a + 1)}

    with pgqrs_sync.connect(db) as store:
        store.create_workflow("sync_merge")
        handles = [pgqrs_sync.workflow("sync_merge").trigger({"i": i}).execute(store) for i in range(100)]
        worker = pgqrs_sync.consumer("sm", None, "sync_merge").handler(steps).concurrency(8).create(store)
        import threading

        polling = threading.Thread(target=worker.poll_forever)
        polling.start()
        outputs = [pgqrs_sync.run().status(h).store(store).result(timeout=60) for h in handles]
        worker.stop()
        polling.join(30)
    assert outputs == [{"out": i + 1} for i in range(100)]
    group = worker._group_commit
    assert group is not None and group.calls == 300 and group.batches < group.calls


SYNC = b"S\x00\x00\x00\x04"  # the protocol's Sync message: the end of a pipeline's round trip


class CountingRelay:
    """A unix socket in front of the real server that relays every client and keeps what the clients sent."""

    def __init__(self, directory: str, server_socket: str) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(os.path.join(directory, ".s.PGSQL.5498"))
        self.listener.listen(8)
        self.server_socket = server_socket
        self.sent = bytearray()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed: the test is over
                return
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.connect(self.server_socket)
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        try:
            while data := source.recv(65536):
                if from_client:
                    with self.lock:
                        self.sent += data
                sink.sendall(data)
        except OSError:
            pass
        sink.close()

    def syncs(self) -> int:
        with self.lock:
            return self.sent.count(SYNC)


def test_a_batch_is_one_round_trip(db: str) -> None:
    """A batch of five completions sends one Sync, so the worker waits for the server once per batch. It
    used to be wrapped in psycopg's conn.transaction() inside the pipeline, which syncs after BEGIN, after the
    calls and after COMMIT (four Syncs per batch, three more waits for the server than needed)."""
    runs = leased_runs(db, 5)
    params = psycopg.conninfo.conninfo_to_dict(db)
    server_socket = os.path.join(str(params["host"]), f".s.PGSQL.{params.get('port', 5432)}")

    async def batch(group: GroupCommit, step_id: str) -> list[Any]:
        calls = [group.call(_sql.COMPLETE_STEP, (run_id, step_id, token, '"v"', None))
                 for run_id, token in runs]
        return list(await asyncio.gather(*calls))

    async def scenario(dsn: str, relay: CountingRelay) -> tuple[list[Any], int, GroupCommit]:
        async with await pgqrs.connect(dsn) as store:
            group = GroupCommit(store)
            closing = pgqrs._acompat.Event()
            sender = asyncio.create_task(group.loop(closing))
            await asyncio.sleep(0)
            await batch(group, "warm-up")  # opens the sender's connection and prepares the statement
            before = relay.syncs()
            outcomes = await batch(group, "s1")
            syncs = relay.syncs() - before
            closing.set()
            await sender
            return outcomes, syncs, group

    with tempfile.TemporaryDirectory() as directory:
        relay = CountingRelay(directory, server_socket)
        try:
            outcomes, syncs, group = asyncio.run(
                scenario(psycopg.conninfo.make_conninfo(db, host=directory, port=5498), relay))
        finally:
            relay.listener.close()
    assert (group.batches, group.calls) == (2, 10), "the calls were not sent as two batches"
    assert outcomes == [[(True,)]] * 5
    assert syncs == 1


def test_a_batch_held_up_by_a_lock_does_not_hold_up_the_calls_after_it(db: str) -> None:
    """Two senders take turns: while one batch waits (here for a lock another transaction holds on its run's
    message row), a call made meanwhile goes out on the other sender and commits. With one sender it would
    wait for the held-up batch."""
    runs = leased_runs(db, 2)

    async def scenario() -> tuple[list[Any], bool]:
        async with await pgqrs.connect(db) as store:
            group = GroupCommit(store)
            closing = pgqrs._acompat.Event()
            sender = asyncio.create_task(group.loop(closing))
            await asyncio.sleep(0)
            with psycopg.connect(db) as locker:
                (run_id, token) = runs[0]
                locker.execute("select from pgqrs.messages where message_id = %s for update", (run_id,))
                first_call = group.call(_sql.COMPLETE_STEP, (run_id, "s1", token, '"v"', None))
                held_up = asyncio.create_task(first_call)
                await asyncio.sleep(0.2)  # the first batch is on its way, waiting for the lock
                (run_id, token) = runs[1]
                call = group.call(_sql.COMPLETE_STEP, (run_id, "s1", token, '"v"', None))
                second = await asyncio.wait_for(call, 10)
                waited = not held_up.done()
                locker.rollback()
            first = await asyncio.wait_for(held_up, 10)
            closing.set()
            await sender
            return [first, second], waited

    outcomes, waited = asyncio.run(scenario())
    assert outcomes == [[(True,)], [(True,)]]
    assert waited, "the first batch did not wait for the lock"


def test_run_completions_are_never_in_two_batches_on_their_way_at_once(db: str) -> None:
    """A child's completion locks its parent's rows, so two batches finishing children of the same parents in
    opposite orders could deadlock. While a batch that finishes a run is on its way (held up here by a lock on
    that run's message row), a step completion made meanwhile goes out on the other sender, but another run's
    completion waits for the first batch, then goes."""
    runs = leased_runs(db, 3)

    async def scenario() -> tuple[list[Any], bool, bool]:
        async with await pgqrs.connect(db) as store:
            group = GroupCommit(store)
            closing = pgqrs._acompat.Event()
            sender = asyncio.create_task(group.loop(closing))
            await asyncio.sleep(0)
            (a, token_a), (b, token_b), (c, token_c) = runs
            with psycopg.connect(db) as locker:
                locker.execute("select from pgqrs.messages where message_id = %s for update", (a,))
                held_up = asyncio.create_task(group.call(_sql.COMPLETE_RUN, (a, token_a, '"a"')))
                await asyncio.sleep(0.2)  # a's batch is on its way, waiting for the lock
                later = asyncio.create_task(group.call(_sql.COMPLETE_RUN, (c, token_c, '"c"')))
                step_call = group.call(_sql.COMPLETE_STEP, (b, "s1", token_b, '"v"', None))
                step = await asyncio.wait_for(step_call, 10)
                await asyncio.sleep(0.3)
                deferred = not later.done()
                first_waited = not held_up.done()
                locker.rollback()
            outcomes = [await asyncio.wait_for(held_up, 10), step, await asyncio.wait_for(later, 10)]
            closing.set()
            await sender
            return outcomes, deferred, first_waited

    outcomes, deferred, first_waited = asyncio.run(scenario())
    assert outcomes == [[("SUCCESS",)], [(True,)], [("SUCCESS",)]]
    assert first_waited, "the first batch did not wait for the lock"
    assert deferred, "a second run completion went out while the first batch finishing a run was on its way"
