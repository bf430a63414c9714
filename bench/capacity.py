#!/usr/bin/env python3
"""`make bench-capacity`: the capacity model of one primary (docs/scaling.md).

For each worker set-up (processes x runs in flight each) it drains --runs runs of the 3-step workflow of
bench/e2e.py (every run checked SUCCESS with its output and 3 steps) and measures, over the drain:
  runs/s           runs over the wall time of the drain (first dequeue -> last finish, in the database)
  server CPU       CPU seconds of the PostgreSQL processes (the postmaster and its children, /proc), per run;
                   runs per server-CPU-second is the capacity of one server core
  WAL              pg_current_wal_lsn() before and after, per run
It measures the trigger side the same way: --runs runs triggered one call each by one client.
The cluster is $PGHOST (make bench-capacity starts the durable one: fsync and synchronous_commit on).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import e2e  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def server_cpu(data_dir: str) -> float:
    """CPU seconds (user + system) used so far by the postmaster of `data_dir` and its live children."""
    postmaster = int(Path(data_dir, "postmaster.pid").read_text().split()[0])
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        pid, ppid = int(proc.name), int(fields[1])
        if pid == postmaster or ppid == postmaster:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def wal_lsn(conn: psycopg.Connection[Any]) -> int:
    return int(e2e._one(conn, "select pg_current_wal_lsn() - '0/0'::pg_lsn"))


def measure_triggers(dsn: str, data_dir: str, runs: int) -> dict[str, Any]:
    """`runs` single triggers from one client: per run, WAL and server CPU; triggers/s."""
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("truncate pgqrs.steps, pgqrs.messages, pgqrs.messages_archive, pgqrs.runs cascade")
        wal0, cpu0, t0 = wal_lsn(c), server_cpu(data_dir), time.monotonic()
        for n in range(runs):
            c.execute("select pgqrs.trigger(%s, %s)", (e2e.WORKFLOW, Jsonb({"n": n})))
        seconds, cpu1, wal1 = time.monotonic() - t0, server_cpu(data_dir), wal_lsn(c)
    return {"runs": runs, "per_s": runs / seconds, "wal_bytes_per_run": (wal1 - wal0) / runs,
            "server_cpu_ms_per_run": 1000 * (cpu1 - cpu0) / runs}


def measure_drain(dsn: str, data_dir: str, runs: int, workers: int, concurrency: int) -> dict[str, Any]:
    """Drain `runs` runs triggered in one batch with `workers` processes of `concurrency` each."""
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("truncate pgqrs.steps, pgqrs.messages, pgqrs.messages_archive, pgqrs.runs cascade")
        c.execute("checkpoint")  # full-page images after a checkpoint: every drain starts from one
        pool = e2e.WorkerPool(dsn, workers, concurrency)
        try:
            c.execute("select count(*) from pgqrs.trigger_batch(%s, %s)",
                      (e2e.WORKFLOW, Jsonb([{"n": n} for n in range(runs)])))
            wal0, cpu0 = wal_lsn(c), server_cpu(data_dir)
            while e2e._one(c, "select count(*) from pgqrs.runs where status not in ('SUCCESS', 'ERROR')"):
                time.sleep(0.02)
            cpu1, wal1 = server_cpu(data_dir), wal_lsn(c)
            good, total, _span = c.execute(e2e.VERIFY).fetchone()  # type: ignore[misc]
            seconds = e2e._one(c, "select extract(epoch from max(finished_at) - min(started_at))::float8"
                                  " from pgqrs.runs")
        finally:
            pool.stop()
    assert good == total == runs, f"only {good} of {total} runs are complete and correct"
    return {"workers": workers, "concurrency": concurrency, "runs": runs, "runs_per_s": runs / seconds,
            "wal_bytes_per_run": (wal1 - wal0) / runs, "server_cpu_ms_per_run": 1000 * (cpu1 - cpu0) / runs,
            "server_cores_busy": (cpu1 - cpu0) / seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--setups", default="1x1,2x1,4x1,8x1,4x4",
                    help="worker processes x runs in flight each, comma separated")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    admin = e2e.admin_dsn()
    with psycopg.connect(admin) as c:
        data_dir = str(e2e._one(c, "show data_directory"))
        settings = {k: e2e._one(c, f"show {k}") for k in ("fsync", "synchronous_commit", "full_page_writes")}
    dsn = e2e.fresh_database(admin, "pgqrs_bench_capacity")
    report: dict[str, Any] = {"settings": settings, "cores": os.cpu_count(),
                              "trigger": measure_triggers(dsn, data_dir, args.runs), "drain": []}
    t = report["trigger"]
    print(f"settings {settings}, {os.cpu_count()} cores shared by server and clients", file=sys.stderr)
    print(f"trigger (one client, one call per run): {t['per_s']:.0f}/s, {t['wal_bytes_per_run']:.0f} WAL "
          f"bytes and {t['server_cpu_ms_per_run']:.3f} server CPU ms per run", file=sys.stderr)
    for setup in args.setups.split(","):
        workers, concurrency = (int(x) for x in setup.split("x"))
        r = measure_drain(dsn, data_dir, args.runs, workers, concurrency)
        report["drain"].append(r)
        per_core = 1000 / r["server_cpu_ms_per_run"]
        print(f"drain {workers}x{concurrency}: {r['runs_per_s']:.0f} runs/s, "
              f"{r['wal_bytes_per_run']:.0f} WAL bytes/run, {r['server_cpu_ms_per_run']:.3f} server CPU "
              f"ms/run (= {per_core:.0f} runs/s per server core), server busy "
              f"{r['server_cores_busy']:.2f} cores",
              file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
