"""Dequeue latency against queue depth and history size.

One client calls the package's own dequeue statement (pgqrs._sql.DEQUEUE, prepared, autocommit: exactly what a
worker sends), batch 1, one call at a time, each call leasing one message. Queues are filled with bulk SQL
written straight into the pgqrs tables (setup only), then VACUUM ANALYZE, as autovacuum would do after a bulk
load. States, each measured in `reps` rounds of `calls` dequeues after a short warm-up:

  empty        a fresh queue holding only the messages the rounds lease
  no message   dequeue of an empty queue (what an idle worker's safety-net poll costs)
  1k / 100k / 1M queued      that many messages waiting behind the ones the rounds lease
  1M history   1M finished runs (SUCCESS, archived messages, 3 step rows each) and 1k queued
"""

from __future__ import annotations

import time
from typing import Any

import benchwf
import lib

from pgqrs import _sql

VISIBILITY_S = 3600  # leased messages stay out of the way for the whole measurement

FILL_QUEUED = """
with r as (
    insert into pgqrs.runs (workflow_id, status, input, created_at, updated_at)
    select %(wid)s, 'QUEUED', jsonb_build_object('n', g), now(), now()
    from generate_series(%(lo)s::bigint, %(hi)s::bigint) as g
    returning run_id, created_at
)
insert into pgqrs.messages (message_id, queue_id, visible_at, enqueued_at)
select run_id, %(qid)s, created_at, created_at from r
"""

FILL_HISTORY = """
with r as (
    insert into pgqrs.runs (workflow_id, status, input, output, attempt, created_at, started_at, finished_at,
                            updated_at)
    select %(wid)s, 'SUCCESS', jsonb_build_object('n', g), jsonb_build_object('sum', 3 * g + 3), 1,
           now(), now(), now(), now()
    from generate_series(%(lo)s::bigint, %(hi)s::bigint) as g
    returning run_id, input
), a as (
    insert into pgqrs.messages_archive (message_id, queue_id, outcome, enqueued_at, archived_at, read_count)
    select run_id, %(qid)s, 'SUCCESS', now(), now(), 1 from r
)
insert into pgqrs.steps (run_id, step_id, status, value, attempt, started_at, completed_at, updated_at)
select r.run_id, x.step_id, 'SUCCESS', jsonb_build_object('i', (r.input->>'n')::int + x.k), 1,
       now(), now(), now()
from r cross join (values ('step_a', 0), ('step_b', 1), ('step_c', 2)) as x (step_id, k)
"""


def _ids(conn: Any) -> tuple[int, int]:
    row = conn.execute("select q.workflow_id, q.queue_id from pgqrs.queues q where q.name = %s",
                       (benchwf.WF,)).fetchone()
    return int(row[0]), int(row[1])


def bulk(conn: Any, sql: str, first: int, count: int, chunk: int = 250_000) -> float:
    """Insert `count` rows with `sql` in chunks (each its own transaction); seconds taken."""
    wid, qid = _ids(conn)
    t0 = time.perf_counter()
    for lo in range(first, first + count, chunk):
        hi = min(first + count, lo + chunk) - 1
        conn.execute(sql, {"wid": wid, "qid": qid, "lo": lo, "hi": hi})
    conn.execute("vacuum analyze pgqrs.runs, pgqrs.messages, pgqrs.messages_archive, pgqrs.steps")
    return time.perf_counter() - t0


def _server_ms() -> tuple[float, float]:
    """(calls, total execution ms) of the dequeue statement so far, from pg_stat_statements."""
    if not lib.PGSS:
        return 0.0, 0.0
    with lib.admin() as c:
        row = c.execute("""select coalesce(sum(calls), 0), coalesce(sum(total_exec_time), 0)
            from pg_stat_statements where toplevel and query like '%%pgqrs.dequeue(%%'""").fetchone()
    return float(row[0]), float(row[1])


def measure(db_dsn: str, worker_id: int, calls: int, warmup: int = 20) -> dict[str, float]:
    """`calls` dequeues (after `warmup`); per-call client latency in ms, how many returned a message, and the
    mean server-side execution time (pg_stat_statements: executor time, without the commit's WAL flush)."""
    with lib.connect(db_dsn) as conn:
        conn.prepare_threshold = 0
        lat = []
        got = 0
        for i in range(warmup + calls):
            t0 = time.perf_counter()
            rows = conn.execute(_sql.DEQUEUE, (benchwf.WF, worker_id, 1, VISIBILITY_S)).fetchall()
            dt = time.perf_counter() - t0
            if i >= warmup:
                lat.append(1000 * dt)
                got += len(rows)
            if i == warmup - 1:
                c0, ms0 = _server_ms()
    c1, ms1 = _server_ms()
    return {"p50_ms": lib.percentile(lat, 50), "p99_ms": lib.percentile(lat, 99),
            "mean_ms": sum(lat) / len(lat), "hit_ratio": got / calls,
            "server_mean_ms": (ms1 - ms0) / (c1 - c0) if c1 > c0 else float("nan")}


def run(reps: int, calls: int, depths: list[int], history: int, log: Any = print) -> dict[str, Any]:
    """Returns {state: [per-round result, ...], "fill_s": {...}}."""
    per_state = reps * (calls + 20)
    out: dict[str, Any] = {"fill_s": {}}

    db = "bench_depth"
    db_dsn = lib.recreate_db(db)
    benchwf.install(db_dsn)
    with lib.connect(db_dsn) as conn:
        worker_id = lib.scalar(conn, "select pgqrs.register_worker(p_name => 'depth', p_queue => %s)",
                               (benchwf.WF,))
        out["fill_s"]["empty"] = bulk(conn, FILL_QUEUED, 0, per_state)
    lib.checkpoint()
    out["empty"] = [measure(db_dsn, worker_id, calls) for _ in range(reps)]
    out["no message"] = [measure(db_dsn, worker_id, calls) for _ in range(reps)]
    log(f"depth: empty {out['empty'][0]['p50_ms']:.3f} ms, "
        f"no message {out['no message'][0]['p50_ms']:.3f} ms")
    queued = 0
    next_n = per_state
    for depth in sorted(depths):
        add = depth + per_state - queued
        with lib.connect(db_dsn) as conn:
            out["fill_s"][str(depth)] = bulk(conn, FILL_QUEUED, next_n, add)
        next_n += add
        lib.checkpoint()
        key = f"{depth} queued"
        out[key] = [measure(db_dsn, worker_id, calls) for _ in range(reps)]
        queued = depth
        log(f"depth: {key} {out[key][0]['p50_ms']:.3f} ms (fill {out['fill_s'][str(depth)]:.1f} s)")
    lib.drop_db(db)

    if history:
        db = "bench_history"
        db_dsn = lib.recreate_db(db)
        benchwf.install(db_dsn)
        with lib.connect(db_dsn) as conn:
            worker_id = lib.scalar(conn, "select pgqrs.register_worker(p_name => 'depth', p_queue => %s)",
                                   (benchwf.WF,))
            out["fill_s"]["history"] = bulk(conn, FILL_HISTORY, 0, history)
            bulk(conn, FILL_QUEUED, history, 1000 + per_state)
        lib.checkpoint()
        key = f"{history} history"
        out[key] = [measure(db_dsn, worker_id, calls) for _ in range(reps)]
        log(f"depth: {key} {out[key][0]['p50_ms']:.3f} ms (fill {out['fill_s']['history']:.1f} s)")
        lib.drop_db(db)
    return out
