"""Dequeue latency against queue depth and history size, for `make bench`.

Built on bench/dequeue.py (issue 2's check, 1k vs 1M): its bulk fill (runs + messages straight into the pgqrs
tables, then VACUUM ANALYZE as autovacuum would after a bulk load) and its measurement (one client, the
prepared `pgqrs.dequeue` statement, each call in `begin ... rollback` so every call sees the same queue; the
time is the round trip, without a commit). Here in more states, each measured in `reps` rounds of `calls`:

  empty       a queue holding only the one message each call leases (and rolls back)
  1k / 100k / 1M queued
  1M history  1M finished runs (SUCCESS, archived messages, 3 step rows each) and 1k queued
  no message  a queue with nothing visible (what an idle worker's safety-net poll costs)

plus, at the deepest backlog, EXPLAIN (ANALYZE, BUFFERS) of dequeue's select and the plan PL/pgSQL really
runs inside pgqrs.dequeue (auto_explain), from dequeue.py.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import dequeue
import lib

import pgqrs

FILL_HISTORY = """
with r as (
    insert into pgqrs.runs (workflow_id, status, input, output, attempt, created_at, started_at, finished_at,
                            updated_at)
    select %(wid)s, 'SUCCESS', jsonb_build_object('n', g), jsonb_build_object('sum', 3 * g + 3), 1,
           now() - interval '2 days', now() - interval '2 days', now() - interval '2 days', now()
    from generate_series(%(lo)s::bigint, %(hi)s::bigint) as g
    returning run_id, input
), a as (
    insert into pgqrs.messages_archive (message_id, queue_id, outcome, enqueued_at, archived_at, read_count)
    select run_id, %(qid)s, 'SUCCESS', now() - interval '2 days', now(), 1 from r
)
insert into pgqrs.steps (run_id, step_id, status, value, attempt, started_at, completed_at, updated_at)
select r.run_id, x.step_id, 'SUCCESS', jsonb_build_object('i', (r.input->>'n')::int + x.k), 1,
       now(), now(), now()
from r cross join (values ('step_a', 0), ('step_b', 1), ('step_c', 2)) as x (step_id, k)
"""


def _setup(db: str) -> tuple[str, int, int, int]:
    db_dsn = lib.recreate_db(db)
    pgqrs.install(db_dsn)
    with lib.connect(db_dsn) as conn:
        wid = lib.scalar(conn, "select workflow_id from pgqrs.create_workflow(p_name => %s)", (dequeue.WF,))
        qid = lib.scalar(conn, "select queue_id from pgqrs.queues where name = %s", (dequeue.WF,))
        worker = lib.scalar(conn, "select pgqrs.register_worker(p_name => 'depth', p_queue => %s)",
                            (dequeue.WF,))
    return db_dsn, wid, qid, worker


def _rounds(db_dsn: str, worker: int, reps: int, calls: int) -> list[dict[str, float]]:
    out = []
    with lib.connect(db_dsn) as conn:
        for _ in range(reps):
            ms = dequeue.measure(conn, worker, 1, calls)
            out.append({"p50_ms": statistics.median(ms), "p99_ms": lib.percentile(ms, 99)})
            conn.execute("vacuum pgqrs.messages")  # the rolled-back leases leave dead index entries
    return out


def _idle_rounds(db_dsn: str, worker: int, reps: int, calls: int) -> list[dict[str, float]]:
    out = []
    with lib.connect(db_dsn) as conn:
        for _ in range(reps):
            ms = []
            for i in range(20 + calls):
                t0 = time.perf_counter()
                rows = conn.execute(dequeue.DEQUEUE, (dequeue.WF, worker, 1, dequeue.VISIBILITY),
                                    prepare=True).fetchall()
                if i >= 20:
                    ms.append(1000 * (time.perf_counter() - t0))
                assert not rows
            out.append({"p50_ms": statistics.median(ms), "p99_ms": lib.percentile(ms, 99)})
    return out


def run(reps: int, calls: int, depths: list[int], history: int, log: Any = print) -> dict[str, Any]:
    """{state: [per-round {p50_ms, p99_ms}], "fill_s": {state: seconds}, "plans": {...}}."""
    out: dict[str, Any] = {"fill_s": {}}
    db_dsn, wid, qid, worker = _setup("bench_depth")
    with lib.connect(db_dsn) as conn:
        out["no message"] = _idle_rounds(db_dsn, worker, reps, calls)
        t0 = time.perf_counter()
        dequeue.fill(conn, wid, qid, 1)
        out["fill_s"]["empty"] = time.perf_counter() - t0
        lib.checkpoint()
        out["empty"] = _rounds(db_dsn, worker, reps, calls)
        log(f"depth: empty {out['empty'][0]['p50_ms']:.3f} ms, "
            f"no message {out['no message'][0]['p50_ms']:.3f} ms")
        have = 1
        for d in sorted(depths):
            t0 = time.perf_counter()
            dequeue.fill(conn, wid, qid, d - have)
            out["fill_s"][f"{d} queued"] = time.perf_counter() - t0
            have = d
            lib.checkpoint()
            out[f"{d} queued"] = _rounds(db_dsn, worker, reps, calls)
            log(f"depth: {d} queued {out[f'{d} queued'][0]['p50_ms']:.3f} ms "
                f"(fill {out['fill_s'][f'{d} queued']:.0f} s)")
        out["plans"] = {"explain_inner_select": dequeue.explain(conn, qid),
                        "inside_dequeue": dequeue.plan_inside_dequeue(conn, worker)}
    lib.drop_db("bench_depth")

    if history:
        db_dsn, wid, qid, worker = _setup("bench_history")
        with lib.connect(db_dsn) as conn:
            t0 = time.perf_counter()
            chunk = 250_000
            for lo in range(0, history, chunk):
                hi = min(history, lo + chunk) - 1
                conn.execute("select pgqrs.maintain_history()")  # the partitions workers keep ahead
                conn.execute(FILL_HISTORY, {"wid": wid, "qid": qid, "lo": lo, "hi": hi})
            conn.execute("vacuum analyze pgqrs.runs, pgqrs.messages_archive, pgqrs.steps")
            dequeue.fill(conn, wid, qid, 1000)
            out["fill_s"][f"{history} history"] = time.perf_counter() - t0
        lib.checkpoint()
        out[f"{history} history"] = _rounds(db_dsn, worker, reps, calls)
        log(f"depth: {history} history {out[f'{history} history'][0]['p50_ms']:.3f} ms "
            f"(fill {out['fill_s'][f'{history} history']:.0f} s)")
        lib.drop_db("bench_history")
    return out
