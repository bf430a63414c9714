"""The journal a dequeue hands out contains every step recorded before it took the lease (issue 13, class 10).

A worker runs every step its journal lacks without asking the engine, so a journal that misses a recorded
step makes a body run again although its success was recorded and acknowledged. dequeue read the journal in
the statement that locks the message, under that statement's snapshot. A `complete_step` of the old holder (a
lease that is just expiring) locks the message row without updating it. When it commits after the dequeue's
snapshot was taken but before the dequeue reaches that row, the dequeue gets the row (a lock-only locker that
committed is no conflict) and hands out a journal without the step.

The window is normally microseconds wide. Here it is held open: 200,000 runs locked by another transaction lie
ahead of the expired one in dequeue order, so the dequeue (SKIP LOCKED) spends ~0.1 s passing them after its
snapshot. The old holder A keeps a 60 s lease by the real clock; the new holder B moves its clock 2 minutes
ahead (`pgqrs.now`, as tests/chaos's race scenario does), so for B the lease has expired: a takeover.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest

pytestmark = pytest.mark.timeout(120)

AHEAD = 200_000  # locked runs the dequeue passes after its snapshot
DEQUEUE = (
    "select run_id, lease_token, steps from pgqrs.dequeue(p_queue => 'jq', p_worker => %s, p_batch_size => 1,"
    " p_visibility => interval '60 seconds')"
)


def _wait(cond: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.002)


def test_a_step_recorded_while_a_dequeue_passes_locked_runs_is_in_its_journal(db: str) -> None:
    with (
        psycopg.connect(db, autocommit=True) as admin,
        psycopg.connect(db, autocommit=True, application_name="jq-a") as a,
        psycopg.connect(db, autocommit=True, application_name="jq-b") as b,
        psycopg.connect(db) as holder,
    ):
        admin.execute("select pgqrs.create_workflow('jq')")
        wa, wb = (
            admin.execute("select pgqrs.register_worker(%s, 'h', null, 'jq')", (n,)).fetchone()[0]  # type: ignore[index]
            for n in ("a", "b")
        )
        run = admin.execute("select run_id from pgqrs.trigger('jq', '{}'::jsonb)").fetchone()[0]  # type: ignore[index]
        [(got, token_a, _steps)] = a.execute(DEQUEUE, (wa,)).fetchall()
        assert got == run
        # queued now, so ahead of A's run (visible again only when its lease ends) in dequeue order
        admin.execute(
            # (straight into the tables: pgqrs.trigger would take ten times as long)
            "with r as ("
            " insert into pgqrs.runs (workflow_id, status, input)"
            " select w.workflow_id, 'QUEUED', '{}' from pgqrs.workflows as w, generate_series(1, %s)"
            " where w.name = 'jq' returning run_id)"
            " insert into pgqrs.messages (message_id, queue_id, visible_at)"
            " select r.run_id, q.queue_id, now() from r, pgqrs.queues as q where q.name = 'jq'",
            (AHEAD,),
        )
        holder.execute("select 1 from pgqrs.messages where message_id <> %s for update", (run,)).fetchall()
        b.execute("select set_config('pgqrs.now', (now() + interval '2 minutes')::text, false)")

        out: dict[str, Any] = {}
        dequeuer = threading.Thread(target=lambda: out.update(rows=b.execute(DEQUEUE, (wb,)).fetchall()))
        dequeuer.start()
        _wait(
            lambda: admin.execute(
                "select exists (select from pg_stat_activity where application_name = 'jq-b'"
                " and state = 'active' and query like '%%dequeue%%')"
            ).fetchone()[0],  # type: ignore[index]
            "B's dequeue to start",
        )
        time.sleep(0.02)  # B has its snapshot and is passing the locked runs
        recorded = a.execute(
            "select pgqrs.complete_step(%s, 's1', %s, '1'::jsonb)", (run, token_a)
        ).fetchone()[0]  # type: ignore[index]
        dequeuer.join(30)
        holder.rollback()

    assert recorded is True, "A's lease was still valid: its step is recorded (and acknowledged)"
    [(taken, _token_b, journal)] = out["rows"]
    assert taken == run, "B took the run over after A's write"
    assert journal.get("s1", {}).get("status") == "SUCCESS", (
        f"B's journal {journal} lacks step s1, recorded and acknowledged before B took the lease: "
        "B would run its body again"
    )
