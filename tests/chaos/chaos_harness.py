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
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "pgqrs_py"))
sys.path.insert(0, str(HERE))
from chaos_worker import QUEUE, STEPS, expected_output, step_value  # noqa: E402
from repeats import (  # noqa: E402
    LEASE_LOG_DDL,
    LEASE_LOG_QUERY,
    STEP_LOG_QUERY,
    FaultWindow,
    Repeat,
    executions,
    explain,
    lease_violations,
    load_events,
)

import pgqrs  # noqa: E402

PGBIN = Path(os.environ.get("PGQRS_PGBIN", "/usr/lib/postgresql/15/bin"))
WORKER_APP_PREFIX = "chaos-w-"
# a worker leases a run a little before the run's first step body starts (handler start, side connection)
DEQUEUE_SLACK = dt.timedelta(seconds=0.5)

# the measures every scenario reports (keys of Result.metrics)
NO_BODY_AFTER_SUCCESS = "no step body started after its success was recorded"
M_LOST = "runs lost (missing, ERROR, stuck, wrong output)"
M_AFTER = "step bodies started after their success was recorded"
M_REPEAT = "repeated executions (in-flight re-executions)"
M_EXPLAINED = "repeats explained / unexplained (by a fault on the executing process or the server)"
EVERY_REPEAT_EXPLAINED = "every repeated step execution is explained by a fault (tests/chaos/repeats.py)"
M_INFLIGHT = "runs in flight at the faults (interrupted deliveries, measured)"
M_BOUND = "nominal bound (faults x concurrency)"
M_RESUME = "time to resume (fault -> next body start of a hit run)"
M_RECOVER = "time to recover (fault -> next recorded step of a hit run)"

SIDE_DDL = """
create schema if not exists chaos;
create table if not exists chaos.side (
    side_id bigint generated always as identity primary key,
    run_id bigint not null,
    step_id text not null,
    run_attempt integer not null,
    pid integer not null,
    worker text not null,
    lease_token uuid,
    started_at timestamptz not null
);
create index if not exists side_run_step_idx on chaos.side (run_id, step_id);
"""

TRIGGER = "select run_id from pgqrs.trigger(p_workflow => %s, p_input => %s::jsonb, p_idempotency_key => %s)"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def log(msg: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---- the cluster -------------------------------------------------------------------------------------------


class Cluster:
    """A throwaway cluster of our own (scripts/pg.sh), which we may restart with `-m immediate`."""

    def __init__(self, pgdir: str | None = None) -> None:
        self.pgdir = Path(pgdir or f"/tmp/pgqrs-chaos-{os.getpid()}")
        # fsync off (speed; the OS does not crash here) but synchronous_commit on: a commit the client saw
        # must survive `-m immediate`, as on any durable deployment (off, the last ~200 ms of commits vanish).
        self.env = {
            **os.environ,
            "PGQRS_PGDIR": str(self.pgdir),
            "PGQRS_FSYNC": "off",
            "PGQRS_SYNC_COMMIT": "on",
        }
        self.restarts: list[float] = []

    def _pg_sh(self, *args: str) -> None:
        subprocess.run(
            [str(REPO / "scripts" / "pg.sh"), *args],
            env=self.env,
            check=True,
            timeout=180,
            stdout=subprocess.DEVNULL,
        )

    def start(self) -> None:
        self._pg_sh("start")
        # commit times of the lease and step logs (repeats.py): a restart makes the setting take effect
        with psycopg.connect(self.dsn(), autocommit=True) as c:
            on = c.execute("show track_commit_timestamp").fetchone()[0] == "on"  # type: ignore[index]
            if not on:
                c.execute("alter system set track_commit_timestamp = on")
        if not on:
            self._pg_sh("stop")
            self._pg_sh("start")

    def stop(self) -> None:
        try:
            self._pg_sh("stop")
        except subprocess.SubprocessError as exc:
            log(f"stopping {self.pgdir} failed: {exc}")

    def remove(self) -> None:
        shutil.rmtree(self.pgdir, ignore_errors=True)

    def _as_server(self, cmd: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return cmd
        runuser = shutil.which("runuser", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") or "runuser"
        return [runuser, "-u", "postgres", "--", *cmd]

    def restart_immediate(self) -> float:
        """`pg_ctl restart -m immediate`: every backend dies at once, then crash recovery; returns the time.
        `-l` keeps the new postmaster's output in server.log (not on our pipe)."""
        cmd = self._as_server(
            [
                str(PGBIN / "pg_ctl"),
                "-D",
                str(self.pgdir),
                "-l",
                str(self.pgdir / "server.log"),
                "-m",
                "immediate",
                "-w",
                "-t",
                "120",
                "restart",
            ]
        )
        t0 = time.monotonic()
        subprocess.run(
            cmd, check=True, timeout=180, cwd="/tmp", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        took = time.monotonic() - t0
        self.restarts.append(took)
        return took

    def dsn(self, dbname: str = "postgres", app: str = "chaos-harness") -> str:
        return make_conninfo(
            host=str(self.pgdir),
            port="5432",
            user="postgres",
            dbname=dbname,
            application_name=app,
            connect_timeout="10",
        )

    def create_db(self, name: str) -> str:
        with psycopg.connect(self.dsn(), autocommit=True) as c:
            c.execute("set client_min_messages = warning")
            c.execute(f'drop database if exists "{name}" with (force)')
            c.execute(f'create database "{name}"')
        dsn = self.dsn(name)
        pgqrs.install(dsn)
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("set client_min_messages = warning")
            c.execute(SIDE_DDL)
            c.execute(LEASE_LOG_DDL)
        return dsn


# ---- scenarios ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Scenario:
    name: str
    title: str
    runs: int
    faults: list[
        tuple[float, str]
    ]  # (seconds after the first trigger, "sigkill" | "pg_restart" | "pg_terminate")
    workers: int = 3
    concurrency: int = 4
    visibility: float = 3.0
    rate: float = 8.0  # runs triggered per second
    step_sleep: tuple[float, float] = (0.05, 0.25)
    long_step: float | None = None  # when set, step s1 of every run takes this long (> visibility)
    drain_timeout: float = 120.0
    known_issues: dict[str, str] = dataclasses.field(default_factory=dict)  # check name -> reference
    respawn_delay: float = (
        0.3  # after a SIGKILL, a new worker process with the same name starts this much later
    )

    def sleeps(self, n: int, seed: int) -> list[float]:
        rng = random.Random(seed * 1_000_003 + n)
        out = [round(rng.uniform(*self.step_sleep), 3) for _ in range(STEPS)]
        if self.long_step is not None:
            out[1] = self.long_step
        return out


@dataclasses.dataclass
class Fault:
    kind: str
    at: dt.datetime  # just before the fault's action
    until: (
        dt.datetime
    )  # once the action is complete (the process dead, the server back up, the backends gone)
    pids: list[int]
    names: list[str]
    detail: str = ""
    duration: float = 0.0


@dataclasses.dataclass
class WorkerSlot:
    name: str
    proc: subprocess.Popen[bytes] | None = None
    expected_dead: bool = False
    pids: list[int] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""
    known_issue: str = ""  # set when a failure is a known, reported issue: shown, but does not fail the run

    @property
    def verdict(self) -> str:
        if self.ok:
            return "pass"
        detail = self.detail.replace("|", "/")
        return f"KNOWN ISSUE ({self.known_issue}): {detail}" if self.known_issue else f"FAIL: {detail}"


@dataclasses.dataclass
class Result:
    scenario: str
    title: str
    metrics: dict[str, Any]
    checks: list[Check]
    notes: list[str]

    @property
    def ok(self) -> bool:
        return all(c.ok or c.known_issue for c in self.checks)

    @property
    def verdict(self) -> str:
        if not self.ok:
            return "FAIL"
        known = [c.known_issue for c in self.checks if not c.ok]
        return f"pass, known issue hit: {'; '.join(known)}" if known else "pass"


def _ms(seconds: list[float]) -> str:
    if not seconds:
        return "–"
    s = sorted(seconds)
    return f"median {statistics.median(s):.2f} s, max {s[-1]:.2f} s (n={len(s)})"


class ScenarioRunner:
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

    # -- the checks --

    async def _explain_repeats(self) -> tuple[list[Repeat], list[str]]:
        (self.logdir / "faults.json").write_text(
            json.dumps([{**dataclasses.asdict(f), "at": f.at.timestamp(), "until": f.until.timestamp()}
                        for f in self.faults])
        )
        side = await self._query(
            "select run_id, step_id, run_attempt, pid, worker, lease_token, started_at from chaos.side"
            " order by started_at, side_id"
        )
        events = load_events(sorted(self.logdir.glob("events-*.jsonl")))
        faults = [
            FaultWindow(f.kind, f.at.timestamp(), f.until.timestamp(), f.pids, f.names, f.detail)
            for f in self.faults
        ]
        lease_log = await self._query(LEASE_LOG_QUERY)
        step_log = await self._query(STEP_LOG_QUERY)
        worker_log = "\n".join(p.read_text(errors="replace") for p in sorted(self.logdir.glob("*.log")))
        repeats = explain(executions(side, events), faults, lease_log, step_log, worker_log)
        return repeats, lease_violations(lease_log)

    async def _analyse(self, wall_start: dt.datetime, elapsed: float) -> Result:
        sc = self.sc
        runs = await self._query("select run_id, status, input, output, attempt, finished_at from pgqrs.runs")
        steps = await self._query("select run_id, step_id, status, value, completed_at from pgqrs.steps")
        side = await self._query(
            "select run_id, step_id, run_attempt, pid, started_at from chaos.side"
            " order by started_at, side_id"
        )
        checks: list[Check] = []
        notes: list[str] = []

        by_n: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        for r in runs:
            by_n[int(r[2]["n"])].append(r)
        missing = [n for n in range(sc.runs) if n not in by_n]
        dupes = [n for n, rs in by_n.items() if len(rs) > 1]
        checks.append(
            Check(
                "every triggered run exists exactly once",
                not missing and not dupes,
                f"missing {missing[:10]}, duplicated {dupes[:10]}",
            )
        )
        status_count: dict[str, int] = defaultdict(int)
        for r in runs:
            status_count[r[1]] += 1
        bad_output = [r[0] for r in runs if r[1] == "SUCCESS" and r[3] != expected_output(int(r[2]["n"]))]
        not_success = [(r[0], r[1]) for r in runs if r[1] != "SUCCESS"]
        lost = len(missing) + len(not_success) + len(bad_output)
        checks.append(
            Check(
                "every run SUCCESS with the right output (none lost, none stuck)",
                lost == 0,
                f"not SUCCESS {not_success[:10]}, wrong output {bad_output[:10]}",
            )
        )

        run_n = {r[0]: int(r[2]["n"]) for r in runs}
        completed: dict[tuple[int, str], dt.datetime] = {}
        bad_steps = []
        for run_id, step_id, status, value, completed_at in steps:
            k = int(step_id[1:])
            if status != "SUCCESS" or value != {"k": k, "v": step_value(run_n[run_id], k)}:
                bad_steps.append((run_id, step_id, status))
            else:
                completed[(run_id, step_id)] = completed_at
        success_runs = {r[0] for r in runs if r[1] == "SUCCESS"}
        missing_steps = [
            (rid, f"s{k}") for rid in success_runs for k in range(STEPS) if (rid, f"s{k}") not in completed
        ]
        checks.append(
            Check(
                "every step of a finished run SUCCESS with its value",
                not bad_steps and not missing_steps,
                f"bad {bad_steps[:10]}, missing {missing_steps[:10]}",
            )
        )

        rows_by_step: dict[tuple[int, str], list[tuple[int, dt.datetime]]] = defaultdict(list)
        for run_id, step_id, _attempt, pid, started_at in side:
            rows_by_step[(run_id, step_id)].append((pid, started_at))
        never_ran = [key for key in completed if key not in rows_by_step]
        checks.append(Check("every recorded step's body ran (side row)", not never_ran, f"{never_ran[:10]}"))

        after_success = [
            (key, pid, started, completed[key])
            for key, rows in rows_by_step.items()
            for pid, started in rows
            if key in completed and started > completed[key]
        ]
        checks.append(
            Check(
                NO_BODY_AFTER_SUCCESS,
                not after_success,
                "; ".join(
                    f"run {k[0]} {k[1]} pid {p} started {s:%H:%M:%S.%f} > completed {c:%H:%M:%S.%f}"
                    for k, p, s, c in after_success[:5]
                ),
            )
        )
        margins = [
            (completed[key] - max(s for _p, s in rows)).total_seconds()
            for key, rows in rows_by_step.items()
            if key in completed
        ]

        reexec = sum(len(rows) - 1 for rows in rows_by_step.values())

        # Deliveries: a run's bodies under one lease share its delivery number (runs.attempt at dequeue).
        # Within one delivery each step runs at most once, so a repeated body always means an interrupted
        # delivery: one followed by another delivery of the same run. A fault explains an interrupted delivery
        # when it hit the delivery's process while it was live: from its first body start - DEQUEUE_SLACK (the
        # lease is taken a little before the first body starts) to the next delivery's first body start.
        finished = {r[0]: r[5] for r in runs}
        deliveries: dict[int, dict[int, list[tuple[int, dt.datetime]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for run_id, _step_id, attempt, pid, started_at in side:
            deliveries[run_id][attempt].append((pid, started_at))
        steps_by_run: dict[int, list[dt.datetime]] = defaultdict(list)
        for (run_id, _sid), c_at in completed.items():
            steps_by_run[run_id].append(c_at)
        hits_per_fault = [0] * len(self.faults)
        unexplained = []
        resume: list[float] = []
        recover: list[float] = []
        interrupted = 0
        hit_again = 0
        for run_id, by_attempt in deliveries.items():
            attempts = sorted(by_attempt)
            for a, nxt in zip(attempts, attempts[1:], strict=False):
                interrupted += 1
                pid = by_attempt[a][0][0]
                first = by_attempt[a][0][1]
                next_start = by_attempt[nxt][0][1]
                hit = [
                    i
                    for i, f in enumerate(self.faults)
                    if pid in f.pids and f.until >= first - DEQUEUE_SLACK and f.at <= next_start
                ]
                if not hit:
                    unexplained.append((run_id, a, pid, first, next_start))
                    continue
                f = self.faults[hit[0]]
                hits_per_fault[hit[0]] += 1
                if nxt != attempts[-1]:
                    hit_again += 1  # the delivery that took over was interrupted too
                resume.append((next_start - f.at).total_seconds())
                ends = [c for c in steps_by_run[run_id] if c > f.at]
                if finished.get(run_id) is not None:
                    ends.append(finished[run_id])
                if ends:
                    recover.append((min(ends) - f.at).total_seconds())
        in_flight = sum(hits_per_fault)
        nominal = sum(
            sc.concurrency * (len(f.pids) if f.kind not in ("sigkill", "sigstop") else 1) for f in self.faults
        )
        checks.append(
            Check(
                "repeated executions <= runs in flight at the faults <= faults x concurrency",
                reexec <= interrupted and in_flight <= nominal,
                f"repeated {reexec}, interrupted deliveries {interrupted} (in flight at a fault "
                f"{in_flight}), nominal bound {nominal}",
            )
        )
        checks.append(
            Check(
                "every interrupted delivery was in flight at a fault that hit its worker",
                not unexplained,
                "; ".join(
                    f"run {r} delivery {a} pid {p} first body {b:%H:%M:%S.%f}, next delivery {n:%H:%M:%S.%f}"
                    for r, a, p, b, n in unexplained[:5]
                ),
            )
        )
        repeats, bad_leases = await self._explain_repeats()
        checks.append(
            Check(
                "no lease taken over before it expired, none extended after (lease log)",
                not bad_leases,
                "; ".join(bad_leases[:5]),
            )
        )
        unexplained_repeats = [r for r in repeats if not r.explained]
        checks.append(
            Check(
                EVERY_REPEAT_EXPLAINED,
                not unexplained_repeats,
                "; ".join(
                    f"run {r.execution.run_id} {r.execution.step_id}: {r.reason}"
                    for r in unexplained_repeats[:5]
                ),
            )
        )
        for r in repeats:
            if r.evidence:
                kind = "Explained" if r.explained else "Unexplained"
                notes.append(f"{kind} repeat ({r.reason}):\n\n```\n" + "\n".join(r.evidence) + "\n```")
        by_cause: dict[str, int] = defaultdict(int)
        for r in repeats:
            by_cause[r.cause] += 1
        if sc.long_step is not None:
            redelivered = [r[0] for r in runs if r[4] != 1]
            long_runs = [rows_by_step.get((r[0], "s1"), []) for r in runs]
            checks.append(
                Check(
                    f"steps of {sc.long_step:.0f} s (> visibility {sc.visibility:.0f} s) ran once, "
                    "runs delivered once (heartbeats kept the leases)",
                    not redelivered and all(len(x) == 1 for x in long_runs) and reexec == 0,
                    f"redelivered runs {redelivered[:10]}, repeated bodies {reexec}",
                )
            )
        checks.append(
            Check(
                "no worker process died by itself",
                not self.unexpected_deaths,
                " || ".join(self.unexpected_deaths)[:2000],
            )
        )

        worker_logs = "\n".join(p.read_text(errors="replace") for p in sorted(self.logdir.glob("*.log")))
        counts = {
            k: worker_logs.count(k)
            for k in ("lease on run", "interrupted by a lost connection", "unexpected error", "Traceback")
        }
        for marker in ("unexpected error", "Traceback"):
            if marker in worker_logs:
                i = worker_logs.index(marker)
                excerpt = worker_logs[worker_logs.rfind("\n", 0, i) + 1 :][:1500]
                notes.append(f"first '{marker}' in the worker logs:\n\n```\n{excerpt}\n```")
                break
        kinds: dict[str, int] = defaultdict(int)
        for f in self.faults:
            kinds[f.kind] += 1
        restarts = [f.duration for f in self.faults if f.kind == "pg_restart"]
        metrics = {
            "runs": sc.runs,
            "workers x concurrency": f"{sc.workers} x {sc.concurrency}",
            "visibility timeout": f"{sc.visibility:g} s (heartbeat every {sc.visibility / 3:.1f} s)",
            "step durations": (
                f"{sc.step_sleep[0]:g}-{sc.step_sleep[1]:g} s"
                + (f"; s1 {sc.long_step:g} s" if sc.long_step else "")
            ),
            "faults": ", ".join(f"{v} {k}" for k, v in kinds.items()) or "none",
            "runs SUCCESS": status_count.get("SUCCESS", 0),
            M_LOST: lost,
            M_AFTER: len(after_success),
            "step bodies executed": len(side),
            M_REPEAT: reexec,
            M_EXPLAINED: f"{len(repeats) - len(unexplained_repeats)} / {len(unexplained_repeats)}",
            "repeats by cause": ", ".join(f"{k}: {v}" for k, v in sorted(by_cause.items())) or "–",
            M_INFLIGHT: in_flight,
            M_BOUND: nominal,
            M_RESUME: _ms(resume),
            M_RECOVER: _ms(recover),
            "hit runs whose taking-over delivery was interrupted too": hit_again,
            "closest body start before its recorded success": (
                f"{min(margins) * 1000:.1f} ms" if margins else "–"
            ),
            "worker processes that died by themselves": len(self.unexpected_deaths),
            "worker log: leases lost / runs interrupted by a lost connection / unexpected errors": (
                f"{counts['lease on run']} / {counts['interrupted by a lost connection']} / "
                f"{counts['unexpected error']}"
            ),
            "trigger calls retried (lost connection)": self.trigger_retries,
            "wall time": f"{elapsed:.1f} s",
        }
        if restarts:
            metrics["PostgreSQL restart duration"] = ", ".join(f"{d:.2f} s" for d in restarts)
        if hits_per_fault:
            metrics["runs in flight per fault"] = " ".join(str(x) for x in hits_per_fault)
        for c in checks:
            c.known_issue = sc.known_issues.get(c.name, "")
        return Result(sc.name, sc.title, metrics, checks, notes)


# ---- the lease race (SQL API, two connections) -------------------------------------------------------------


def race_scenario(cluster: Cluster, rounds: int = 60) -> Result:
    """Two workers (B, C) race for one expired lease with simultaneous dequeues; then the winner and the
    old holder (A) race to record the step and finish the run. Half the rounds expire A's lease for real
    (visibility 0.2 s, wait 0.35 s); the other half give A a 60 s lease and move B's and C's clock past it
    (`set pgqrs.now`): a takeover. Exactly one of B and C gets the run; only the winner's writes land."""
    log(f"== race: two workers racing for one expired lease ({rounds} rounds)")
    t0 = time.monotonic()
    dsn = cluster.create_db("chaos_race")
    conns = {
        w: psycopg.connect(make_conninfo(dsn, application_name=f"chaos-race-{w}"), autocommit=True)
        for w in ("admin", "A", "B", "C")
    }
    try:
        admin = conns["admin"]
        admin.execute("select pgqrs.create_workflow('race')")
        wid = {
            w: admin.execute(
                "select pgqrs.register_worker(%s, %s, null, 'race')", (f"race-{w}", socket.gethostname())
            ).fetchone()[0]  # type: ignore[index]
            for w in ("A", "B", "C")
        }
        dequeue = (
            "select message_id, lease_token from pgqrs.dequeue(p_queue => 'race', p_worker => %s,"
            " p_batch_size => 1, p_visibility => %s * interval '1 second')"
        )
        tally: dict[str, int] = defaultdict(int)
        failures: list[str] = []

        def writes(
            w: str, run_id: int, token: Any, barrier: threading.Barrier, out: dict[str, list[str]]
        ) -> None:
            res: list[str] = []
            barrier.wait()
            for sql, args in (
                ("select status from pgqrs.acquire_step(%s, 's1', %s)", (run_id, token)),
                ("select pgqrs.complete_step(%s, 's1', %s, %s::jsonb)", (run_id, token, json.dumps(w))),
                ("select pgqrs.complete_run(%s, %s, %s::jsonb)", (run_id, token, json.dumps({"by": w}))),
            ):
                try:
                    conns[w].execute(sql, args).fetchall()
                    res.append("ok")
                except psycopg.Error as exc:
                    res.append(exc.sqlstate or type(exc).__name__)
            out[w] = res

        for r in range(rounds):
            takeover = r % 2 == 1
            run_id = admin.execute(
                "select run_id from pgqrs.trigger('race', %s::jsonb)", (json.dumps({"r": r}),)
            ).fetchone()[0]  # type: ignore[index]
            got_a = conns["A"].execute(dequeue, (wid["A"], 60 if takeover else 0.2)).fetchall()
            assert got_a and got_a[0][0] == run_id, f"A did not lease run {run_id}: {got_a}"
            token_a = got_a[0][1]
            if takeover:
                for w in ("B", "C"):
                    conns[w].execute(
                        "select set_config('pgqrs.now', (now() + interval '2 minutes')::text, false)"
                    )
            else:
                time.sleep(0.35)
            got: dict[str, list[tuple[Any, ...]]] = {}
            barrier = threading.Barrier(2)

            def deq(
                w: str, barrier: threading.Barrier = barrier, got: dict[str, list[tuple[Any, ...]]] = got
            ) -> None:
                barrier.wait()
                got[w] = conns[w].execute(dequeue, (wid[w], 30)).fetchall()

            threads = [threading.Thread(target=deq, args=(w,)) for w in ("B", "C")]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            winners = [w for w in ("B", "C") if got[w]]
            tally[
                "B wins" if winners == ["B"] else "C wins" if winners == ["C"] else "not exactly one winner"
            ] += 1
            if len(winners) != 1:
                failures.append(f"round {r}: dequeue winners {winners}")
                continue
            win = winners[0]
            token_w = got[win][0][1]
            out: dict[str, list[str]] = {}
            barrier2 = threading.Barrier(2)
            threads = [
                threading.Thread(target=writes, args=(win, run_id, token_w, barrier2, out)),
                threading.Thread(target=writes, args=("A", run_id, token_a, barrier2, out)),
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for w in ("B", "C"):
                conns[w].execute("select set_config('pgqrs.now', '', false)")
            for code in out["A"]:
                tally[f"old holder's write: {code}"] += 1
            if out[win] != ["ok", "ok", "ok"]:
                failures.append(f"round {r}: winner {win} writes {out[win]}")
            if any(code == "ok" for code in out["A"]):
                failures.append(f"round {r}: the old holder's writes {out['A']} (some landed)")
            row = admin.execute(
                "select r.status, r.output, (select jsonb_agg(jsonb_build_array(s.step_id, s.value))"
                " from pgqrs.steps as s where s.run_id = r.run_id), a.worker_id"
                " from pgqrs.runs as r left join pgqrs.messages_archive as a on a.message_id = r.run_id"
                " where r.run_id = %s",
                (run_id,),
            ).fetchone()
            want = ("SUCCESS", {"by": win}, [["s1", win]], wid[win])
            if tuple(row or ()) != want:
                failures.append(f"round {r}: stored {row}, expected {want}")
    finally:
        for c in conns.values():
            c.close()
    elapsed = time.monotonic() - t0
    checks = [
        Check(
            "of two simultaneous dequeues of one expired lease exactly one gets it",
            tally["not exactly one winner"] == 0,
            "; ".join(failures[:5]),
        ),
        Check(
            "only the new holder's writes land; the old holder gets QR004/QR003 and changes nothing",
            not failures,
            "; ".join(failures[:5]),
        ),
    ]
    metrics: dict[str, Any] = {
        "rounds": rounds,
        "expired-lease rounds": (rounds + 1) // 2,
        "takeover rounds (pgqrs.now moved)": rounds // 2,
    }
    metrics.update({k: v for k, v in sorted(tally.items())})
    metrics["wall time"] = f"{elapsed:.1f} s"
    log(f"race: {dict(tally)}")
    return Result(
        "race", "two workers racing for one expired lease (SQL API, two connections)", metrics, checks, []
    )


# ---- reporting ---------------------------------------------------------------------------------------------


def markdown(results: list[Result]) -> str:
    out = []
    for res in results:
        out.append(f"### {res.scenario}: {res.title}\n")
        out.append("| measure | value |\n|---|---|")
        for k, v in res.metrics.items():
            out.append(f"| {k} | {v} |")
        out.append("")
        out.append("| check | result |\n|---|---|")
        for c in res.checks:
            out.append(f"| {c.name} | {c.verdict} |")
        out.append("")
        for note in res.notes:
            out.append(note)
            out.append("")
    return "\n".join(out)


def summary_table(results: list[Result]) -> str:
    head = (
        "| scenario | runs | faults | runs lost | bodies after success | repeated / in flight / bound "
        "| repeats explained / unexplained | time to recover | result |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    rows = [head]
    for r in results:
        m = r.metrics
        if r.scenario == "race":
            rows.append(f"| race | {m['rounds']} rounds | – | – | – | – | – | – | {r.verdict} |")
            continue
        rows.append(
            f"| {r.scenario} | {m['runs']} | {m['faults']} | {m[M_LOST]} "
            f"| {m[M_AFTER]} "
            f"| {m[M_REPEAT]} / "
            f"{m[M_INFLIGHT]} / {m[M_BOUND]} "
            f"| {m[M_EXPLAINED]} | {m[M_RECOVER]} | {r.verdict} |"
        )
    return "\n".join(rows)
