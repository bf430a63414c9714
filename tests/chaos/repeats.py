"""Explains every repeated step execution of a chaos scenario (used by chaos_checks.py).

A repeat is a step body that started although the same (run, step) had started before. Each repeat is laid
next to the execution it repeats (the latest earlier one, "prev"), which is described by:

  * chaos.side: the body's committed start (server clock), its pid, worker, delivery (runs.attempt) and lease;
  * the worker's events file (chaos_worker.Events): body start / end and the outcome of ctx.step in that
    process: `step_done` (complete_step answered: the result is durable and acknowledged), `step_raised`
    (complete_step or the body failed: the exception), or nothing (the process died first);
  * chaos.lease_log: every change of the run's message (dequeue, heartbeat, release_run, archive) with the
    commit time of its transaction; chaos.step_log: every write of the step's journal row, likewise;
  * the faults (harness clock) and the worker log lines about the run.

The repeat is *explained* when a fault hit prev's process or the server while prev's delivery was live and
before prev's result was durable (acknowledged), i.e. the fault window overlaps [prev's delivery start,
prev's outcome]. Everything else is *unexplained* and is printed in full.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# The lease is taken a little before the delivery's handler starts, and a fault's recorded instant is taken
# just before its action: a fault this close before a window still counts as inside it.
SLACK = 0.5
# body starts come from the server's clock, fault instants from the harness's: same host, same clock
CLOCKS = 0.05

# the causes of a repeat
FAULT_DURING_STEP = "a fault while the step ran"
FAULT_BEFORE_STEP = "a fault earlier in the delivery"
STARTED_AFTER_KILL = "a start recorded after its process was killed"
ACKED = "acknowledged, yet repeated"
NO_FAULT = "no fault"

LEASE_LOG_DDL = """
create table if not exists chaos.lease_log (
    log_id bigint generated always as identity primary key,
    message_id bigint not null,
    op text not null,
    call text,
    old_token uuid,
    new_token uuid,
    old_visible timestamptz,
    new_visible timestamptz,
    worker_id bigint,
    read_count integer,
    stmt_at timestamptz not null,
    at timestamptz not null,
    backend integer not null,
    app text not null
);
create table if not exists chaos.step_log (
    log_id bigint generated always as identity primary key,
    run_id bigint not null,
    step_id text not null,
    op text not null,
    call text,
    old_status text,
    new_status text,
    attempt integer,
    stmt_at timestamptz not null,
    at timestamptz not null,
    backend integer not null,
    app text not null
);
create or replace function chaos.engine_call() returns text language sql stable as
$f$ select substring(current_query() from 'pgqrs\\.([a-z_]+)\\(') $f$;
-- security definer: the engine's functions run as its owner, who has no rights on schema chaos
create or replace function chaos.log_lease() returns trigger language plpgsql security definer
set search_path = pg_catalog, pg_temp as $f$
begin
    insert into chaos.lease_log (message_id, op, call, old_token, new_token, old_visible, new_visible,
                                 worker_id, read_count, stmt_at, at, backend, app)
    values (coalesce(new.message_id, old.message_id), tg_op, chaos.engine_call(),
            case when tg_op <> 'INSERT' then old.lease_token end,
            case when tg_op <> 'DELETE' then new.lease_token end,
            case when tg_op <> 'INSERT' then old.visible_at end,
            case when tg_op <> 'DELETE' then new.visible_at end,
            case when tg_op <> 'DELETE' then new.worker_id end,
            case when tg_op <> 'DELETE' then new.read_count end,
            statement_timestamp(), clock_timestamp(), pg_backend_pid(), current_setting('application_name'));
    return null;
end
$f$;
create or replace function chaos.log_step() returns trigger language plpgsql security definer
set search_path = pg_catalog, pg_temp as $f$
begin
    insert into chaos.step_log (run_id, step_id, op, call, old_status, new_status, attempt,
                                stmt_at, at, backend, app)
    values (new.run_id, new.step_id, tg_op, chaos.engine_call(),
            case when tg_op = 'UPDATE' then old.status end, new.status, new.attempt,
            statement_timestamp(), clock_timestamp(), pg_backend_pid(), current_setting('application_name'));
    return null;
end
$f$;
drop trigger if exists chaos_lease_log on pgqrs.messages;
create trigger chaos_lease_log after insert or update or delete on pgqrs.messages
for each row execute function chaos.log_lease();
drop trigger if exists chaos_step_log on pgqrs.steps;
create trigger chaos_step_log after insert or update on pgqrs.steps
for each row execute function chaos.log_step();
"""

# commit times need track_commit_timestamp (the harness turns it on for its cluster); NULL without it
COMMIT_TIME = (
    "case when current_setting('track_commit_timestamp') = 'on' then pg_xact_commit_timestamp(xmin) end"
)
LEASE_LOG_QUERY = (
    "select message_id, op, call, old_token, new_token, old_visible, new_visible, worker_id, read_count,"
    f" stmt_at, at, {COMMIT_TIME}, backend, app from chaos.lease_log order by log_id"
)
STEP_LOG_QUERY = (
    "select run_id, step_id, op, call, old_status, new_status, attempt, stmt_at, at,"
    f" {COMMIT_TIME}, backend, app from chaos.step_log order by log_id"
)


def ts(value: dt.datetime | float | None) -> float | None:
    if value is None:
        return None
    return value.timestamp() if isinstance(value, dt.datetime) else float(value)


def clock(t: float | None) -> str:
    if t is None:
        return "–"
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%H:%M:%S.%f")[:-3]


@dataclasses.dataclass
class FaultWindow:
    """A fault as the explanation sees it: what, whom (pids; empty = the server for everyone), when."""

    kind: str
    at: float
    until: float
    pids: list[int]
    names: list[str]
    detail: str = ""

    def hits(self, pid: int) -> bool:
        return pid in self.pids

    def describe(self) -> str:
        whom = ", ".join(f"{n}" for n in self.names)
        when = f"{clock(self.at)}–{clock(self.until)}"
        return f"{self.kind} ({whom}; pids {self.pids}) {when} {self.detail}".strip()


@dataclasses.dataclass
class Execution:
    run_id: int
    step_id: str
    pid: int
    worker: str
    attempt: int
    token: str
    started: float  # server clock (chaos.side): when the body's start insert ran
    entered: float | None = None  # the process's clock, just before that insert was sent
    body_end: float | None = None
    outcome: str | None = None  # "step_done" | "step_raised: <exc>" | None (no word: the process died)
    outcome_at: float | None = None
    delivery_start: float | None = None  # the handler's start in this delivery (events), else the lease's

    @property
    def acked(self) -> bool:
        return self.outcome == "step_done"

    def describe(self) -> str:
        return (
            f"{self.worker} pid {self.pid}, delivery {self.attempt} (lease {self.token[:8]}), "
            f"handler from {clock(self.delivery_start)}, body entered {clock(self.entered)}, start recorded "
            f"{clock(self.started)}, ended {clock(self.body_end)}, "
            f"outcome {self.outcome or 'none (process gone)'} at {clock(self.outcome_at)}"
        )


@dataclasses.dataclass
class Repeat:
    execution: Execution
    prev: Execution
    cause: str  # FAULT_DURING_STEP, FAULT_BEFORE_STEP, STARTED_AFTER_KILL, ACKED or NO_FAULT
    explained: bool
    reason: str
    evidence: list[str]


def load_events(paths: Iterable[Path]) -> list[dict[str, Any]]:
    out = []
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by SIGKILL
    return out


def executions(
    side: list[tuple[Any, ...]], events: list[dict[str, Any]]
) -> dict[tuple[int, str], list[Execution]]:
    """Every body start of chaos.side (run_id, step_id, run_attempt, pid, worker, lease_token, started_at),
    completed from the events of its process, grouped by (run, step) in start order."""
    by_key: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = defaultdict(dict)
    handler_start: dict[tuple[int, int, str], float] = {}
    for e in events:
        if e["ev"] == "handler_start":
            handler_start[(e["pid"], e["run"], e["token"])] = e["t"]
        elif "step" in e:
            # within one delivery a step runs at most once: one event of each kind per key
            by_key[(e["pid"], e["run"], e["step"], e["token"])][e["ev"]] = e
    out: dict[tuple[int, str], list[Execution]] = defaultdict(list)
    for run_id, step_id, attempt, pid, worker, token, started_at in side:
        token_s = str(token)
        evs = by_key.get((pid, run_id, step_id, token_s), {})
        ex = Execution(run_id, step_id, pid, worker, attempt, token_s, ts(started_at) or 0.0)
        if "body_enter" in evs:
            ex.entered = evs["body_enter"]["t"]
        if "body_end" in evs:
            ex.body_end = evs["body_end"]["t"]
        if "step_done" in evs:
            ex.outcome, ex.outcome_at = "step_done", evs["step_done"]["t"]
        elif "step_raised" in evs:
            ex.outcome, ex.outcome_at = f"step_raised: {evs['step_raised']['error']}", evs["step_raised"]["t"]
        ex.delivery_start = handler_start.get((pid, run_id, token_s))
        out[(run_id, step_id)].append(ex)
    for rows in out.values():
        rows.sort(key=lambda x: x.started)
    return out


def explain(
    execs: dict[tuple[int, str], list[Execution]],
    faults: list[FaultWindow],
    lease_log: list[tuple[Any, ...]],
    step_log: list[tuple[Any, ...]],
    worker_log: str,
) -> list[Repeat]:
    leases: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for row in lease_log:
        leases[row[0]].append(row)
    steps: dict[tuple[int, str], list[tuple[Any, ...]]] = defaultdict(list)
    for row in step_log:
        steps[(row[0], row[1])].append(row)
    repeats = []
    for key, rows in sorted(execs.items()):
        for i in range(1, len(rows)):
            ex, prev = rows[i], rows[i - 1]
            start = prev.delivery_start if prev.delivery_start is not None else prev.started
            # while prev's result was not durable: until ctx.step answered, else (no answer: the process
            # died or is still waiting) until the repeat started
            end = prev.outcome_at if prev.outcome_at is not None else ex.started
            end = min(end, ex.started)
            hit = [f for f in faults if f.hits(prev.pid) and f.at <= end and f.until >= start - SLACK]
            began = min(prev.started, prev.entered or prev.started)
            during_step = [f for f in hit if f.until >= began - CLOCKS]
            killed_first = [f for f in hit if f.kind == "sigkill" and f.at < prev.started]
            if killed_first and not prev.acked:
                # The body's start insert (chaos.side) was on its way when the process died and its backend
                # ran it after the kill: the body's first side effect landed, the rest of it never ran.
                cause, explained = STARTED_AFTER_KILL, True
                reason = (
                    f"{killed_first[0].describe()} hit the earlier execution's process as its body began: its"
                    " start insert was in flight, and the server recorded that start after the kill"
                )
            elif prev.acked:
                cause, explained = ACKED, False
                reason = "the earlier execution's result was acknowledged, yet the body ran again"
            elif during_step:
                cause, explained = FAULT_DURING_STEP, True
                reason = (
                    f"{during_step[0].describe()} hit the earlier execution's process while the step ran or"
                    " before its result was durable"
                )
            elif hit:
                cause, explained = FAULT_BEFORE_STEP, True
                reason = (
                    f"{hit[0].describe()} hit the earlier execution's delivery before the step began (its"
                    " connection died then); the step's result could not be written"
                )
            else:
                cause, explained = NO_FAULT, False
                reason = "no fault hit the process or the server while the earlier delivery was live"
            evidence = (
                []
                if cause == FAULT_DURING_STEP
                else _evidence(key, rows, faults, leases[key[0]], steps[key], worker_log)
            )
            repeats.append(Repeat(ex, prev, cause, explained, reason, evidence))
    return repeats


def _evidence(
    key: tuple[int, str],
    rows: list[Execution],
    faults: list[FaultWindow],
    lease_rows: list[tuple[Any, ...]],
    step_rows: list[tuple[Any, ...]],
    worker_log: str,
) -> list[str]:
    run_id, step_id = key
    lo = min((r.delivery_start or r.started) for r in rows) - 10
    hi = max(r.outcome_at or r.started for r in rows) + 10
    out = [f"run {run_id} step {step_id}: {len(rows)} executions"]
    out += [f"  execution {i + 1}: {r.describe()}" for i, r in enumerate(rows)]
    out.append("  faults from 10 s before to 10 s after:")
    out += [f"    {f.describe()}" for f in faults if f.until >= lo and f.at <= hi] or ["    none"]
    out.append("  the run's message (op call: token old->new, visible_at old->new, worker, read_count; "
               "statement / row / commit time; backend, app):")
    for (_m, op, call, old_t, new_t, old_v, new_v, wid, rc, stmt, at, commit, backend, app) in lease_rows:
        out.append(
            f"    {op:<6} {call or '?':<13} {str(old_t)[:8]}->{str(new_t)[:8]} "
            f"{clock(ts(old_v))}->{clock(ts(new_v))} worker_id {wid} rc {rc}; "
            f"{clock(ts(stmt))} / {clock(ts(at))} / {clock(ts(commit))}; {backend} {app}"
        )
    out.append(
        "  the step's journal row (op call: status, attempt; statement / row / commit time; backend, app):"
    )
    for (_r, _s, op, call, old_s, new_s, attempt, stmt, at, commit, backend, app) in step_rows:
        out.append(
            f"    {op:<6} {call or '?':<13} {old_s}->{new_s} attempt {attempt}; "
            f"{clock(ts(stmt))} / {clock(ts(at))} / {clock(ts(commit))}; {backend} {app}"
        )
    pattern = re.compile(rf"\brun {run_id}\b")
    lines = [line for line in worker_log.splitlines() if pattern.search(line)]
    out.append("  worker log lines about the run:")
    out += [f"    {line}" for line in lines] or ["    none"]
    return out


def lease_violations(lease_log: list[tuple[Any, ...]]) -> list[str]:
    """Lease changes the engine must never make, from chaos.lease_log: a dequeue that takes over a lease
    before it expired, or a heartbeat that extends an expired one. The engine's clock of a call is the
    statement's start (pgqrs.now() = statement_timestamp()), which the log keeps."""
    bad = []
    for row in lease_log:
        mid, op, call, old_t, new_t, old_v, new_v, stmt, app = (row[i] for i in (0, 1, 2, 3, 4, 5, 6, 9, 13))
        if op != "UPDATE" or old_t is None or old_v is None:
            continue
        lease = f"run {mid}: lease {str(old_t)[:8]} (until {old_v:%H:%M:%S.%f})"
        if call == "dequeue" and new_t != old_t and old_v > stmt:  # a takeover gives a new token
            bad.append(f"{lease} taken over at {stmt:%H:%M:%S.%f} by {app}")
        if call == "heartbeat" and old_t == new_t and old_v <= stmt and new_v != old_v:
            bad.append(f"{lease} extended after it expired, at {stmt:%H:%M:%S.%f} by {app}")
    return bad
