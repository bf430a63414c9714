#!/usr/bin/env python3
"""Issue 4's figures for the Python package: drain throughput, trigger -> result latency, idle load.

    python bench/e2e.py [--dsn ADMIN] [--runs 2000] [--workers 1,4] [--concurrency 1,4] [--samples 30]
    python bench/e2e.py worker DSN NAME [--concurrency K]        (what the drain starts, one per process)

Run it against a durable cluster:  PGQRS_PGDIR=/tmp/pg-bench4 PGQRS_FSYNC=on scripts/pg.sh start
(scripts/pg.sh preloads pg_stat_statements, which the cost figures need).

- drain@k: k worker processes (the stock loop: `.handler(fn).concurrency(K)` + `poll_forever()`, visibility
  30 s) idle on an empty queue; `--runs` runs are triggered in one statement (pgqrs.trigger_batch), and the
  clock runs from that trigger to the last `finished_at` (both from the database). The figure counts only
  when every run is SUCCESS with output {"sum": 3n+3} and exactly three SUCCESS steps {"i": n}, {"i": n+1},
  {"i": n+2}, checked in SQL.
- cost per run (from the 1-worker drain): statements (= round trips; every call is one statement) per run by
  pg_stat_statements, and write transactions per run (txid_current() delta).
- latency: one idle worker; `--samples` times, after a random 20-200 ms gap, trigger one run and wait for
  `pgqrs.run().status(h).store(s).result()`; p50 / p99 / max.
- idle: statements per second the idle worker sends over `--idle` seconds (pg_stat_statements).

Importable: `measure_drain`, `measure_latency`, `measure_idle`, `costs` take a DSN and return dicts.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "pgqrs_py"))

import pgqrs  # noqa: E402

WORKFLOW = "bench_e2e"


# ---- the workflow: three no-op steps -----------------------------------------------------------------------


# Coroutine functions: ctx.step awaits them on the loop. (A lambda returning a coroutine works too, but the
# lambda itself is called in a thread, since it might as well block: one thread hop per step.)
async def _a(n: int) -> dict[str, int]:
    return {"i": n}


async def _b(n: int) -> dict[str, int]:
    return {"i": n + 1}


async def _c(n: int) -> dict[str, int]:
    return {"i": n + 2}


async def bench_handler(ctx: pgqrs.WorkflowContext, params: dict[str, int]) -> dict[str, int]:
    n = params["n"]
    a = await ctx.step("a", functools.partial(_a, n))
    b = await ctx.step("b", functools.partial(_b, n))
    c = await ctx.step("c", functools.partial(_c, n))
    return {"sum": a["i"] + b["i"] + c["i"]}


async def _worker_main(dsn: str, name: str, concurrency: int) -> None:
    async with await pgqrs.connect(dsn, max_size=concurrency + 2) as store:
        worker = (
            await pgqrs.consumer(name, None, WORKFLOW)
            .handler(bench_handler)
            .concurrency(concurrency)
            .create(store)
        )
        print("ready", flush=True)
        await worker.poll_forever()


# ---- helpers -----------------------------------------------------------------------------------------------


def admin_dsn() -> str:
    return make_conninfo(
        host=os.environ.get("PGHOST", "/tmp/pg-bench4"),
        port=os.environ.get("PGPORT", "5432"),
        user=os.environ.get("PGUSER", "postgres"),
        dbname="postgres",
    )


def fresh_database(admin: str, name: str) -> str:
    """Drop and create `name`, install pgqrs and the workflow; its DSN."""
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute("set client_min_messages = warning")
        c.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        c.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    dsn = make_conninfo(admin, dbname=name)
    pgqrs.install(dsn)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("select pgqrs.create_workflow(%s)", (WORKFLOW,))
        c.execute("create extension if not exists pg_stat_statements")
    return dsn


class WorkerPool:
    """k worker processes of this script, each printing `ready` once registered and LISTENing."""

    def __init__(self, dsn: str, k: int, concurrency: int = 1) -> None:
        self.procs = [
            subprocess.Popen(
                [sys.executable, __file__, "worker", dsn, f"e2e-{i}", "--concurrency", str(concurrency)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for i in range(k)
        ]
        for p in self.procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready", "a worker did not start"
        time.sleep(0.5)  # past the first look at the (empty) queue

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait(60)


def _one(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


STATEMENTS = """
select coalesce(sum(calls), 0)::bigint from pg_stat_statements
where dbid = (select oid from pg_database where datname = current_database())
  and query !~* 'pg_stat_statements|txid_current|pg_stat_database|from pgqrs.runs|trigger_batch'
"""
TOP_STATEMENTS = """
select calls, regexp_replace(left(query, 60), '\\s+', ' ', 'g') from pg_stat_statements
where dbid = (select oid from pg_database where datname = current_database())
  and query !~* 'pg_stat_statements|txid_current|pg_stat_database|from pgqrs.runs|trigger_batch'
order by calls desc limit 8
"""
VERIFY = """
select count(*) filter (where r.status = 'SUCCESS'
                        and r.output = jsonb_build_object('sum', 3 * (r.input->>'n')::int + 3)
                        and (select count(*) from pgqrs.steps s
                             where s.run_id = r.run_id and s.status = 'SUCCESS'
                               and s.value = jsonb_build_object('i', (r.input->>'n')::int
                                   + case s.step_id when 'a' then 0 when 'b' then 1 when 'c' then 2 end)) = 3
                        and (select count(*) from pgqrs.steps s where s.run_id = r.run_id) = 3),
       count(*),
       extract(epoch from max(r.finished_at) - min(r.created_at))
from pgqrs.runs r
"""


# ---- measurements ------------------------------------------------------------------------------------------


def measure_drain(
    dsn: str, runs: int, workers: int, concurrency: int = 1, timeout: float = 600
) -> dict[str, Any]:
    """Drain `runs` runs with `workers` processes; runs/s, verified, plus statements and commits per run."""
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("truncate pgqrs.steps, pgqrs.messages, pgqrs.messages_archive, pgqrs.runs cascade")
        pool = WorkerPool(dsn, workers, concurrency)
        try:
            c.execute("select pg_stat_statements_reset()")
            xid0 = int(_one(c, "select txid_current()"))
            c.execute(
                "select count(*) from pgqrs.trigger_batch(%s, %s)",
                (WORKFLOW, Jsonb([{"n": n} for n in range(runs)])),
            )
            deadline = time.monotonic() + timeout
            while _one(c, "select count(*) from pgqrs.runs where status not in ('SUCCESS', 'ERROR')") > 0:
                assert time.monotonic() < deadline, "drain timed out"
                time.sleep(0.05)
            xid1 = int(_one(c, "select txid_current()"))
            statements = int(_one(c, STATEMENTS))
            top = c.execute(TOP_STATEMENTS).fetchall()
            good, total, seconds = c.execute(VERIFY).fetchone()  # type: ignore[misc]
        finally:
            pool.stop()
    assert good == total == runs, f"only {good} of {total} runs are complete and correct"
    return {
        "workers": workers,
        "concurrency": concurrency,
        "runs": runs,
        "seconds": float(seconds),
        "runs_per_s": runs / float(seconds),
        # the worker sends no statement other than its own: per run, everything it did (idle polls included)
        "statements_per_run": statements / runs,
        "write_xacts_per_run": (xid1 - xid0 - 2) / runs,  # less the trigger and our own txid_current()
        "top_statements": [(int(n), q) for n, q in top],
    }


async def _latency_samples(dsn: str, samples: int) -> list[float]:
    out = []
    async with await pgqrs.connect(dsn) as store:
        for n in range(samples):
            await asyncio.sleep(random.uniform(0.02, 0.2))
            t0 = time.perf_counter()
            handle = await pgqrs.workflow(WORKFLOW).trigger({"n": n}).execute(store)
            result = await pgqrs.run().status(handle).store(store).result(timeout=30)
            out.append((time.perf_counter() - t0) * 1000)
            assert result == {"sum": 3 * n + 3}, result
    return out


def commit_latency_ms(dsn: str, samples: int = 50) -> float:
    """Median round trip of a one-row INSERT in autocommit: what one durable commit costs on this machine now.
    A trigger -> result has six on its critical path (trigger, dequeue, 3 steps, complete_run)."""
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("create table if not exists commit_probe (x int)")
        times = []
        for _ in range(samples):
            t0 = time.perf_counter()
            c.execute("insert into commit_probe values (1)")
            times.append((time.perf_counter() - t0) * 1000)
        c.execute("drop table commit_probe")
    return statistics.median(times)


def measure_latency(dsn: str, samples: int) -> dict[str, Any]:
    pool = WorkerPool(dsn, 1)
    try:
        commit_before = commit_latency_ms(dsn)
        ms = sorted(asyncio.run(_latency_samples(dsn, samples)))
        commit_after = commit_latency_ms(dsn)
    finally:
        pool.stop()
    p99 = ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))]
    return {
        "samples": len(ms),
        "p50_ms": statistics.median(ms),
        "p99_ms": p99,
        "max_ms": ms[-1],
        "min_ms": ms[0],
        "commit_ms_p50": (commit_before + commit_after) / 2,
    }


def measure_idle(dsn: str, seconds: float) -> dict[str, Any]:
    pool = WorkerPool(dsn, 1)
    try:
        with psycopg.connect(dsn, autocommit=True) as c:
            time.sleep(1.0)
            before = int(_one(c, STATEMENTS))
            time.sleep(seconds)
            after = int(_one(c, STATEMENTS))
    finally:
        pool.stop()
    return {"seconds": seconds, "statements": after - before, "per_s": (after - before) / seconds}


RAW_SETUP = """
drop table if exists raw_steps, raw_runs;
create table raw_runs (id bigint primary key, n int not null, status text not null, output jsonb);
create index on raw_runs (id) where status = 'QUEUED';
create table raw_steps (run_id bigint, step text, value jsonb, primary key (run_id, step));
"""
RAW_LEASE = """
update raw_runs set status = 'RUNNING' where id = (
    select id from raw_runs where status = 'QUEUED' order by id limit 1 for update skip locked)
returning id, n"""


def _raw_worker(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=0) as c:
        while True:
            row = c.execute(RAW_LEASE).fetchone()
            if row is None:
                return
            run_id, n = row
            for k, step in enumerate("abc"):
                c.execute("insert into raw_steps values (%s, %s, %s)", (run_id, step, Jsonb({"i": n + k})))
            c.execute(
                "update raw_runs set status = 'SUCCESS', output = %s where id = %s",
                (Jsonb({"sum": 3 * n + 3}), run_id),
            )


def measure_raw_bound(dsn: str, runs: int, workers: int) -> dict[str, Any]:
    """The same work in plain SQL, 5 commits per run, `workers` threads: this machine's bound right now."""
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(RAW_SETUP)
        c.execute("insert into raw_runs select g, g, 'QUEUED' from generate_series(0, %s - 1) g", (runs,))
    threads = [threading.Thread(target=_raw_worker, args=(dsn,)) for _ in range(workers)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    with psycopg.connect(dsn, autocommit=True) as c:
        done = _one(c, "select count(*) from raw_runs where status = 'SUCCESS'")
        c.execute("drop table raw_steps, raw_runs")
    assert done == runs
    return {"workers": workers, "runs": runs, "seconds": seconds, "runs_per_s": runs / seconds}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        ap = argparse.ArgumentParser()
        ap.add_argument("cmd")
        ap.add_argument("dsn")
        ap.add_argument("name")
        ap.add_argument("--concurrency", type=int, default=1)
        args = ap.parse_args()
        asyncio.run(_worker_main(args.dsn, args.name, args.concurrency))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsn", default=None, help="maintenance DSN of the cluster (default: from PGHOST)")
    ap.add_argument("--db", default="pgqrs_bench_e2e")
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--workers", default="1,4")
    ap.add_argument("--concurrency", default="1", help="runs in flight per worker process, e.g. 1,4")
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--idle", type=float, default=5.0)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    admin = args.dsn or admin_dsn()
    dsn = fresh_database(admin, args.db)
    with psycopg.connect(dsn) as c:
        settings = {
            k: _one(c, f"show {k}") for k in ("fsync", "synchronous_commit", "shared_preload_libraries")
        }
    report: dict[str, Any] = {"settings": settings, "drain": [], "latency": None, "idle": None}
    report["raw"] = []
    for k in [int(x) for x in args.workers.split(",")]:
        for _ in range(args.reps):
            raw = measure_raw_bound(dsn, args.runs, k)
            report["raw"].append(raw)
            for conc in [int(x) for x in str(args.concurrency).split(",")]:
                r = measure_drain(dsn, args.runs, k, conc)
                r["raw_runs_per_s"] = raw["runs_per_s"]
                report["drain"].append(r)
                print(
                    f"drain@{k}x{conc}: {r['runs_per_s']:.0f} runs/s"
                    f" ({r['runs']} runs in {r['seconds']:.2f} s;"
                    f" raw-SQL bound {raw['runs_per_s']:.0f}), {r['statements_per_run']:.2f} statements and"
                    f" {r['write_xacts_per_run']:.2f} write xacts per run",
                    file=sys.stderr,
                    flush=True,
                )
    report["latency"] = measure_latency(dsn, args.samples)
    lat = report["latency"]
    print(
        f"trigger -> result: p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms"
        f" ({lat['samples']} samples;"
        f" one durable commit now takes {lat['commit_ms_p50']:.2f} ms)",
        file=sys.stderr,
        flush=True,
    )
    report["idle"] = measure_idle(dsn, args.idle)
    print(f"idle worker: {report['idle']['per_s']:.2f} statements/s", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(f"settings: {settings}")
        for r in report["drain"]:
            print(
                f"drain@{r['workers']}x{r['concurrency']}: {r['runs_per_s']:.0f} runs/s "
                f"(raw-SQL bound now: {r['raw_runs_per_s']:.0f},"
                f" ratio {r['runs_per_s'] / r['raw_runs_per_s']:.2f});"
                " per run "
                f"{r['statements_per_run']:.2f} statements, {r['write_xacts_per_run']:.2f} write transactions"
            )
            for calls, query in r["top_statements"]:
                print(f"    {calls:>7}  {query}")
        print(f"latency: p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms, max {lat['max_ms']:.1f} ms")
        print(f"idle: {report['idle']['statements']} statements in {args.idle:.0f} s")


if __name__ == "__main__":
    main()
