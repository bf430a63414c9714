"""What a purge costs the workers (issue 20): `pgqrs.purge_runs` removing a large history while 4 worker
processes drain runs, next to the same drain without it.

Fills a database of its own with N finished runs spread over 30 days (as bench/dashboard.py does: 3 steps and
an archived message each), then, twice (without and with a purge running): queues --drain runs of the 3-step
benchmark workflow, starts 4 worker processes (bench/worker.py, concurrency 1) and times the drain, while a
probe connection calls `pgqrs.dequeue` on an empty queue every 5 ms (its latency: what any dequeue pays for
the purge's locks and I/O). The purge removes the runs finished more than a day ago, 10,000 per transaction,
until none is left (it may outlast the drain: the drain's figures are those of the time they overlap).
--width N lays the history out in partitions of N run ids (pgqrs.maintain_history): the purge then drops the
partitions whose runs all finished more than a day ago and deletes the rest; without it the history is in the
fresh install's first partition (1,000,000 run ids), which a purge of a day cannot drop: it deletes.
Prints runs/s, the probe's p50/p99, the purge's time and rate, and the table and index sizes before and after.

    PGQRS_PGDIR=/tmp/pgqrs-bench PGQRS_FSYNC=on scripts/pg.sh start && eval "$(scripts/pg.sh env)"
    .venv/bin/python bench/purge.py [--runs 1000000] [--drain 18000] [--width 100000]
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

import benchwf
import dashboard
import lib
import workloads

# the benchmark workflow's runs not finished yet: its live messages (a count over the runs would scan the
# whole history every poll and steal the workers' CPU)
LEFT_SQL = (
    "select count(*) from pgqrs.messages as m join pgqrs.queues as q using (queue_id)"
    f" where q.name = '{benchwf.WF}'"
)
# (partitioned tables: the sum of their partitions)
SIZES = """
select t.name, pg_size_pretty(sum(pg_total_relation_size(p.relid)))
from unnest(array['messages_archive', 'runs', 'steps']) as t (name),
     pg_partition_tree(('pgqrs.' || t.name)::regclass) as p
group by 1 order by 1
"""


def probe(dsn: str, stop: threading.Event, out: list[float]) -> None:
    """Dequeue from an empty queue every 5 ms until `stop`; the latencies in ms."""
    with lib.connect(dsn) as conn:
        conn.prepare_threshold = 0
        worker = lib.scalar(conn, "select pgqrs.register_worker(p_name => 'probe', p_queue => 'probe')")
        while not stop.is_set():
            t0 = time.perf_counter()
            conn.execute("select * from pgqrs.dequeue('probe', %s, 1)", (worker,)).fetchall()
            out.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.005)


def purge(dsn: str, result: dict[str, Any]) -> None:
    """Purge every run finished more than a day ago, 10,000 per transaction (or a partition at once); its
    time, count and calls."""
    removed, calls, t0 = 0, 0, time.perf_counter()
    with lib.connect(dsn) as conn:
        before = lib.scalar(conn, "select count(*) from pgqrs._history_partitions()")
        while n := lib.scalar(conn, "select pgqrs.purge_runs(interval '1 day', null, 10000)"):
            removed, calls = removed + n, calls + 1
        dropped = before - lib.scalar(conn, "select count(*) from pgqrs._history_partitions()")
    result.update(removed=removed, seconds=time.perf_counter() - t0, calls=calls, dropped=dropped)


def drain(dsn: str, n: int, with_purge: bool) -> dict[str, Any]:
    """n runs drained by 4 worker processes, with the probe and (optionally) the purge running meanwhile."""
    benchwf.fill(dsn, 0, n)
    latencies: list[float] = []
    purged: dict[str, Any] = {}
    stop = threading.Event()
    helpers = [threading.Thread(target=probe, args=(dsn, stop, latencies))]
    if with_purge:
        helpers.append(threading.Thread(target=purge, args=(dsn, purged)))
    engine = workloads.ENGINES["pgqrs"]
    with lib.Procs([engine.worker_argv(dsn, i) for i in range(4)], "purge-drain") as workers:
        workers.wait_ready()
        with lib.connect(dsn) as conn:
            for t in helpers:
                t.start()
            t0 = time.perf_counter()
            workers.go()
            while lib.scalar(conn, lib.TAG + LEFT_SQL) > 0:
                time.sleep(0.025)
                workers.check()
            seconds = time.perf_counter() - t0
    stop.set()
    for t in helpers:
        t.join()
    return {"runs_per_s": n / seconds, "probe_p50_ms": lib.percentile(latencies, 50),
            "probe_p99_ms": lib.percentile(latencies, 99), "purge": purged}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=1_000_000, help="finished runs of history")
    ap.add_argument("--drain", type=int, default=18000, help="runs per drain (about as long as the purge)")
    ap.add_argument("--width", type=int, help="the history in partitions of this many run ids")
    args = ap.parse_args()
    dsn = dashboard.fill(args.runs, args.width)
    benchwf.install(dsn)
    with lib.connect(dsn) as conn:
        conn.execute("select pgqrs.create_workflow(p_name => 'probe')")
        before = conn.execute(SIZES).fetchall()
    quiet = drain(dsn, args.drain, with_purge=False)
    busy = drain(dsn, args.drain, with_purge=True)
    with lib.connect(dsn) as conn:
        conn.execute("vacuum analyze")
        after = conn.execute(SIZES).fetchall()
    p = busy["purge"]
    print(f"history: {args.runs:,} finished runs; each drain: {args.drain:,} runs, 4 worker processes")
    print(lib.md_table(["", "drain runs/s", "dequeue probe p50 ms", "dequeue probe p99 ms"], [
        ["without a purge", f"{quiet['runs_per_s']:.0f}", f"{quiet['probe_p50_ms']:.2f}",
         f"{quiet['probe_p99_ms']:.2f}"],
        ["while purging", f"{busy['runs_per_s']:.0f}", f"{busy['probe_p50_ms']:.2f}",
         f"{busy['probe_p99_ms']:.2f}"],
    ]))
    rate = p["removed"] / p["seconds"]
    print(f"\npurge: {p['removed']:,} runs in {p['seconds']:.1f} s ({rate:,.0f} runs/s), {p['calls']} calls,"
          f" {p['dropped']} partitions dropped")
    print(lib.md_table(["table (with its indexes)", "before", "after the purge and VACUUM"],
                       [[name, size, dict(after)[name]] for name, size in before]))


if __name__ == "__main__":
    main()
