"""What a chaos scenario is and what it reports (tests/chaos/chaos_harness.py runs them): the Scenario, its
faults and worker slots, each Check and the Result with its measures, and the reports (markdown, summary
table) that tests/chaos/run_chaos.py writes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import subprocess
from typing import Any

from chaos_worker import STEPS

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
