"""The chaos harness: its own PostgreSQL cluster, real worker processes, real faults, and the checks of
../shared/DESIGN.md §4 made from the database and the side table chaos.side.

Used by tests/chaos/run_chaos.py (`make chaos`) and tests/chaos/test_chaos_small.py (inside `make test`).

A scenario starts W worker processes (tests/chaos/chaos_worker.py), triggers N runs of the 4-step workflow
`chaos` at a steady rate (idempotency key per run, so a trigger retried across a lost connection cannot make a
second run), injects its faults at fixed offsets, waits until every run is finished (or a deadline), stops the
workers and checks:

  * every run ends SUCCESS with the output computed from its input; none lost (missing, ERROR) or stuck;
  * every step is SUCCESS with its value, and its body ran at least once (a chaos.side row);
  * no step body started after its success was recorded: chaos.side.started_at (clock_timestamp() of the
    body's own committed insert) > pgqrs.steps.completed_at (pgqrs.now() = statement_timestamp() of the
    complete_step call). Both come from the server's clock;
  * repeated executions (side rows beyond the first per (run, step)) <= the step bodies in flight at the
    faults (measured: started before the fault by an affected process, recorded after it) <= the nominal
    bound (faults x concurrency);
  * time to resume / recover after each fault, over the runs the fault hit: to the next body start and to the
    next recorded step (or the run's end);
  * every repeated step execution is explained by a fault that hit its earlier execution's process or the
    server while that execution's result was not yet durable (tests/chaos/repeats.py, from the workers'
    event files, a log of every lease and step journal change, and the faults); the others are printed in
    full. The lease log also shows that no lease was taken over before it expired.

Fault instants are taken from the harness's wall clock; the server runs on the same host and clock.

This file runs a scenario (ScenarioRunner); the cluster is in chaos_cluster.py, the checks in
chaos_checks.py, the scenario and result types and the reports in chaos_results.py, the lease race in
chaos_race.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "pgqrs_py"))
sys.path.insert(0, str(HERE))
from chaos_checks import ScenarioChecks  # noqa: E402
from chaos_cluster import Cluster, log, utcnow  # noqa: E402
from chaos_results import Fault, Result, Scenario, WorkerSlot  # noqa: E402
from chaos_worker import QUEUE  # noqa: E402

WORKER_APP_PREFIX = "chaos-w-"
TRIGGER = "select run_id from pgqrs.trigger(p_workflow => %s, p_input => %s::jsonb, p_idempotency_key => %s)"


# ---- running a scenario ------------------------------------------------------------------------------------


class ScenarioRunner(ScenarioChecks):
    def __init__(self, cluster: Cluster, sc: Scenario, logdir: Path, seed: int = 1) -> None:
        self.cluster = cluster
        self.sc = sc
        self.seed = seed
        self.rng = random.Random(seed)
        self.logdir = logdir / sc.name
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.db = f"chaos_{sc.name}"
        self.dsn = ""
        self.slots = [WorkerSlot(f"w{i + 1}") for i in range(sc.workers)]
        self.faults: list[Fault] = []
        self.unexpected_deaths: list[str] = []
        self.triggered = 0
        self.trigger_retries = 0
        self.stop_supervisor = False
        self._pending: list[asyncio.Task[None]] = []

    # -- worker processes --

    def _spawn(self, slot: WorkerSlot) -> None:
        dsn = self.cluster.dsn(self.db, app=f"{WORKER_APP_PREFIX}{slot.name}")
        out = open(self.logdir / f"{slot.name}.log", "ab")
        slot.proc = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "chaos_worker.py"),
                "--dsn",
                dsn,
                "--name",
                slot.name,
                "--concurrency",
                str(self.sc.concurrency),
                "--visibility",
                str(self.sc.visibility),
                "--events",
                str(self.logdir / f"events-{slot.name}.jsonl"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=str(REPO),
        )
        out.close()
        slot.expected_dead = False
        slot.pids.append(slot.proc.pid)

    def _alive(self) -> list[WorkerSlot]:
        return [s for s in self.slots if s.proc is not None and s.proc.poll() is None]

    async def _supervise(self) -> None:
        """Restarts a worker that died on its own (not killed by us): a bug to report; the run goes on."""
        while not self.stop_supervisor:
            for slot in self.slots:
                if slot.proc is not None and slot.proc.poll() is not None and not slot.expected_dead:
                    tail = (
                        (self.logdir / f"{slot.name}.log")
                        .read_text(errors="replace")
                        .strip()
                        .splitlines()[-3:]
                    )
                    msg = (
                        f"worker {slot.name} pid {slot.proc.pid} exited by itself "
                        f"(rc {slot.proc.returncode}) "
                        f"at {utcnow():%H:%M:%S}: {' | '.join(tail)[-400:]}"
                    )
                    log("UNEXPECTED " + msg)
                    self.unexpected_deaths.append(msg)
                    self._spawn(slot)
            await asyncio.sleep(0.25)

    async def _wait_ready(self, timeout: float = 120.0) -> None:
        """Until every first worker process has registered (its log says READY): the faults must find them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            logs = [(self.logdir / f"{s.name}.log").read_text(errors="replace") for s in self.slots]
            if all("READY" in text for text in logs):
                return
            if any(s.proc is not None and s.proc.poll() is not None for s in self.slots):
                raise RuntimeError(f"a worker died at start; see {self.logdir}")
            await asyncio.sleep(0.1)
        raise RuntimeError(f"workers not ready after {timeout} s; see {self.logdir}")

    async def _stop_workers(self) -> None:
        for slot in self.slots:
            slot.expected_dead = True
            if slot.proc is not None and slot.proc.poll() is None:
                slot.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.sc.visibility + 15
        while time.monotonic() < deadline and self._alive():
            await asyncio.sleep(0.1)
        for slot in self._alive():
            log(f"worker {slot.name} pid {slot.proc.pid} ignored SIGTERM; SIGKILL")  # type: ignore[union-attr]
            self.unexpected_deaths.append(
                f"worker {slot.name} did not stop on SIGTERM within {self.sc.visibility + 15:.0f} s"
            )
            slot.proc.kill()  # type: ignore[union-attr]
            slot.proc.wait()  # type: ignore[union-attr]

    # -- faults --

    async def _sigkill(self) -> Fault:
        slot = self.rng.choice(self._alive())
        assert slot.proc is not None
        slot.expected_dead = True
        pid = slot.proc.pid
        at = utcnow()
        os.kill(pid, signal.SIGKILL)
        slot.proc.wait()
        fault = Fault("sigkill", at, utcnow(), [pid], [slot.name])
        await asyncio.sleep(self.sc.respawn_delay)
        self._spawn(slot)
        return fault

    async def _sigstop(self) -> Fault:
        """Freezes a worker (a long GC pause, a VM stall) for twice the visibility timeout, then thaws it: its
        leases expire meanwhile and other workers take its runs over."""
        slot = self.rng.choice(self._alive())
        assert slot.proc is not None
        pid = slot.proc.pid
        at = utcnow()
        os.kill(pid, signal.SIGSTOP)
        fault = Fault("sigstop", at, at, [pid], [slot.name], f"frozen {2 * self.sc.visibility:g} s")

        async def thaw() -> None:  # in the background: the fault schedule goes on meanwhile
            await asyncio.sleep(2 * self.sc.visibility)
            os.kill(pid, signal.SIGCONT)
            fault.until = utcnow()

        self._pending.append(asyncio.create_task(thaw()))
        return fault

    async def _pg_restart(self) -> Fault:
        pids = [s.proc.pid for s in self._alive()]  # type: ignore[union-attr]
        at = utcnow()
        took = await asyncio.to_thread(self.cluster.restart_immediate)
        return Fault(
            "pg_restart", at, utcnow(), pids, [s.name for s in self.slots], f"restart took {took:.2f} s", took
        )

    async def _pg_terminate(self) -> Fault:
        alive = {s.name: s.proc.pid for s in self._alive()}  # type: ignore[union-attr]
        async with await psycopg.AsyncConnection.connect(self.cluster.dsn(self.db), autocommit=True) as c:
            at = utcnow()
            cur = await c.execute(
                "select application_name, pg_terminate_backend(pid) from pg_stat_activity"
                " where application_name like %s and pid <> pg_backend_pid()",
                (WORKER_APP_PREFIX + "%",),
            )
            rows = await cur.fetchall()
            until = utcnow()
        names = sorted({r[0][len(WORKER_APP_PREFIX) :] for r in rows if r[1]})
        return Fault(
            "pg_terminate",
            at,
            until,
            [alive[n] for n in names if n in alive],
            names,
            f"{sum(1 for r in rows if r[1])} backends terminated",
        )

    async def _inject(self, start: float) -> None:
        for offset, kind in sorted(self.sc.faults):
            await asyncio.sleep(max(0.0, start + offset - time.monotonic()))
            fault = await {
                "sigkill": self._sigkill,
                "pg_restart": self._pg_restart,
                "pg_terminate": self._pg_terminate,
                "sigstop": self._sigstop,
            }[kind]()
            self.faults.append(fault)
            log(
                f"{self.sc.name}: {kind} at +{time.monotonic() - start:.1f} s "
                f"({', '.join(fault.names)}{'; ' + fault.detail if fault.detail else ''})"
            )
        await asyncio.gather(*self._pending)

    # -- load --

    async def _produce(self, start: float) -> None:
        conn: psycopg.AsyncConnection[Any] | None = None
        for n in range(self.sc.runs):
            await asyncio.sleep(max(0.0, start + n / self.sc.rate - time.monotonic()))
            payload = json.dumps({"n": n, "sleeps": self.sc.sleeps(n, self.seed)})
            while True:
                try:
                    if conn is None or conn.closed:
                        conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
                    await conn.execute(TRIGGER, (QUEUE, payload, f"chaos-{n}"))
                    break
                except psycopg.OperationalError:
                    self.trigger_retries += 1
                    if conn is not None:
                        await conn.close()
                    conn = None
                    await asyncio.sleep(0.2)
            self.triggered = n + 1
        if conn is not None:
            await conn.close()

    async def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """A read that survives the server restarting under it."""
        for attempt in range(100):
            try:
                async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as c:
                    cur = await c.execute(sql, params)
                    return await cur.fetchall()
            except psycopg.OperationalError:
                if attempt == 99:
                    raise
                await asyncio.sleep(0.3)
        raise AssertionError("unreachable")

    async def _drain(self) -> float:
        deadline = time.monotonic() + self.sc.drain_timeout
        t0 = time.monotonic()
        while time.monotonic() < deadline:
            rows = await self._query(
                "select count(*) filter (where status in ('SUCCESS', 'ERROR', 'CANCELLED')),"
                " count(*) from pgqrs.runs"
            )
            done, total = rows[0]
            if total >= self.sc.runs and done >= total:
                break
            await asyncio.sleep(0.5)
        return time.monotonic() - t0

    # -- the run --

    async def run(self) -> Result:
        sc = self.sc
        log(
            f"== {sc.name}: {sc.title} ({sc.runs} runs, {sc.workers} workers x {sc.concurrency}, "
            f"visibility {sc.visibility} s, faults {', '.join(k for _o, k in sc.faults) or 'none'})"
        )
        self.dsn = await asyncio.to_thread(self.cluster.create_db, self.db)
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as c:
            await c.execute(
                "select pgqrs.create_workflow(%s, %s::jsonb)",
                (QUEUE, json.dumps({"max_attempts": 5, "base_seconds": 0.2, "max_seconds": 2})),
            )
        for slot in self.slots:
            self._spawn(slot)
        await self._wait_ready()
        supervisor = asyncio.create_task(self._supervise())
        t_start = time.monotonic()
        wall_start = utcnow()
        try:
            await asyncio.gather(self._produce(t_start), self._inject(t_start))
            t_load = time.monotonic() - t_start
            drain = await self._drain()
        finally:
            self.stop_supervisor = True
            await supervisor
            await self._stop_workers()
        elapsed = time.monotonic() - t_start
        log(f"{sc.name}: load {t_load:.1f} s, drained in {drain:.1f} s")
        return await self._analyse(wall_start, elapsed)
