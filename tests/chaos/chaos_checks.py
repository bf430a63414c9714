"""The checks of a finished chaos scenario (../shared/DESIGN.md §4, listed in tests/chaos/chaos_harness.py's
docstring), made from the database, the side table chaos.side, the workers' event files and the faults.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "pgqrs_py"))
sys.path.insert(0, str(HERE))
from chaos_results import (  # noqa: E402
    EVERY_REPEAT_EXPLAINED,
    M_AFTER,
    M_BOUND,
    M_EXPLAINED,
    M_INFLIGHT,
    M_LOST,
    M_RECOVER,
    M_REPEAT,
    M_RESUME,
    NO_BODY_AFTER_SUCCESS,
    Check,
    Result,
)
from chaos_worker import STEPS, expected_output, step_value  # noqa: E402
from repeats import (  # noqa: E402
    LEASE_LOG_QUERY,
    STEP_LOG_QUERY,
    FaultWindow,
    Repeat,
    executions,
    explain,
    lease_violations,
    load_events,
)

# a worker leases a run a little before the run's first step body starts (handler start, side connection)
DEQUEUE_SLACK = dt.timedelta(seconds=0.5)


def _ms(seconds: list[float]) -> str:
    if not seconds:
        return "–"
    s = sorted(seconds)
    return f"median {statistics.median(s):.2f} s, max {s[-1]:.2f} s (n={len(s)})"


class ScenarioChecks:
    """The checks, mixed into ScenarioRunner (chaos_harness.py): they read its state (scenario, cluster,
    faults, log directory) once the runs are drained."""

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
