"""The timed workloads of `make bench`, for pgqrs and for the raw-SQL bound.

Each measurement starts from a fresh database (`bench_pgqrs` / `bench_raw`) and returns a dict of numbers;
run.py repeats them and renders the tables.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import sys
import time
from typing import Any

import benchwf
import lib
import rawbound

import pgqrs

WORKER = os.path.join(lib.HERE, "worker.py")


# ---- the two engines behind one interface ------------------------------------------------------------------

class Engine:
    name = ""
    db = ""
    DONE_SQL = ""
    TOTAL_SQL = ""
    TIMES_SQL = ""

    def fresh(self) -> str:
        db_dsn = lib.recreate_db(self.db)
        self.install(db_dsn)
        return db_dsn

    def install(self, db_dsn: str) -> None:
        raise NotImplementedError

    def fill(self, db_dsn: str, first: int, count: int) -> None:
        raise NotImplementedError

    def trigger_many(self, db_dsn: str, n: int, batch: int) -> float:
        raise NotImplementedError

    def latency(self, db_dsn: str, samples: int, gap: tuple[float, float], rng: random.Random
                ) -> list[tuple[int, float, float]]:
        raise NotImplementedError

    def verify(self, conn: Any, n: int) -> int:
        raise NotImplementedError

    def worker_argv(self, db_dsn: str, idx: int, concurrency: int = 1, first_step_log: str | None = None
                    ) -> list[str]:
        argv = [sys.executable, WORKER, self.name, db_dsn, str(idx), "--concurrency", str(concurrency)]
        if first_step_log:
            argv += ["--first-step-log", first_step_log]
        return argv


class Pgqrs(Engine):
    name = "pgqrs"
    db = "bench_pgqrs"
    DONE_SQL = benchwf.DONE_SQL
    TOTAL_SQL = benchwf.TOTAL_SQL
    TIMES_SQL = benchwf.TIMES_SQL

    def install(self, db_dsn: str) -> None:
        benchwf.install(db_dsn)

    def fill(self, db_dsn: str, first: int, count: int) -> None:
        benchwf.fill(db_dsn, first, count)

    def trigger_many(self, db_dsn: str, n: int, batch: int) -> float:
        return asyncio.run(self._trigger_many(db_dsn, n, batch))

    @staticmethod
    async def _trigger_many(db_dsn: str, n: int, batch: int) -> float:
        store = await pgqrs.connect(db_dsn)
        try:
            wf = pgqrs.workflow(benchwf.WF)
            batch_api = getattr(store, "trigger_batch", None)
            t0 = time.perf_counter()
            if batch == 1:
                for i in range(n):
                    await wf.trigger({"n": i}).execute(store)
            else:
                for lo in range(0, n, batch):
                    inputs = [{"n": i} for i in range(lo, min(n, lo + batch))]
                    if batch_api is not None:
                        await batch_api(benchwf.WF, inputs)
                    else:  # the package has no batch call yet: the SQL API directly
                        async with store.pool.connection() as conn:
                            await conn.execute("select count(*) from pgqrs.trigger_batch("
                                               "p_workflow => %s, p_inputs => %s::jsonb)",
                                               (benchwf.WF, json.dumps(inputs)))
            return time.perf_counter() - t0
        finally:
            await store.close()

    def latency(self, db_dsn: str, samples: int, gap: tuple[float, float], rng: random.Random
                ) -> list[tuple[int, float, float]]:
        return asyncio.run(self._latency(db_dsn, samples, gap, rng))

    @staticmethod
    async def _latency(db_dsn: str, samples: int, gap: tuple[float, float], rng: random.Random
                       ) -> list[tuple[int, float, float]]:
        """Trigger one run at a time and wait for it with the package's own `result()` (LISTEN)."""
        out = []
        store = await pgqrs.connect(db_dsn)
        try:
            wf = pgqrs.workflow(benchwf.WF)
            for n in range(samples):
                await asyncio.sleep(rng.uniform(*gap))
                t0 = time.time()
                handle = await wf.trigger({"n": n}).execute(store)
                result = await pgqrs.run().status(handle).store(store).result(timeout=30)
                t1 = time.time()
                if result != {"sum": 3 * n + 3}:
                    raise RuntimeError(f"run {handle.id}: wrong result {result!r}")
                out.append((n, t0, t1))
        finally:
            await store.close()
        return out

    def verify(self, conn: Any, n: int) -> int:
        return benchwf.verify(conn, n)


class Raw(Engine):
    name = "raw"
    db = "bench_raw"
    DONE_SQL = rawbound.DONE_SQL
    TOTAL_SQL = rawbound.TOTAL_SQL
    TIMES_SQL = rawbound.TIMES_SQL

    def install(self, db_dsn: str) -> None:
        rawbound.install(db_dsn)

    def fill(self, db_dsn: str, first: int, count: int) -> None:
        rawbound.fill(db_dsn, first, count)

    def trigger_many(self, db_dsn: str, n: int, batch: int) -> float:
        return rawbound.trigger_many(db_dsn, n, batch)

    def latency(self, db_dsn: str, samples: int, gap: tuple[float, float], rng: random.Random
                ) -> list[tuple[int, float, float]]:
        return rawbound.latency(db_dsn, samples, gap, rng)

    def verify(self, conn: Any, n: int) -> int:
        return rawbound.verify(conn, n)


ENGINES: dict[str, Engine] = {"pgqrs": Pgqrs(), "raw": Raw()}


# ---- workloads ---------------------------------------------------------------------------------------------

def trigger_throughput(engine: Engine, n: int, batch: int) -> dict[str, Any]:
    db_dsn = engine.fresh()
    lib.checkpoint()
    counters = lib.Counters(engine.db)
    load = lib.LoadMeter()
    seconds = engine.trigger_many(db_dsn, n, batch)
    cpu = load.stop()
    cpu["client_cpu_ms_per_run"] = round(1000 * cpu["client_cpu_s"] / n, 3)
    cpu["server_cpu_ms_per_run"] = round(1000 * cpu["server_cpu_s"] / n, 3)
    out: dict[str, Any] = {"runs_per_s": n / seconds, "seconds": seconds, **cpu}
    out.update({k.replace("_unit", "_run"): v for k, v in counters.per(n).items()})
    with lib.connect(db_dsn) as conn:
        total = lib.scalar(conn, engine.TOTAL_SQL)
    out["ok"] = total == n
    if not out["ok"]:
        raise RuntimeError(f"{engine.name} trigger: {total} runs in the database, expected {n}")
    return out


def drain(engine: Engine, n: int, procs: int, concurrency: int = 1, rss: bool = False,
          tag: str = "drain") -> dict[str, Any]:
    """n runs queued; `procs` worker processes (each `concurrency` runs in flight) drain them. Counts only if
    every run verifies. Throughput over the DB window first dequeue -> last finish (and over wall time)."""
    db_dsn = engine.fresh()
    engine.fill(db_dsn, 0, n)
    lib.checkpoint()
    polls = 0
    samples: list[tuple[float, int, int]] = []  # (t, done, rss KiB) for the RSS workload
    with lib.Procs([engine.worker_argv(db_dsn, i, concurrency) for i in range(procs)], tag) as workers:
        workers.wait_ready()
        counters = lib.Counters(engine.db)
        with lib.connect(db_dsn) as conn:
            conn.prepare_threshold = 0
            load = lib.LoadMeter()
            t0 = time.perf_counter()
            workers.go()
            done = 0
            next_sample = 0.0
            while done < n:
                time.sleep(0.025)
                done = lib.scalar(conn, lib.TAG + engine.DONE_SQL)
                polls += 1
                now = time.perf_counter() - t0
                if rss and now >= next_sample:
                    samples.append((now, done, lib.rss_kib(workers.pids[0])))
                    next_sample = now + 0.25
                if now > 900:
                    raise RuntimeError(f"{tag}: drain timed out with {done}/{n} done")
                workers.check()
            wall = time.perf_counter() - t0
            cpu = load.stop()
            # CPU per run, of the workers (and the runner's polling) and of the server
            cpu["client_cpu_ms_per_run"] = round(1000 * cpu["client_cpu_s"] / n, 3)
            cpu["server_cpu_ms_per_run"] = round(1000 * cpu["server_cpu_s"] / n, 3)
            if rss:
                samples.append((wall, done, lib.rss_kib(workers.pids[0])))
    costs = {k.replace("_unit", "_run"): v for k, v in counters.per(n, runner_commits=polls).items()}
    with lib.connect(db_dsn) as conn:
        verified = engine.verify(conn, n)
        total = lib.scalar(conn, engine.TOTAL_SQL)
        times = conn.execute(engine.TIMES_SQL).fetchall()
    if verified != n or total != n:
        raise RuntimeError(f"{tag}: only {verified} of {n} runs verified ({total} runs in the database)")
    window = max(t[2] for t in times) - min(t[1] for t in times)
    out: dict[str, Any] = {"runs_per_s": n / window, "window_s": window, "wall_s": wall,
                           "runs_per_s_wall": n / wall, "verified": verified, **costs, **cpu}
    if rss:
        out["rss_samples"] = samples
        warm = next((s for s in samples if s[1] >= n // 10), samples[0])
        out["rss_warm_mib"] = warm[2] / 1024
        out["rss_end_mib"] = samples[-1][2] / 1024
        out["rss_peak_mib"] = max(s[2] for s in samples) / 1024
        out["rss_growth_mib"] = (samples[-1][2] - warm[2]) / 1024
    return out


def latency_idle(engine: Engine, samples: int, warmup: int, idle_s: float, gap: tuple[float, float],
                 seed: int, tag: str = "latency") -> dict[str, Any]:
    """One idle worker. First `idle_s` seconds of nothing (statements per second), then `warmup + samples`
    single runs, each triggered after a random gap: trigger -> first step body, trigger -> result seen."""
    db_dsn = engine.fresh()
    os.makedirs(lib.LOG_DIR, exist_ok=True)
    step_log = os.path.join(lib.LOG_DIR, f"{tag}-first-step.txt")
    if os.path.exists(step_log):
        os.unlink(step_log)
    out: dict[str, Any] = {}
    with lib.Procs([engine.worker_argv(db_dsn, 0, 1, step_log)], tag) as workers:
        workers.wait_ready()
        workers.go()
        time.sleep(3.0)  # reach the idle wait
        if engine.name == "pgqrs":
            idle = lib.Counters(engine.db)
            time.sleep(idle_s)
            workers.check()
            stats = idle.per(1, settle=0.0)
            out["idle_statements_per_s"] = stats.get("statements_per_unit", 0.0) / idle_s
            out["idle_commits_per_s"] = stats["commits_per_unit"] / idle_s
        load = lib.LoadMeter()
        rows = engine.latency(db_dsn, warmup + samples, gap, random.Random(seed))
        out.update(load.stop())
        workers.check()
    firsts: dict[int, float] = {}
    with open(step_log) as f:
        for line in f:
            k, ts = line.split()
            firsts.setdefault(int(k), float(ts))
    rows = rows[warmup:]
    res_ms = [1000 * (t1 - t0) for _n, t0, t1 in rows]
    first_ms = [1000 * (firsts[n] - t0) for n, t0, _t1 in rows]
    with lib.connect(db_dsn) as conn:
        verified = engine.verify(conn, warmup + samples)
        times = conn.execute(engine.TIMES_SQL).fetchall()
    if verified != warmup + samples:
        raise RuntimeError(f"{tag}: only {verified} of {warmup + samples} runs verified")
    out.update({
        "result_p50_ms": lib.percentile(res_ms, 50), "result_p99_ms": lib.percentile(res_ms, 99),
        "first_step_p50_ms": lib.percentile(first_ms, 50), "first_step_p99_ms": lib.percentile(first_ms, 99),
        "db_pickup_p50_ms": 1000 * statistics.median(t[1] - t[0] for t in times),
        "db_exec_p50_ms": 1000 * statistics.median(t[2] - t[1] for t in times),
        "samples": len(rows), "verified": verified,
    })
    return out
