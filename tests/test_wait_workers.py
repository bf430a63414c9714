"""Durable waits with real worker processes at scale and across SIGKILL (issue 15): 1,000 runs waiting on one
event, a worker killed while its runs wait or while they enter the wait as the event is emitted, and a worker
killed after its recv steps took their messages. Workers are tests/worker_proc.py (its "plan" input) started
through tests/worker_procs.py; every step body records its execution in the side table `executions`.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from test_worker import Workers, executions
from test_worker import workers as workers  # the fixture: real worker processes
from worker_procs import sigkill, wait_for

Conn = psycopg.Connection[Any]


def trigger_many(conn: Conn, inputs: list[dict[str, Any]]) -> list[int]:
    rows = conn.execute("select run_id from pgqrs.trigger_batch('probe', %s)", (Jsonb(inputs),)).fetchall()
    return sorted(r[0] for r in rows)


def count(conn: Conn, query: str, *params: Any) -> int:
    return int(conn.execute(query, params).fetchone()[0])  # type: ignore[index]


def statuses(conn: Conn, run_ids: list[int]) -> dict[str, int]:
    rows = conn.execute(
        "select status, count(*) from pgqrs.runs where run_id = any(%s) group by status", (run_ids,)
    ).fetchall()
    return {status: n for status, n in rows}


def all_succeeded(conn: Conn, run_ids: list[int]) -> bool:
    return statuses(conn, run_ids) == {"SUCCESS": len(run_ids)}


def event_outputs(conn: Conn, run_ids: list[int], key: str) -> dict[int, Any]:
    """run id -> what its handler got from wait_for_event(key), read from the run's output."""
    rows = conn.execute(
        "select run_id, output -> 'steps' -> %s from pgqrs.runs where run_id = any(%s)",
        (f"event:{key}", run_ids),
    ).fetchall()
    return dict(rows)


def executions_per_step(conn: Conn, run_ids: list[int]) -> dict[str, list[int]]:
    """step id -> how many times each run executed it, sorted (a run that never executed it counts 0)."""
    rows = conn.execute(
        "select s.step_id, r.run_id, count(e.run_id) from unnest(%s::bigint[]) as r (run_id)"
        " cross join (select distinct step_id from executions) as s"
        " left join executions as e on e.run_id = r.run_id and e.step_id = s.step_id group by 1, 2",
        (run_ids,),
    ).fetchall()
    per_step: dict[str, list[int]] = {}
    for step_id, _run_id, n in rows:
        per_step.setdefault(step_id, []).append(n)
    return {step_id: sorted(ns) for step_id, ns in per_step.items()}


SLOW_WAITS = """
create function slow_wait() returns trigger language plpgsql
as $$ begin perform pg_sleep(0.2); return new; end $$;
create trigger slow_wait before insert on pgqrs.waits for each row execute function slow_wait()
"""


IN_THE_WINDOW = "select count(*) from pg_stat_activity where wait_event = 'PgSleep'"  # slow_wait's pg_sleep


def emit(db: str, key: str, payload: Any) -> bool:
    with psycopg.connect(db, autocommit=True) as c:
        return bool(c.execute("select pgqrs.emit_event(%s, %s)", (key, Jsonb(payload))).fetchone()[0])  # type: ignore[index]


# ---- many waiters ------------------------------------------------------------------------------------------


def test_a_thousand_runs_waiting_on_one_event_are_all_woken_by_one_emit(
    workers: Workers, conn: Conn, db: str
) -> None:
    """1,000 runs wait on "k" with two worker processes; one emit must wake every one of them. Were the emit
    to wake only some, the others would stay WAITING (no timeout) and the wait for SUCCESS would time out."""
    n = 1000
    run_ids = trigger_many(conn, [{"plan": [["event", "k", None], ["step", "after"]]}] * n)
    started = time.monotonic()
    for name in ("w1", "w2"):
        workers.start(name, "--visibility", "30", "--concurrency", "20")
    wait_for("every run to wait on k",
             lambda: count(conn, "select count(*) from pgqrs.waiting_runs where key = 'k'") == n, timeout=60)
    waited = time.monotonic()
    assert statuses(conn, run_ids) == {"WAITING": n}
    assert count(conn, "select count(*) from pgqrs.messages where lease_token is not null") == 0, (
        "a waiting run holds no lease"
    )
    assert emit(db, "k", {"go": 1})
    wait_for("every run to succeed", lambda: all_succeeded(conn, run_ids), timeout=60)
    done = time.monotonic()
    assert list(event_outputs(conn, run_ids, "k").values()) == [{"go": 1}] * n, "each run got the payload"
    assert executions_per_step(conn, run_ids) == {"after": [1] * n}, "the step after the wait ran once a run"
    assert count(conn, "select count(*) from pgqrs.waits") == 0
    print(f"{n} waiters: all waiting after {waited - started:.1f} s, done {done - waited:.1f} s after emit")


# ---- SIGKILL and event waits -------------------------------------------------------------------------------


def test_sigkill_while_runs_wait_for_an_event_then_the_emit_then_a_new_worker_finishes_each_once(
    workers: Workers, conn: Conn, db: str
) -> None:
    n = 20
    plan = [["step", "before"], ["event", "order", None], ["step", "after"]]
    run_ids = trigger_many(conn, [{"plan": plan}] * n)
    first, _ = workers.start("w1", "--visibility", "5", "--concurrency", "5")
    wait_for("every run to wait", lambda: statuses(conn, run_ids) == {"WAITING": n})
    sigkill(first)
    assert statuses(conn, run_ids) == {"WAITING": n}, "nothing to tell the database: the runs held no lease"
    assert emit(db, "order", {"paid": 7})
    assert statuses(conn, run_ids) == {"QUEUED": n}, "woken with no worker alive: queued, the payload kept"
    second, _ = workers.start("w2", "--visibility", "5", "--concurrency", "5")
    wait_for("every run to succeed", lambda: all_succeeded(conn, run_ids))
    assert list(event_outputs(conn, run_ids, "order").values()) == [{"paid": 7}] * n
    for run_id in run_ids:
        assert executions(conn, run_id) == [("before", first.pid, 1), ("after", second.pid, 2)], run_id
    assert count(conn, "select count(*) from pgqrs.waits") == 0


def test_sigkill_in_a_burst_of_runs_entering_an_event_wait_as_it_is_emitted_gives_each_run_one_outcome(
    workers: Workers, conn: Conn, db: str
) -> None:
    """Two workers take a burst of runs through a step into a wait on "race"; once some wait, the event is
    emitted while one worker is SIGKILLed, at the same moment. Runs that waited are woken by the emit, runs
    that come later see the event at once, the killed worker's runs are taken over when their lease runs out:
    every run ends SUCCESS with the payload, no step that had completed runs again, nothing is left waiting.
    """
    n = 200
    # Each wait sleeps 0.2 s between reading the event (not there yet) and its COMMIT, and the emit is made
    # while one does: without the event key's lock that run would commit WAITING after the emit found no
    # waiter, and wait forever.
    conn.execute(SLOW_WAITS)
    plan = [["step", "before"], ["event", "race", None], ["step", "after"]]
    run_ids = trigger_many(conn, [{"plan": plan, "sleep": {"before": 0.3}, "sleep_attempts": [1]}] * n)
    first, first_id = workers.start("w1", "--visibility", "2", "--concurrency", "10")
    second, _ = workers.start("w2", "--visibility", "2", "--concurrency", "10")
    wait_for("some runs to wait", lambda: count(conn, "select count(*) from pgqrs.waiting_runs") >= 10)
    wait_for("a wait to be between its read and its commit", lambda: count(conn, IN_THE_WINDOW))

    barrier = threading.Barrier(2)
    emitted: list[bool] = []

    def emit_now() -> None:
        barrier.wait()
        emitted.append(emit(db, "race", "paid"))

    thread = threading.Thread(target=emit_now)
    thread.start()
    barrier.wait()
    sigkill(first)
    thread.join()
    completed = conn.execute(  # what had completed by now must never run again
        "select clock_timestamp(), coalesce(array_agg(run_id::text || '/' || step_id), '{}') from pgqrs.steps"
        " where status = 'SUCCESS' and step_id in ('before', 'after')"
    ).fetchone()
    assert completed is not None and emitted == [True]
    held = "select count(*) from pgqrs.messages where worker_id = %s and lease_token is not null"
    in_flight = count(conn, held, first_id)
    assert in_flight > 0, "the killed worker held runs"

    wait_for("every run to succeed", lambda: all_succeeded(conn, run_ids), timeout=60)
    assert list(event_outputs(conn, run_ids, "race").values()) == ["paid"] * n, "one outcome each: the event"
    assert count(conn, "select count(*) from pgqrs.waits") == 0, "nobody waits forever"
    reruns = conn.execute(
        "select run_id, step_id, pid from executions"
        " where at > %s and run_id::text || '/' || step_id = any(%s)",
        completed,
    ).fetchall()
    assert reruns == [], "a step that had completed ran again"
    per_step = executions_per_step(conn, run_ids)
    runs_per_step = per_step["before"] + per_step["after"]
    assert max(runs_per_step) <= 2 and min(runs_per_step) == 1, "twice only if the SIGKILL cut it"
    woken = count(conn, "select count(*) from pgqrs.steps as s, pgqrs.events as e where e.key = 'race'"
                        " and s.step_id = 'wait_for_event' and s.completed_at = e.emitted_at")
    assert 10 <= woken < n, "both outcomes happened: woken by the emit, and the event seen at once"
    assert second.poll() is None
    print(f"{woken} woken by the emit, {n - woken} saw it at once; {in_flight} in flight at the SIGKILL")


# ---- SIGKILL and recv --------------------------------------------------------------------------------------


def test_sigkill_after_recv_steps_took_their_messages_consumes_no_message_twice(
    workers: Workers, conn: Conn, db: str
) -> None:
    """Runs receive two messages each, sent while they run; one worker is SIGKILLed while some of its runs are
    in the step after their first recv (the message consumed, the run leased). The replay must return the
    message that recv step took, not take another: each message is consumed by exactly one recv step."""
    n = 60
    plan = [["recv", "t", None], ["step", "mid"], ["recv", "t", None], ["step", "end"]]
    run_ids = trigger_many(conn, [{"plan": plan, "sleep": {"mid": 0.3}, "sleep_attempts": [1]}] * n)
    first, _ = workers.start("w1", "--visibility", "2", "--concurrency", "10")
    second, _ = workers.start("w2", "--visibility", "2", "--concurrency", "10")

    def send_all(rank: int) -> None:
        with psycopg.connect(db, autocommit=True) as c:
            for run_id in run_ids:
                c.execute("select pgqrs.send(%s, 't', %s)", (run_id, Jsonb(f"{run_id}-{rank}")))

    send_all(1)
    sender = threading.Thread(target=send_all, args=(2,))
    sender.start()  # the second messages race the recv steps: some wait for theirs, some find it there
    mid_by_first = "select count(*) from executions where step_id = 'mid' and pid = %s"
    wait_for("w1 to be in steps after a recv", lambda: count(conn, mid_by_first, first.pid) >= 5)
    sigkill(first)
    sender.join()

    wait_for("every run to succeed", lambda: all_succeeded(conn, run_ids), timeout=60)
    rows = conn.execute("select run_id, output -> 'steps' -> 'recv:t' from pgqrs.runs where run_id = any(%s)",
                        (run_ids,)).fetchall()
    assert rows and all(got == [f"{run_id}-1", f"{run_id}-2"] for run_id, got in rows), rows
    assert conn.execute(
        "select consumed_by, count(*), count(distinct run_id) from pgqrs.run_messages group by 1 order by 1"
    ).fetchall() == [("recv", n, n), ("recv#2", n, n)], "each message consumed by exactly one recv step"
    assert conn.execute(
        "select count(*) from pgqrs.run_messages where payload <> to_jsonb(run_id::text || '-' ||"
        " case consumed_by when 'recv' then 1 else 2 end)"
    ).fetchone() == (0,), "the first message by the first recv, the second by the second"
    # a step of it ran on each: under load the kill may come after every `mid` of w1 ended (then those runs
    # finish their second recv and `end` on w2), so any step counts, not only a `mid` cut by the kill
    taken_over = count(conn, "select count(distinct run_id) from executions"
                             " where pid <> %s and run_id in (select run_id from executions where pid = %s)",
                       first.pid, first.pid)
    assert taken_over > 0, "some runs consumed a message on the killed worker and finished on the other"
    assert second.poll() is None
