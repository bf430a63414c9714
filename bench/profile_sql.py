#!/usr/bin/env python3
"""Where the server's time goes: CPU of the server backend per engine call, next to the raw-SQL equivalents.

    eval "$(scripts/pg.sh env)"; .venv/bin/python bench/profile_sql.py [--n 2000] [--statements]

Each call is sent N times in a row from one psycopg connection (autocommit, prepared: what a worker sends),
and the backend's CPU time is read from /proc/<pid>/schedstat (nanoseconds on CPU) before and after, so the
figure is the server's own cost of the call, commit included, and hardly moved by other load on the machine
(wall time is printed too). Works in a scratch database `bench_profile` that it drops and recreates.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchwf  # noqa: E402
import lib  # noqa: E402
import rawbound  # noqa: E402

from pgqrs import _sql  # noqa: E402

REPS = 5
BATCH = 100  # runs per trigger_batch call, as in make bench


def pad(sql: str, *args: Any) -> tuple[Any, ...]:
    """Arguments for one of the package's statements; parameters added later get NULL (their default)."""
    return args + (None,) * (sql.count("%s") - len(args))


def timed(conn: Any, pid: int, n: int, call: Callable[[int], Any]) -> tuple[float, float]:
    """(server CPU µs per call, wall µs per call) of n calls, in REPS rounds: the round with the least CPU
    (other load only ever adds to a cost, so the minimum is the most faithful figure)."""
    for i in range(5):  # warm the plan caches
        call(-1 - i)
    best = (float("inf"), float("inf"))
    per_round = max(1, n // REPS)
    for r in range(REPS):
        c0, t0 = lib.cpu_ns(pid), time.perf_counter()
        for i in range(r * per_round, (r + 1) * per_round):
            call(i)
        cpu_us = (lib.cpu_ns(pid) - c0) / per_round / 1000
        best = min(best, (cpu_us, (time.perf_counter() - t0) / per_round * 1e6))
    return best


def nested_statements(db_dsn: str, n: int) -> str:
    """The statements the engine runs for n 3-step runs (trigger, dequeue, 3 × complete_step, complete_run),
    each call's own statements included, in execution µs per run (pg_stat_statements, track = all). Times of
    nested statements include pg_stat_statements' own instrumentation, so compare them with each other."""
    with lib.connect(db_dsn) as conn:
        conn.prepare_threshold = 0
        conn.execute("create extension if not exists pg_stat_statements")
        wid = lib.scalar(conn, "select pgqrs.register_worker(p_name => 'profile', p_queue => %s)",
                         (benchwf.WF,))
        conn.execute("set pg_stat_statements.track = 'all'")
        conn.execute("select pg_stat_statements_reset()")
        for i in range(n):
            trigger_args = (benchwf.WF, json.dumps({"n": i}), None, None, None, 0)
            conn.execute(_sql.TRIGGER, pad(_sql.TRIGGER, *trigger_args))
            row = conn.execute(_sql.DEQUEUE, pad(_sql.DEQUEUE, benchwf.WF, wid, 1, 3600)).fetchone()
            run_id, token = row[1], row[4]
            for k in range(3):
                step_args = (run_id, f"s{k}", token, json.dumps({"i": k}))
                conn.execute(_sql.COMPLETE_STEP, pad(_sql.COMPLETE_STEP, *step_args))
            conn.execute(_sql.COMPLETE_RUN, pad(_sql.COMPLETE_RUN, run_id, token, json.dumps({"sum": i})))
        conn.execute("set pg_stat_statements.track = 'top'")
        rows = conn.execute(
            """select toplevel, calls::float8 / %s, total_exec_time * 1000 / %s,
                      regexp_replace(left(query, 100), '\\s+', ' ', 'g')
               from pg_stat_statements where calls >= %s and dbid = (select oid from pg_database
               where datname = current_database()) order by total_exec_time desc limit 30""",
            (n, n, n // 2)).fetchall()
    return lib.md_table(["", "calls per run", "µs per run", "statement"],
                        [["call" if top else "inside", f"{calls:.0f}", f"{us:.0f}", f"`{text}`"]
                         for top, calls, us, text in rows])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--db", default="bench_profile")
    ap.add_argument("--sql", help="install the engine from the install.sql of this directory (experiments)")
    ap.add_argument("--statements", action="store_true",
                    help="instead: the statements inside the engine's calls for --n 3-step runs "
                         "(pg_stat_statements with track = all; needs it preloaded, as make bench's "
                         "cluster has)")
    ap.add_argument("--partitions", type=int,
                    help="the history in this many ranged partitions (a fresh install has 2): empty ones"
                         " added past them, as a long retention keeps (schema 8)")
    args = ap.parse_args()
    n = args.n
    rows: list[tuple[str, float, float]] = []

    db_dsn = lib.recreate_db(args.db)
    if args.sql:
        with lib.connect(db_dsn) as conn:
            conn.execute("set client_min_messages = warning")
            for path in importlib.import_module("pgqrs.install").schema_files(Path(args.sql)):
                conn.execute(path.read_bytes())
            conn.execute("select pgqrs.create_workflow(p_name => %s)", (benchwf.WF,))
    else:
        benchwf.install(db_dsn)
    if args.statements:
        print(nested_statements(db_dsn, n))
        lib.drop_db(args.db)
        return
    if args.partitions:
        with lib.connect(db_dsn) as conn:
            ends = [r[0] for r in conn.execute("select end_id from pgqrs._history_partitions()")]
            for i in range(args.partitions - len(ends)):
                conn.execute("select pgqrs._create_history_partition(%s, %s)",
                             (ends[-1] + i * 1000, ends[-1] + (i + 1) * 1000))
    with lib.connect(db_dsn) as conn:
        conn.prepare_threshold = 0
        pid = lib.scalar(conn, "select pg_backend_pid()")
        wid = lib.scalar(conn, "select pgqrs.register_worker(p_name => 'profile', p_queue => %s)",
                         (benchwf.WF,))

        def trigger(i: int) -> None:
            # (priority 0: the package passes the default itself, NULL is refused)
            args = (benchwf.WF, json.dumps({"n": i}), None, None, None, 0)
            conn.execute(_sql.TRIGGER, pad(_sql.TRIGGER, *args)).fetchall()

        rows.append(("pgqrs.trigger", *timed(conn, pid, n, trigger)))
        leased: list[tuple[int, Any]] = []

        def dequeue(_i: int) -> None:
            r = conn.execute(_sql.DEQUEUE, pad(_sql.DEQUEUE, benchwf.WF, wid, 1, 3600)).fetchall()
            leased.append((r[0][1], r[0][4]))

        rows.append(("pgqrs.dequeue (1 message)", *timed(conn, pid, n, dequeue)))
        it = iter(leased * 3)

        def complete_step(i: int) -> None:
            run_id, token = next(it)
            args = pad(_sql.COMPLETE_STEP, run_id, f"s{i}", token, json.dumps({"i": i}))
            conn.execute(_sql.COMPLETE_STEP, args).fetchall()

        rows.append(("pgqrs.complete_step", *timed(conn, pid, n, complete_step)))
        it2 = iter(leased)

        def complete_run(i: int) -> None:
            run_id, token = next(it2)
            args = pad(_sql.COMPLETE_RUN, run_id, token, json.dumps({"sum": i}))
            conn.execute(_sql.COMPLETE_RUN, args).fetchall()

        rows.append(("pgqrs.complete_run", *timed(conn, pid, n - 10, complete_run)))

        def empty_dequeue(_i: int) -> None:
            conn.execute(_sql.DEQUEUE, pad(_sql.DEQUEUE, benchwf.WF, wid, 1, 30)).fetchall()

        rows.append(("pgqrs.dequeue (queue empty)", *timed(conn, pid, n, empty_dequeue)))

        def heartbeat(_i: int) -> None:
            conn.execute(_sql.HEARTBEAT, pad(_sql.HEARTBEAT, wid, [])).fetchall()

        rows.append(("pgqrs.heartbeat (no leases)", *timed(conn, pid, n, heartbeat)))

        def select1(_i: int) -> None:
            conn.execute("select 1").fetchall()

        rows.append(("select 1 (a round trip, no write)", *timed(conn, pid, n, select1)))

        def trigger_batch(i: int) -> None:
            inputs = json.dumps([{"n": i, "k": k} for k in range(BATCH)])
            conn.execute("select count(*) from pgqrs.trigger_batch(p_workflow => %s, p_inputs => %s::jsonb)",
                         (benchwf.WF, inputs)).fetchall()

        rows.append((f"pgqrs.trigger_batch ({BATCH} runs)", *timed(conn, pid, n // 20, trigger_batch)))

        conn.execute(rawbound.SCHEMA.encode(), prepare=False)

        def raw_trigger(i: int) -> None:
            conn.execute(rawbound.TRIGGER, (json.dumps({"n": i}),)).fetchall()

        rows.append(("raw: insert run + notify", *timed(conn, pid, n, raw_trigger)))
        claimed: list[int] = []

        def raw_claim(_i: int) -> None:
            claimed.append(conn.execute(rawbound.CLAIM, (1,)).fetchall()[0][0])

        rows.append(("raw: claim", *timed(conn, pid, n, raw_claim)))
        it3 = iter(claimed * 3)

        def raw_step(i: int) -> None:
            conn.execute(rawbound.STEP, (next(it3), f"s{i}", json.dumps({"i": i})))

        rows.append(("raw: insert step", *timed(conn, pid, n, raw_step)))
        it4 = iter(claimed)

        def raw_finish(i: int) -> None:
            conn.execute(rawbound.FINISH, (json.dumps({"sum": i}), next(it4), 1)).fetchall()

        rows.append(("raw: finish run", *timed(conn, pid, n - 10, raw_finish)))

        def raw_trigger_batch(i: int) -> None:
            conn.execute(rawbound.TRIGGER_BATCH, (json.dumps([{"n": i, "k": k} for k in range(BATCH)]),))

        rows.append((f"raw: insert {BATCH} runs + notify", *timed(conn, pid, n // 20, raw_trigger_batch)))
    lib.drop_db(args.db)

    print(lib.md_table(["call", "server CPU µs/call", "wall µs/call"],
                       [[name, f"{cpu:.0f}", f"{wall:.0f}"] for name, cpu, wall in rows]))
    per = {name: cpu for name, cpu, _ in rows}
    ours = per["pgqrs.trigger"] + per["pgqrs.dequeue (1 message)"] + 3 * per["pgqrs.complete_step"] \
        + per["pgqrs.complete_run"]
    raw = per["raw: insert run + notify"] + per["raw: claim"] + 3 * per["raw: insert step"] \
        + per["raw: finish run"]
    print(f"\nserver CPU per 3-step run: pgqrs {ours:.0f} µs, raw {raw:.0f} µs ({ours / raw:.1f}×)")


if __name__ == "__main__":
    main()
