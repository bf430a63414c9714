"""Flow control's cost (issue 16), for `make bench`: dequeue with priorities, concurrency keys and limits in
use, from 1 to 1M queued, and drains of 4 worker processes under each limit, each next to the figure with no
limits of the same run.

Two databases, each with the benchmark workflow (benchwf.WF) whose queue is filled by bulk SQL as depth.py
does (runs and messages straight into the tables, then VACUUM ANALYZE; set-up only):
  plain  every run of priority 0 and without a concurrency key
  mixed  priorities -2..2 and 1,000 concurrency keys, each spread over the runs by a hash of the run's n
Latency (depth.py's method: one client, the prepared pgqrs.dequeue of batch 1, each call in begin ... rollback
so the queue stays as it is): at 1 queued and at `depth` queued, with no limits and with each limit set
(pgqrs.set_workflow_limits). Per-key backlog: in the mixed queue, runs of one key `hot` ahead of all others
(the highest priority, the oldest), that key at its limit (per-key limit 1, one of its runs leased for an
hour): what a dequeue returns and costs with 100 and with `hot` such runs ahead.
Drains: `procs` worker processes (bench/worker.py: the stock consumer, concurrency 1) each time run `n` runs
of the deep queue under one setting, then stop (in-flight runs finish). runs/s over the DB window first
start -> last finish. A drain counts only if every run it started is SUCCESS with benchwf's output and steps,
delivered once, and no limit was exceeded: live leases sampled every few ms from another connection (at most
max_concurrency; per key at most the per-key limit), deliveries in any window of the rate limit's period from
started_at (at most its limit); with mixed priorities and no limit, every run taken is of the highest priority
and none of that priority older than the newest taken is left behind (FIFO).
"""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

import benchwf
import lib
import workloads

WF = benchwf.WF
PRIORITIES = 5  # -2 .. 2
KEYS = 1000
T0 = "2026-01-01 00:00:00+00"  # the fill's first visible_at: run n becomes visible at T0 + n ms
DEQUEUE = ("select * from pgqrs.dequeue(p_queue => %s, p_worker => %s, p_batch_size => 1,"
           " p_visibility => '30 s')")

# Bulk fill (set-up only): runs n = lo..hi, QUEUED, visible in the past, FIFO by n; mixed: a priority, a key.
FILL = """
with new_runs as (
    insert into pgqrs.runs (workflow_id, status, input, created_at, updated_at)
    select %(wid)s, 'QUEUED', jsonb_build_object('n', i), now(), now()
    from generate_series(%(lo)s::bigint, %(hi)s::bigint) as i
    order by i
    returning run_id, (input ->> 'n')::bigint as n
)
insert into pgqrs.messages (message_id, queue_id, visible_at, enqueued_at, priority, concurrency_key)
select run_id, %(qid)s, %(t0)s::timestamptz + n * interval '1 millisecond', now(),
       case when %(mixed)s then pgqrs_bench_priority(n) else 0 end,
       case when %(mixed)s then 'k' || (abs(hashint8(n + 7)) %% """ + str(KEYS) + """) end
from new_runs
"""
PRIORITY_FN = f"""create or replace function pgqrs_bench_priority(n bigint) returns smallint
language sql immutable as $$ select (abs(hashint8(n)) % {PRIORITIES} - 2)::smallint $$"""
# Runs of the key `hot`, of the highest priority, visible before any other (n = -1, -2, ...: older and older).
HOT = """
with new_runs as (
    insert into pgqrs.runs (workflow_id, status, input, created_at, updated_at)
    select %(wid)s, 'QUEUED', jsonb_build_object('n', -i), now(), now()
    from generate_series(%(lo)s::bigint, %(hi)s::bigint) as i
    returning run_id, (input ->> 'n')::bigint as n
)
insert into pgqrs.messages (message_id, queue_id, visible_at, enqueued_at, priority, concurrency_key)
select run_id, %(qid)s, %(t0)s::timestamptz + n * interval '1 millisecond', now(), 2, 'hot'
from new_runs
"""
LIVE_LEASES = lib.TAG + """
select coalesce(sum(c), 0), coalesce(max(c) filter (where k is not null), 0)
from (select m.concurrency_key as k, count(*) as c from pgqrs.messages as m
      where m.queue_id = %s and m.lease_token is not null and m.visible_at > clock_timestamp()
      group by 1) as s
"""
DONE = lib.TAG + "select count(*) from pgqrs.messages_archive where archived_at >= %s"
# The runs a drain finished (archived since it began): how many, how many verify, the DB window, and n's.
VERIFY = """
select count(*),
       count(*) filter (where a.outcome = 'SUCCESS' and r.status = 'SUCCESS' and r.attempt = 1
           and r.output = jsonb_build_object('sum', 3 * (r.input ->> 'n')::int + 3)
           and (select count(*) from pgqrs.steps as s
                where s.run_id = r.run_id and s.status = 'SUCCESS'
                  and s.value = jsonb_build_object('i', (r.input ->> 'n')::int
                      + case s.step_id when 'step_a' then 0 when 'step_b' then 1 when 'step_c' then 2 end))
               = 3),
       extract(epoch from max(r.finished_at) - min(r.started_at))::float8,
       array_agg((r.input ->> 'n')::bigint)
from pgqrs.messages_archive as a join pgqrs.runs as r on r.run_id = a.message_id
where a.archived_at >= %s
"""
# The most starts (all first deliveries) in any window (t - 1 s, t]: the rate limit's own window, on the DB's
# microsecond timestamps.
MAX_PER_SECOND = """
select coalesce(max(c), 0) from (
    select count(*) over (order by r.started_at
                          range between interval '999999 microseconds' preceding and current row) as c
    from pgqrs.messages_archive as a join pgqrs.runs as r on r.run_id = a.message_id
    where a.archived_at >= %s
) as w
"""

# (label, limits for set_workflow_limits); the first of each queue is the baseline: no limits.
RATE = {"limit": 200, "period": "1 second"}
SETTINGS = {
    "plain": [("no limits", {}), ("max_concurrency 2", {"p_max_concurrency": 2}),
              ("rate limit 200/s", {"p_rate_limit": RATE})],
    "mixed": [("no limits", {}), ("max_concurrency_per_key 1", {"p_max_concurrency_per_key": 1})],
}


def _set_limits(conn: Any, limits: dict[str, Any]) -> None:
    import json
    conn.execute("select pgqrs.set_workflow_limits(%s, %s, %s, %s::jsonb)",
                 (WF, limits.get("p_max_concurrency"), limits.get("p_max_concurrency_per_key"),
                  json.dumps(limits["p_rate_limit"]) if "p_rate_limit" in limits else None))


def _setup(db: str) -> tuple[str, int, int, int]:
    db_dsn = lib.recreate_db(db)
    benchwf.install(db_dsn)  # the engine (or PGQRS_BENCH_SQL's) and the workflow
    with lib.connect(db_dsn) as conn:
        wid = lib.scalar(conn, "select workflow_id from pgqrs.create_workflow(p_name => %s)", (WF,))
        qid = lib.scalar(conn, "select queue_id from pgqrs.queues where name = %s", (WF,))
        worker = lib.scalar(conn, "select pgqrs.register_worker(p_name => 'flow', p_queue => %s)", (WF,))
        conn.execute(PRIORITY_FN)
    return db_dsn, wid, qid, worker


def _fill(conn: Any, wid: int, qid: int, lo: int, hi: int, mixed: bool) -> None:
    for a in range(lo, hi + 1, 250_000):
        conn.execute(FILL, {"wid": wid, "qid": qid, "lo": a, "hi": min(hi, a + 249_999), "t0": T0,
                            "mixed": mixed})
    conn.execute("vacuum analyze pgqrs.messages, pgqrs.runs")


def _latency(db_dsn: str, worker: int, reps: int, calls: int, warmup: int = 20) -> list[dict[str, float]]:
    """Per round: p50/p99 ms of `calls` dequeues of batch 1 (each rolled back) and the rows they returned."""
    out = []
    with lib.connect(db_dsn) as conn:
        for _ in range(reps):
            ms, rows = [], []
            for i in range(warmup + calls):
                with conn.transaction(force_rollback=True):
                    t = time.perf_counter()
                    got = conn.execute(DEQUEUE, (WF, worker), prepare=True).fetchall()
                    dt = 1000 * (time.perf_counter() - t)
                if i >= warmup:
                    ms.append(dt)
                    rows.append(len(got))
            out.append({"p50_ms": statistics.median(ms), "p99_ms": lib.percentile(ms, 99),
                        "rows": statistics.mean(rows)})
            conn.execute("vacuum pgqrs.messages, pgqrs.rate_limit_log")  # rolled-back leases' dead entries
    return out


class LeaseSampler(threading.Thread):
    """Live leases of a queue, in all and per key, sampled back to back from a connection of its own."""

    def __init__(self, db_dsn: str, qid: int) -> None:
        super().__init__(daemon=True)
        self.db_dsn, self.qid = db_dsn, qid
        self.halt = threading.Event()
        self.samples = 0
        self.max_all = self.max_key = 0

    def run(self) -> None:
        with lib.connect(self.db_dsn) as conn:
            while not self.halt.is_set():
                total, per_key = conn.execute(LIVE_LEASES, (self.qid,), prepare=True).fetchone()  # type: ignore
                self.max_all, self.max_key = max(self.max_all, total), max(self.max_key, per_key)
                self.samples += 1
                time.sleep(0.002)


def drain(db_dsn: str, qid: int, n: int, procs: int, limits: dict[str, Any], mixed: bool, tag: str
          ) -> dict[str, Any]:
    """`procs` workers run n runs of the deep queue under `limits`; checked as the module docstring says."""
    eng = workloads.ENGINES["pgqrs"]
    with lib.connect(db_dsn) as conn:
        _set_limits(conn, limits)
        since = lib.scalar(conn, "select clock_timestamp()")
    lib.checkpoint()
    sampler = LeaseSampler(db_dsn, qid)
    with lib.Procs([eng.worker_argv(db_dsn, i) for i in range(procs)], tag) as workers:
        workers.wait_ready()
        sampler.start()
        load = lib.LoadMeter()
        workers.go()
        t0 = time.perf_counter()
        with lib.connect(db_dsn) as conn:
            while lib.scalar(conn, DONE, (since,)) < n:
                workers.check()
                if time.perf_counter() - t0 > 600:
                    raise RuntimeError(f"{tag}: drain timed out")
                time.sleep(0.025)
        workers.stop()  # SIGTERM: the runs in flight finish
        cpu = load.stop()
    sampler.halt.set()
    sampler.join()
    with lib.connect(db_dsn) as conn:
        total, ok, window, ns = conn.execute(VERIFY, (since,)).fetchone()  # type: ignore[misc]
        per_second = lib.scalar(conn, MAX_PER_SECOND, (since,))
        left = lib.scalar(conn, "select count(*) from pgqrs.messages where queue_id = %s"
                          " and lease_token is not null", (qid,))
        prios = [r[0] for r in conn.execute("select pgqrs_bench_priority(n) from unnest(%s::bigint[]) as n",
                                            (ns,)).fetchall()] if mixed else [0]
        behind = lib.scalar(conn, "select count(*) from pgqrs.messages where queue_id = %s and priority = 2"
                            " and visible_at <= %s::timestamptz + %s * interval '1 millisecond'",
                            (qid, T0, max(ns))) if mixed else 0
    out: dict[str, Any] = {
        "runs_per_s": total / window, "runs": total, "verified": ok, "window_s": window,
        "max_leases": sampler.max_all, "max_leases_per_key": sampler.max_key,
        "lease_samples": sampler.samples, "max_per_1s": per_second,
        "priorities": sorted(set(prios)), "fifo_left_behind": behind,
        **cpu,
    }
    problems = []
    if ok != total or total < n or left:
        problems.append(f"{ok} of {total} runs verified, {left} leases left")
    if limits.get("p_max_concurrency") and sampler.max_all > limits["p_max_concurrency"]:
        problems.append(f"{sampler.max_all} leases at once")
    if limits.get("p_max_concurrency_per_key") and sampler.max_key > limits["p_max_concurrency_per_key"]:
        problems.append(f"{sampler.max_key} leases of one key at once")
    # Recorded, not fatal: the table shows it (a dequeue whose statement started later may prune the log of a
    # delivery that one which started earlier, and waited for the queue lock, still had to count).
    out["rate_exceeded_by"] = max(0, out["max_per_1s"] - RATE["limit"]) if "p_rate_limit" in limits else 0
    if mixed and (prios and set(prios) != {2} or (not limits and behind)):
        problems.append(f"priorities taken {out['priorities']}, {behind} older of priority 2 left behind")
    if problems:
        raise RuntimeError(f"{tag}: " + "; ".join(problems))
    return out


def run(reps: int, calls: int, depth: int, hot: int, n: int, procs: int, log: Any = print) -> dict[str, Any]:
    """{"latency": {queue: {state: {setting: [rounds]}}}, "hot": {...}, "drains": {queue: {setting: [reps]}},
    "fill_s": {...}}."""
    out: dict[str, Any] = {"latency": {}, "hot": {}, "drains": {}, "fill_s": {}, "depth": depth, "n": n,
                           "procs": procs}
    for queue, settings in SETTINGS.items():
        mixed = queue == "mixed"
        db = f"bench_flow_{queue}"
        db_dsn, wid, qid, worker = _setup(db)
        lat = out["latency"][queue] = {"1": {}, str(depth): {}}
        with lib.connect(db_dsn) as conn:
            have = 0
            for d in (1, depth):
                t0 = time.perf_counter()
                _fill(conn, wid, qid, have, d - 1, mixed)
                out["fill_s"][f"{queue} {d}"] = time.perf_counter() - t0
                have = d
                lib.checkpoint()
                for label, limits in settings:
                    _set_limits(conn, limits)
                    lat[str(d)][label] = _latency(db_dsn, worker, reps, calls)
                    log(f"flow: {queue} {d} queued, {label}: {lat[str(d)][label][0]['p50_ms']:.3f} ms")
            drains = out["drains"][queue] = {label: [] for label, _ in settings}
            for rep in range(reps):
                for label, limits in (settings if rep % 2 == 0 else list(reversed(settings))):
                    tag = f"flow-{queue}-{len(drains[label])}-r{rep}"
                    r = drain(db_dsn, qid, n, procs, limits, mixed, tag)
                    drains[label].append(r)
                    log(f"flow: drain {queue}, {label}: {r['runs_per_s']:.0f} runs/s, leases <= "
                        f"{r['max_leases']} ({r['max_leases_per_key']} per key), <= {r['max_per_1s']} in 1 s")
            if mixed:
                out["hot"] = _hot(conn, db_dsn, wid, qid, worker, reps, calls, hot, log)
        lib.drop_db(db)
    return out


def _hot(conn: Any, db_dsn: str, wid: int, qid: int, worker: int, reps: int, calls: int, hot: int, log: Any
         ) -> dict[str, Any]:
    """The key `hot` at its limit (per-key 1, one run leased) with 100 and then `hot` of its runs ahead."""
    res: dict[str, Any] = {}
    _set_limits(conn, {"p_max_concurrency_per_key": 1})
    have = 0
    for size in (101, hot + 1):  # one of them is leased
        conn.execute(HOT, {"wid": wid, "qid": qid, "lo": have + 1, "hi": size, "t0": T0})
        conn.execute("vacuum analyze pgqrs.messages")
        if have == 0:
            got = conn.execute(DEQUEUE.replace("'30 s'", "'1 hour'"), (WF, worker)).fetchall()
            key = lib.scalar(conn, "select concurrency_key from pgqrs.messages where message_id = %s",
                             (got[0][1],))
            assert key == "hot", "the dequeue did not lease a run of the hot key"
        have = size
        lib.checkpoint()
        # with a deep backlog a call may walk it all: fewer calls per round (p99 is then near the maximum)
        res[str(size - 1)] = _latency(db_dsn, worker, reps, calls if size <= 101 else max(50, calls // 5))
        r = res[str(size - 1)][0]
        log(f"flow: {size - 1} runs of a saturated key ahead: {r['p50_ms']:.3f} ms, {r['rows']:.2f} rows")
    return res


# ---- rendering ---------------------------------------------------------------------------------------------

def _med(rounds: list[dict[str, Any]], field: str) -> float:
    return statistics.median(r[field] for r in rounds)


def _depth_label(d: int) -> str:
    return f"{d // 1_000_000}M" if d >= 1_000_000 and d % 1_000_000 == 0 else f"{d:,}"


def render(f: dict[str, Any]) -> str:
    depth, deep = f["depth"], str(f["depth"])
    dl = _depth_label(depth)
    queue_label = {"plain": "priority 0, no keys", "mixed": f"priorities -2..2, {KEYS:,} keys"}
    out = ["Flow control (flow.py): dequeue of batch 1, one client, each call in begin … rollback (ms; "
           "median of the rounds, min–max):", ""]
    rows = []
    for queue, states in f["latency"].items():
        base = _med(states[deep]["no limits"], "p50_ms")
        for label, deep_rounds in states[deep].items():
            one = states["1"][label]
            rows.append([f"{queue_label[queue]}, {label}",
                         lib.fmt_summary([r["p50_ms"] for r in one]),
                         lib.fmt_summary([r["p99_ms"] for r in one]),
                         lib.fmt_summary([r["p50_ms"] for r in deep_rounds]),
                         lib.fmt_summary([r["p99_ms"] for r in deep_rounds]),
                         f"{_med(deep_rounds, 'p50_ms') / _med(one, 'p50_ms'):.2f}×",
                         f"{_med(deep_rounds, 'p50_ms') / base:.2f}×"])
    out.append(lib.md_table(["queue, setting", "1 queued p50", "1 queued p99", f"{dl} queued p50",
                             f"{dl} queued p99", f"{dl} ÷ 1 queued", f"÷ no limits at {dl}"], rows))
    out.append("")
    if f["hot"]:
        base = _med(f["latency"]["mixed"][deep]["max_concurrency_per_key 1"], "p50_ms")
        hrows = [[f"{int(k):,}", f"{_med(rs, 'rows'):.2f}", lib.fmt_summary([r["p50_ms"] for r in rs]),
                  lib.fmt_summary([r["p99_ms"] for r in rs]), f"{_med(rs, 'p50_ms') / base:.2f}×"]
                 for k, rs in f["hot"].items()]
        out.append(f"The mixed {dl} queue with max_concurrency_per_key 1 and runs of one key ahead of all "
                   "others, that key at its limit (one of its runs leased):")
        out.append("")
        out.append(lib.md_table(["runs of the saturated key ahead", "rows per dequeue", "p50", "p99",
                                 "p50 ÷ no backlog"], hrows))
        out.append("")
    drows = []
    for queue, per in f["drains"].items():
        base = statistics.median(r["runs_per_s"] for r in per["no limits"])
        for label, rs in per.items():
            drows.append([f"{queue_label[queue]}, {label}", lib.fmt_summary([r["runs_per_s"] for r in rs]),
                          f"{100 * statistics.median(r['runs_per_s'] for r in rs) / base:.0f} %",
                          lib.fmt_summary([1000 * r["server_cpu_s"] / r["runs"] for r in rs]),
                          lib.fmt_summary([r["foreign_cpu_pct"] for r in rs]),
                          f"{max(r['max_leases'] for r in rs)} ({max(r['max_leases_per_key'] for r in rs)})",
                          str(max(r["max_per_1s"] for r in rs))
                          + (f" (over the limit in {over} of {len(rs)})"
                             if (over := sum(1 for r in rs if r.get("rate_exceeded_by"))) else ""),
                          ", ".join(str(p) for p in sorted({p for r in rs for p in r["priorities"]}))])
    out.append(f"Flow control drains: {f['procs']} worker processes run {f['n']:,} runs of the {dl} queue "
               "(runs/s over first start → last finish; every run verified):")
    out.append("")
    out.append(lib.md_table(["queue, setting", "runs/s", "of no limits", "server CPU ms/run", "other CPU %",
                             "most leases at once (of one key)",
                             "most starts in any 1 s", "priorities taken"], drows))
    out.append("")
    fills = ", ".join(f"{k}: {v:.0f} s" for k, v in f["fill_s"].items())
    out.append(f"Bulk fills (not timed): {fills}.")
    out.append("")
    return "\n".join(out)
