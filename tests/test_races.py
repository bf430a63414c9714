"""Races between sessions, against the SQL engine alone (DESIGN §4 invariants 2-4).

pgTAP runs in one session and cannot show these; here every party has its own connection (psycopg 3,
autocommit unless a test holds a transaction open on purpose) and, where the order matters, its own thread.
Time is real: leases are a second or less, and every wait polls a condition with a generous deadline instead
of assuming how long the machine takes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from functools import partial
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

pytestmark = pytest.mark.timeout(120)

Conn = psycopg.Connection[tuple[Any, ...]]
DEADLINE = 20.0  # seconds any poll may take before the test fails


# --- helpers ---------------------------------------------------------------------------------------------


def create_workflow(conn: Conn, name: str = "wf", policy: dict[str, Any] | None = None) -> None:
    conn.execute(
        "select pgqrs.create_workflow(p_name => %s, p_retry_policy => %s)",
        (name, Jsonb(policy) if policy is not None else None),
    )


def register(conn: Conn, name: str, queue: str = "wf") -> int:
    row = conn.execute(
        "select pgqrs.register_worker(p_name => %s, p_hostname => 'test', p_queue => %s)", (name, queue)
    ).fetchone()
    assert row is not None
    return int(row[0])


def trigger(conn: Conn, payload: dict[str, Any], key: str | None = None, wf: str = "wf") -> tuple[int, bool]:
    row = conn.execute(
        "select run_id, created from pgqrs.trigger(p_workflow => %s, p_input => %s, p_idempotency_key => %s)",
        (wf, Jsonb(payload), key),
    ).fetchone()
    assert row is not None
    return int(row[0]), bool(row[1])


def dequeue(conn: Conn, worker: int, batch: int = 1, visibility: str = "30 seconds") -> list[dict[str, Any]]:
    cur = conn.execute(
        "select message_id, run_id, attempt, lease_token, steps from pgqrs.dequeue("
        "p_queue => 'wf', p_worker => %s, p_batch_size => %s, p_visibility => %s::interval)",
        (worker, batch, visibility),
    )
    cols = [c.name for c in cur.description or []]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def dequeue_run(conn: Conn, worker: int, run_id: int, visibility: str = "30 seconds") -> dict[str, Any]:
    """Poll dequeue until it delivers `run_id` (e.g. once a lease expired); fail after DEADLINE."""
    end = time.monotonic() + DEADLINE
    while True:
        rows = dequeue(conn, worker, 1, visibility)
        if rows:
            assert rows[0]["run_id"] == run_id, f"delivered {rows[0]['run_id']}, expected {run_id}"
            return rows[0]
        assert time.monotonic() < end, f"run {run_id} was not delivered within {DEADLINE}s"
        time.sleep(0.05)


def sqlstate(fn: Callable[[], object]) -> str | None:
    """Run fn; return the SQLSTATE it raised, or None if it succeeded."""
    try:
        fn()
    except psycopg.Error as e:
        return e.sqlstate
    return None


def sqlstate_of(conn: Conn, query: str, params: tuple[Any, ...] = ()) -> str | None:
    """Execute `query` on `conn`; return the SQLSTATE it raised, or None if it succeeded."""
    return sqlstate(lambda: conn.execute(query, params))


def run_row(conn: Conn, run_id: int) -> tuple[Any, ...]:
    row = conn.execute(
        "select r.status, r.attempt, m.read_count, m.lease_token from pgqrs.runs as r"
        " left join pgqrs.messages as m on m.message_id = r.run_id where r.run_id = %s",
        (run_id,),
    ).fetchone()
    assert row is not None
    return tuple(row)


def wait_until_blocked(observer: Conn, pid: int) -> None:
    """Wait until backend `pid` waits on a lock (so the race really is a race, not a sequence)."""
    end = time.monotonic() + DEADLINE
    while True:
        # pg_stat_activity is a per-transaction snapshot: clear it, the observer may be inside a transaction
        observer.execute("select pg_stat_clear_snapshot()")
        row = observer.execute(
            "select wait_event_type from pg_stat_activity where pid = %s", (pid,)
        ).fetchone()
        if row is not None and row[0] == "Lock":
            return
        assert time.monotonic() < end, f"backend {pid} never blocked on a lock"
        time.sleep(0.02)


def in_parallel(*fns: Callable[[], Any]) -> list[Any]:
    """Start all fns at once (behind a barrier) in their own threads; return their results in order."""
    barrier = threading.Barrier(len(fns))

    def go(fn: Callable[[], Any]) -> Any:
        barrier.wait(timeout=DEADLINE)
        return fn()

    with ThreadPoolExecutor(max_workers=len(fns)) as pool:
        futures = [pool.submit(go, fn) for fn in fns]
        return [f.result(timeout=DEADLINE * 3) for f in futures]


@pytest.fixture
def connect(db: str) -> Iterator[Callable[[], Conn]]:
    """Open more autocommit sessions on the test database (closed at the end)."""
    with ExitStack() as stack:

        def _connect() -> Conn:
            return stack.enter_context(psycopg.connect(db, autocommit=True))

        yield _connect


# --- dequeue ---------------------------------------------------------------------------------------------


def test_two_dequeuers_never_get_the_same_message(conn: Conn, conn2: Conn) -> None:
    create_workflow(conn)
    w1, w2 = register(conn, "w1"), register(conn, "w2")
    rows = conn.execute(
        "select run_id from pgqrs.trigger_batch('wf', (select jsonb_agg(jsonb_build_object('n', i))"
        " from generate_series(1, 200) as i))"
    ).fetchall()
    all_ids = {r[0] for r in rows}
    assert len(all_ids) == 200

    def drain(c: Conn, worker: int) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            batch = dequeue(c, worker, 7, "5 minutes")
            got += batch
            if not batch:
                # empty can mean "the other session holds the rest locked": stop only when nothing is ready
                ready = c.execute("select ready from pgqrs.queue_stats where queue = 'wf'").fetchone()
                if ready == (0,):
                    return got
        raise AssertionError("queue not drained in time")

    got1, got2 = in_parallel(lambda: drain(conn, w1), lambda: drain(conn2, w2))
    ids1, ids2 = [r["run_id"] for r in got1], [r["run_id"] for r in got2]

    assert len(ids1) == len(set(ids1)) and len(ids2) == len(set(ids2)), "a session got a message twice"
    assert not set(ids1) & set(ids2), "both sessions got the same message"
    assert set(ids1) | set(ids2) == all_ids, "some message was never delivered"
    tokens = [r["lease_token"] for r in got1 + got2]
    assert len(set(tokens)) == 200
    # the database agrees: every run delivered exactly once, to the session that reported it
    delivered = conn.execute(
        "select count(*) filter (where r.attempt = 1 and m.read_count = 1), count(*)"
        " from pgqrs.runs as r join pgqrs.messages as m on m.message_id = r.run_id"
    ).fetchone()
    assert delivered == (200, 200)
    owners: dict[int, int] = dict(conn.execute("select message_id, worker_id from pgqrs.messages").fetchall())
    assert all(owners[i] == w1 for i in ids1) and all(owners[i] == w2 for i in ids2)


def test_expired_lease_goes_to_second_worker_with_the_recorded_steps(conn: Conn, conn2: Conn) -> None:
    create_workflow(conn)
    w1, w2 = register(conn, "w1"), register(conn, "w2")
    run_id, _ = trigger(conn, {"bucket": "b"})

    first = dequeue(conn, w1, 1, "2 seconds")[0]
    for step, value in (("list", ["a.txt", "b.txt"]), ("zip", {"size": 42})):
        assert conn.execute(
            "select status from pgqrs.acquire_step(%s, %s, %s)", (run_id, step, first["lease_token"])
        ).fetchone() == ("EXECUTE",)
        assert conn.execute(
            "select pgqrs.complete_step(%s, %s, %s, %s)", (run_id, step, first["lease_token"], Jsonb(value))
        ).fetchone() == (True,)
    # worker 1 "crashes" after starting a third step
    conn.execute("select * from pgqrs.acquire_step(%s, 'upload', %s)", (run_id, first["lease_token"]))

    # no reclaim: the lease expiring is enough for worker 2 to get the run
    second = dequeue_run(conn2, w2, run_id, "30 seconds")
    assert second["attempt"] == 2
    assert second["lease_token"] != first["lease_token"]
    assert second["steps"]["list"]["status"] == "SUCCESS"
    assert second["steps"]["list"]["value"] == ["a.txt", "b.txt"]
    assert second["steps"]["zip"]["value"] == {"size": 42}
    assert second["steps"]["upload"]["status"] == "RUNNING"  # read with the lease, before the lost attempt
    # is settled (the step is ERROR in the database now: see test_hostile.py and pgTAP dequeue_lost_*)
    # it continues after the last recorded step: replays, then re-executes the unfinished one
    token = second["lease_token"]
    assert conn2.execute(
        "select status, value from pgqrs.acquire_step(%s, 'zip', %s)", (run_id, token)
    ).fetchone() == (
        "SKIPPED",
        {"size": 42},
    )
    assert conn2.execute(
        "select status, attempt from pgqrs.acquire_step(%s, 'upload', %s)", (run_id, token)
    ).fetchone() == (
        "EXECUTE",
        2,
    )


def test_write_in_flight_at_lease_expiry_is_seen_by_the_next_holder(conn: Conn, conn2: Conn) -> None:
    """A worker writing under its lease holds the message row: a dequeue passes the run by until that write
    commits, and the next holder then finds the write in its journal (sql/leases/lease.sql, lock order)."""
    create_workflow(conn)
    w1, w2 = register(conn, "w1"), register(conn, "w2")
    run_id, _ = trigger(conn, {})
    lease = dequeue(conn, w1, 1, "1 second")[0]

    with conn.transaction():
        assert conn.execute(
            "select pgqrs.complete_step(%s, 'pay', %s, '\"paid\"')", (run_id, lease["lease_token"])
        ).fetchone() == (True,)
        # let the lease expire while the write is still uncommitted
        conn.execute("select pg_sleep(1.2)")
        assert dequeue(conn2, w2, 1) == [], "dequeue must pass by a run whose holder is mid-write"
    taken = dequeue_run(conn2, w2, run_id)
    pay = taken["steps"]["pay"]
    assert isinstance(pay.pop("order"), int)  # its recorded order, for the replay's drift check
    assert pay == {"status": "SUCCESS", "value": "paid", "attempt": 1, "retry_at": None}


def test_stale_worker_complete_step_after_takeover_is_refused(conn: Conn, conn2: Conn) -> None:
    create_workflow(conn)
    w1, w2 = register(conn, "w1"), register(conn, "w2")
    run_id, _ = trigger(conn, {})
    stale = dequeue(conn, w1, 1, "1 second")[0]
    conn.execute("select * from pgqrs.acquire_step(%s, 'charge', %s)", (run_id, stale["lease_token"]))

    fresh = dequeue_run(conn2, w2, run_id)  # after the stale worker's lease expired

    for call, args in (
        ("select pgqrs.complete_step(%s, 'charge', %s, '\"stale\"')", (run_id, stale["lease_token"])),
        ("select pgqrs.complete_run(%s, %s, '\"stale\"')", (run_id, stale["lease_token"])),
        ("select * from pgqrs.fail_step(%s, 'charge', %s, '{}')", (run_id, stale["lease_token"])),
    ):
        assert sqlstate_of(conn, call, args) == "QR004", call
    assert conn.execute(
        "select status, value, attempt from pgqrs.steps where run_id = %s and step_id = 'charge'", (run_id,)
    ).fetchone() == ("ERROR", None, 1), "the stale value must not be stored (the lost lease failed attempt 1)"

    token = fresh["lease_token"]
    assert conn2.execute(
        "select status, attempt from pgqrs.acquire_step(%s, 'charge', %s)", (run_id, token)
    ).fetchone() == (
        "EXECUTE",
        2,
    )
    assert conn2.execute(
        "select pgqrs.complete_step(%s, 'charge', %s, '\"fresh\"')", (run_id, token)
    ).fetchone() == (True,)
    assert conn2.execute("select pgqrs.complete_run(%s, %s, '\"done\"')", (run_id, token)).fetchone() == (
        "SUCCESS",
    )
    assert (
        sqlstate(
            lambda: conn.execute(
                "select pgqrs.complete_step(%s, 'charge', %s, '\"stale\"')", (run_id, stale["lease_token"])
            )
        )
        == "QR003"
    )
    assert conn.execute(
        "select value from pgqrs.steps where run_id = %s and step_id = 'charge'", (run_id,)
    ).fetchone() == ("fresh",)


# --- trigger ---------------------------------------------------------------------------------------------


def test_concurrent_triggers_with_one_key_create_one_run(conn: Conn, conn2: Conn) -> None:
    """Deterministic interleaving: A's trigger is uncommitted while B's blocks on the key; A commits."""
    create_workflow(conn)
    with ThreadPoolExecutor(max_workers=1) as pool:
        with conn.transaction():
            run_a, created_a = trigger(conn, {"order": 7}, key="order-7")
            b = pool.submit(trigger, conn2, {"order": 7}, "order-7")
            wait_until_blocked(conn, conn2.info.backend_pid)
            assert not b.done()
        run_b, created_b = b.result(timeout=DEADLINE)
    assert (created_a, created_b) == (True, False)
    assert run_b == run_a
    assert conn.execute("select count(*) from pgqrs.runs").fetchone() == (1,)
    assert conn.execute("select count(*) from pgqrs.messages").fetchone() == (1,)


def test_trigger_blocked_on_a_rolled_back_key_creates_the_run(conn: Conn, conn2: Conn) -> None:
    create_workflow(conn)
    with ThreadPoolExecutor(max_workers=1) as pool:
        conn.execute("begin")
        run_a, _ = trigger(conn, {"order": 8}, key="order-8")
        b = pool.submit(trigger, conn2, {"order": 8}, "order-8")
        wait_until_blocked(conn, conn2.info.backend_pid)
        conn.execute("rollback")
        run_b, created_b = b.result(timeout=DEADLINE)
    assert created_b is True and run_b != run_a
    assert conn.execute("select run_id from pgqrs.runs").fetchall() == [(run_b,)]


def test_many_concurrent_triggers_with_one_key(connect: Callable[[], Conn]) -> None:
    sessions = [connect() for _ in range(8)]
    create_workflow(sessions[0])
    results = in_parallel(*(lambda c=c: trigger(c, {"order": 9}, key="order-9") for c in sessions))
    assert sorted(created for _, created in results) == [False] * 7 + [True]
    assert len({run for run, _ in results}) == 1
    assert sessions[0].execute("select count(*) from pgqrs.runs").fetchone() == (1,)


# --- pause / resume --------------------------------------------------------------------------------------


def test_resume_racing_a_pause_timeout_delivers_the_run_exactly_once(
    conn: Conn, connect: Callable[[], Conn]
) -> None:
    create_workflow(conn)
    w = register(conn, "w1")
    resumer, dequeuer = connect(), connect()
    outcomes: list[tuple[str | None, int]] = []

    for i in range(12):  # one run per round, so every dequeue below can only see this run
        run_id, _ = trigger(conn, {"n": i})
        lease = dequeue_run(conn, w, run_id)
        assert conn.execute(
            "select status from pgqrs.pause_step(%s, 'approval', %s, '200 milliseconds')",
            (run_id, lease["lease_token"]),
        ).fetchone() == ("PAUSED",)
        time.sleep(0.25)  # the timeout has passed: the run is due for redelivery and still PAUSED

        resume_state, delivered = in_parallel(
            partial(sqlstate_of, resumer, "select pgqrs.resume_run(%s)", (run_id,)),
            lambda: len(dequeue(dequeuer, w, 5)),
        )
        # whoever lost, the run must now be deliverable at most once more in total
        later = len(dequeue(conn, w, 5))
        outcomes.append((resume_state, delivered + later))
        assert resume_state in (None, "QR003"), resume_state
        assert delivered + later == 1, f"run {run_id} delivered {delivered + later} times after the pause"
        status, attempt, read_count, token = run_row(conn, run_id)
        assert (status, attempt, read_count) == ("RUNNING", 2, 2)
        assert token is not None
        assert conn.execute(
            "select count(*) from pgqrs.messages where message_id = %s and lease_token is not null"
            " and visible_at > pgqrs.now()",
            (run_id,),
        ).fetchone() == (1,), "exactly one live lease"
        # close the run so the next round's dequeues see only the next run
        conn.execute("select pgqrs.complete_run(%s, %s, 'null')", (run_id, token))
    # with the run due, a resume may still win the race (then the dequeue delivers it after): both orders
    # are fine
    assert {s for s, _ in outcomes} <= {None, "QR003"}


def test_resume_blocked_behind_a_delivering_dequeue_is_refused(conn: Conn, conn2: Conn) -> None:
    """Deterministic: the dequeue that redelivers a timed-out pause holds the message row; resume_run waits
    for it and then finds the run RUNNING (QR003) instead of queueing it a second time."""
    create_workflow(conn)
    w = register(conn, "w1")
    run_id, _ = trigger(conn, {})
    lease = dequeue(conn, w)[0]
    conn.execute(
        "select * from pgqrs.pause_step(%s, 'approval', %s, '100 milliseconds')",
        (run_id, lease["lease_token"]),
    )
    time.sleep(0.2)
    with ThreadPoolExecutor(max_workers=1) as pool:
        with conn.transaction():
            assert [r["run_id"] for r in dequeue(conn, w)] == [run_id]
            resumed = pool.submit(sqlstate, lambda: conn2.execute("select pgqrs.resume_run(%s)", (run_id,)))
            wait_until_blocked(conn, conn2.info.backend_pid)
        assert resumed.result(timeout=DEADLINE) == "QR003"
    assert run_row(conn, run_id)[:3] == ("RUNNING", 2, 2)
    assert dequeue(conn2, w) == []


# --- retry_run -------------------------------------------------------------------------------------------


def _failed_run(conn: Conn, w: int) -> int:
    run_id, _ = trigger(conn, {})
    lease = dequeue_run(conn, w, run_id)
    conn.execute("select pgqrs.complete_step(%s, 'one', %s, '1')", (run_id, lease["lease_token"]))
    conn.execute(
        "select * from pgqrs.fail_step(%s, 'two', %s, '{\"msg\": \"boom\"}', p_transient => false)",
        (run_id, lease["lease_token"]),
    )
    assert run_row(conn, run_id)[0] == "ERROR"
    return run_id


def test_two_concurrent_retry_runs_exactly_one_wins(conn: Conn, conn2: Conn) -> None:
    create_workflow(conn)
    w = register(conn, "w1")
    for _ in range(10):
        run_id = _failed_run(conn, w)
        results = in_parallel(
            partial(sqlstate_of, conn, "select pgqrs.retry_run(%s)", (run_id,)),
            partial(sqlstate_of, conn2, "select pgqrs.retry_run(%s)", (run_id,)),
        )
        assert sorted(results, key=str) == [None, "QR003"], results
        assert run_row(conn, run_id)[0] == "QUEUED"
        assert conn.execute(
            "select (select count(*) from pgqrs.messages where message_id = %(r)s),"
            " (select count(*) from pgqrs.messages_archive where message_id = %(r)s),"
            " (select array_agg(step_id) from pgqrs.steps where run_id = %(r)s)",
            {"r": run_id},
        ).fetchone() == (1, 0, ["one"])
        lease = dequeue_run(conn, w, run_id)
        conn.execute("select pgqrs.complete_run(%s, %s, 'null')", (run_id, lease["lease_token"]))


def test_retry_run_blocked_behind_another_is_refused(conn: Conn, conn2: Conn) -> None:
    create_workflow(conn)
    w = register(conn, "w1")
    run_id = _failed_run(conn, w)
    with ThreadPoolExecutor(max_workers=1) as pool:
        with conn.transaction():
            assert conn.execute("select pgqrs.retry_run(%s)", (run_id,)).fetchone() == ("QUEUED",)
            second = pool.submit(sqlstate, lambda: conn2.execute("select pgqrs.retry_run(%s)", (run_id,)))
            wait_until_blocked(conn, conn2.info.backend_pid)
        assert second.result(timeout=DEADLINE) == "QR003"
    assert conn.execute(
        "select count(*) from pgqrs.messages where message_id = %s", (run_id,)
    ).fetchone() == (1,)


def test_a_dequeue_passes_a_message_another_session_is_leasing(conn: Conn, conn2: Conn) -> None:
    """SKIP LOCKED, deterministically: while session A's dequeue (in an open transaction) holds the oldest
    message, session B gets the next one at once instead of waiting for A (a lock wait would hit B's
    lock_timeout, 55P03)."""
    create_workflow(conn)
    worker_a, worker_b = register(conn, "a"), register(conn, "b")
    first, _ = trigger(conn, {"n": 1})
    second, _ = trigger(conn, {"n": 2})
    with conn.transaction():
        [held] = dequeue(conn, worker_a)
        conn2.execute("set lock_timeout = '500ms'")
        [passed] = dequeue(conn2, worker_b)
    assert (held["run_id"], passed["run_id"]) == (first, second)
