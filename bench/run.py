#!/usr/bin/env python3
"""`make bench`: pgqrs against the raw-SQL bound on one durable PostgreSQL. See docs/benchmarks.md.

Workloads (each repeated --reps times; the table shows the median and min-max of the repetitions):
  trigger      one client triggers --trigger-n runs, one call per run; and --batch-n runs via trigger_batch in
               batches of --batch
  e2e          --n queued runs of the 3-step workflow drained by k worker processes (--workers),
               concurrency 1 each; runs/s over the DB window first dequeue -> last finish; counts only if
               every run is SUCCESS with the right output and its 3 step rows (checked in SQL)
  latency      one idle worker: statements per second while idle (--idle-s), then --lat-samples single runs
               after random gaps: trigger -> first step body starts, trigger -> result() returns; p50 / p99
  rss          one worker process at concurrency 1 and 8 drains --rss-runs runs; its RSS over time
  depth        dequeue latency with 1k / 100k / 1M queued and with --history (10M) finished runs in history
  flow         flow control (issue 16, flow.py): dequeue p50/p99 at 1 and --flow-depth queued with no limits,
               with max_concurrency 2, a rate limit of 200/s, and (priorities -2..2, 1,000 keys) a per-key
               limit; then with --flow-hot runs of one key at its limit ahead of the rest; and drains of
               --flow-n runs by --flow-procs worker processes of the deep queue under each setting, each
               checked against its limit
  costs        round trips and write transactions per run (pg_stat_statements, xid deltas), top statements
  wakeup       event wake-up latency: --wake-samples runs wait on their own keys under one idle worker
               (--wake-concurrency); the keys are emitted one by one after random gaps: emit -> the step
               after the wait starts (wakeup.py); p50 / p99
  fanout       fan-out/fan-in: one parent run starts --fan-children children of one step each, gathers them
               and sums their outputs, with --fan-workers worker processes (fanout.py): trigger -> parent
               SUCCESS, child runs/s; counts only if the sum is right and every child ran once
  purge        purge.py: pgqrs.purge_runs removing --purge-runs (1M) finished runs (in 10 partitions, which it
               drops) while 4 worker processes drain, next to the same drain without it (runs/s, dequeue
               p50/p99, table sizes)
  partition    partition.py: the run tables flat or range-partitioned: a run's statements on its row, and the
               removal of half the history (DELETE in batches or DROP of partitions)
The raw-SQL bound (rawbound.py, wakeup.py, fanout.py) runs the trigger, e2e, latency, wakeup and fanout
workloads in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import depth  # noqa: E402
import fanout  # noqa: E402
import flow  # noqa: E402
import lib  # noqa: E402
import wakeup  # noqa: E402
import workloads  # noqa: E402

PHASES = ["trigger", "e2e", "latency", "wakeup", "fanout", "rss", "depth", "flow", "costs", "purge",
          "partition"]
# phases that are scripts of their own (each prints its tables): name -> (title, script)
SCRIPT_PHASES = {
    "purge": ("Purging a large history beside 4 draining workers (purge.py)", "purge.py"),
    "partition": ("Partitioned history or not: the hot path and a purge (partition.py)", "partition.py"),
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    cpu = ""
    try:
        cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                             capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    from importlib import metadata
    return {"nproc": os.cpu_count(), "mem_gib": round(mem_kib / 1024 / 1024, 1), "cpu": cpu,
            "python": platform.python_version(), "platform": platform.platform(),
            "psycopg": metadata.version("psycopg"), "pgqrs": metadata.version("pgqrs-engine"),
            "git": subprocess.run(["git", "-C", lib.REPO, "rev-parse", "--short", "HEAD"],
                                  capture_output=True, text=True).stdout.strip()}


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--async-commit", action="store_true",
                    help="expect synchronous_commit=off (make bench ARGS=--async-commit sets it)")
    ap.add_argument("--only", default=",".join(PHASES), help=f"comma list of phases: {','.join(PHASES)}")
    ap.add_argument("--engines", default="pgqrs,raw")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--trigger-n", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--batch-n", type=int, default=20000)
    ap.add_argument("--n", type=int, default=2000, help="runs per end-to-end drain")
    ap.add_argument("--workers", default="1,2,4,8")
    ap.add_argument("--group-commit", default="1x8,4x8",
                    help="pgqrs drains of --n runs by PROCESSESxCONCURRENCY (group commit), next to "
                         "the bound's 1-process drain")
    ap.add_argument("--lat-samples", type=int, default=100)
    ap.add_argument("--lat-warmup", type=int, default=3)
    ap.add_argument("--idle-s", type=float, default=10.0)
    ap.add_argument("--wake-samples", type=int, default=100)
    ap.add_argument("--wake-concurrency", type=int, default=1,
                    help="the wake-up worker's concurrency (a WAITING run holds no slot)")
    ap.add_argument("--fan-children", type=int, default=1000, help="children of the fan-out parent")
    ap.add_argument("--fan-workers", type=int, default=4, help="worker processes of the fan-out")
    ap.add_argument("--rss-runs", type=int, default=10000)
    ap.add_argument("--rss-concurrency", default="1,8")
    ap.add_argument("--depths", default="1000,100000,1000000")
    ap.add_argument("--history", type=int, default=10_000_000)
    ap.add_argument("--purge-runs", type=int, default=1_000_000, help="finished runs the purge phase removes")
    ap.add_argument("--depth-calls", type=int, default=300)
    ap.add_argument("--flow-depth", type=int, default=1000000, help="the deep queue of the flow phase")
    ap.add_argument("--flow-hot", type=int, default=100000, help="runs of one saturated key ahead (flow)")
    ap.add_argument("--flow-n", type=int, default=2000, help="runs per drain of the flow phase")
    ap.add_argument("--flow-procs", type=int, default=4, help="worker processes of the flow drains")
    ap.add_argument("--quick", action="store_true", help="small sizes, to check the harness")
    ap.add_argument("--out", default="/tmp/pgqrs-bench-results.json", help="raw results (JSON)")
    ap.add_argument("--md", default="/tmp/pgqrs-bench-results.md", help="the tables (markdown)")
    args = ap.parse_args()
    if args.quick:
        args.trigger_n, args.batch_n, args.n, args.lat_samples, args.idle_s = 300, 3000, 300, 20, 3.0
        args.wake_samples, args.fan_children = 20, 200
        args.rss_runs, args.depths, args.history, args.depth_calls = 1000, "1000,10000", 10000, 100
        args.purge_runs = 20000
        args.flow_depth, args.flow_hot, args.flow_n = 10000, 1000, 300
    return args


def main() -> None:
    args = parse()
    phases = [p for p in args.only.split(",") if p]
    engines = [workloads.ENGINES[e] for e in args.engines.split(",") if e]
    ks = [int(k) for k in args.workers.split(",") if k]
    t_start = time.time()
    lib.PGSS = lib.has_pg_stat_statements()
    settings = lib.server_settings()
    want = "off" if args.async_commit else "on"
    if settings["synchronous_commit"] != want or settings["fsync"] != "on":
        sys.exit(f"bench: the cluster has fsync={settings['fsync']}, synchronous_commit="
                 f"{settings['synchronous_commit']}; expected fsync=on, synchronous_commit={want}")
    res: dict[str, Any] = {
        "meta": {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "argv": sys.argv, "args": vars(args),
                 "machine": machine(), "server": settings, "pg_stat_statements": lib.PGSS,
                 "loadavg_start": os.getloadavg()},
        "m": {},  # key -> engine -> [result per repetition]
    }

    def record(key: str, engine: str, value: dict[str, Any]) -> None:
        res["m"].setdefault(key, {}).setdefault(engine, []).append(value)
        lib.dump_json(args.out, res)
        brief = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in value.items()
                 if not isinstance(v, list | dict)}
        log(f"{key} {engine}: {json.dumps(brief)}")

    for rep in range(args.reps):
        order = engines if rep % 2 == 0 else list(reversed(engines))
        for eng in order:
            if "trigger" in phases:
                record("trigger_1", eng.name, workloads.trigger_throughput(eng, args.trigger_n, 1))
                record("trigger_batch", eng.name, workloads.trigger_throughput(eng, args.batch_n, args.batch))
            if "e2e" in phases:
                for k in ks:
                    record(f"e2e_{k}", eng.name,
                           workloads.drain(eng, args.n, k, tag=f"{eng.name}-e2e{k}-r{rep}"))
                for setup in group_commit_setups(args) if eng.name == "pgqrs" else []:
                    procs, conc = setup
                    record(f"gc_{procs}x{conc}", eng.name,
                           workloads.drain(eng, args.n, procs, conc, tag=f"gc-{procs}x{conc}-r{rep}"))
            if "latency" in phases:
                record("latency", eng.name,
                       workloads.latency_idle(eng, args.lat_samples, args.lat_warmup, args.idle_s,
                                              (0.02, 0.2), seed=rep, tag=f"{eng.name}-lat-r{rep}"))
            if "wakeup" in phases:
                record("wakeup", eng.name,
                       wakeup.measure(eng.name, eng.db, args.wake_samples, args.lat_warmup,
                                      args.wake_concurrency, (0.02, 0.2), seed=rep,
                                      tag=f"{eng.name}-wake-r{rep}"))
            if "fanout" in phases:
                record("fanout", eng.name,
                       fanout.measure(eng.name, eng.db, args.fan_children, args.fan_workers,
                                      tag=f"{eng.name}-fan-r{rep}"))
    if "rss" in phases:
        for c in [int(c) for c in args.rss_concurrency.split(",") if c]:
            for rep in range(args.reps):
                record(f"rss_c{c}", "pgqrs", workloads.drain(workloads.ENGINES["pgqrs"], args.rss_runs, 1, c,
                                                             rss=True, tag=f"rss-c{c}-r{rep}"))
    if "depth" in phases:
        depths = [int(d) for d in args.depths.split(",") if d]
        res["depth"] = depth.run(args.reps, args.depth_calls, depths, args.history, log=log)
        lib.dump_json(args.out, res)
    if "flow" in phases:
        res["flow"] = flow.run(args.reps, args.depth_calls, args.flow_depth, args.flow_hot, args.flow_n,
                               args.flow_procs, log=log)
        lib.dump_json(args.out, res)
    for name, (_title, script) in SCRIPT_PHASES.items():
        if name in phases:
            extra = script_args(name, args)
            log(f"{name}: bench/{script} {' '.join(extra)}")
            res[name] = subprocess.run([sys.executable, os.path.join(lib.HERE, script), *extra], check=True,
                                       stdout=subprocess.PIPE, text=True).stdout
            lib.dump_json(args.out, res)
    if "costs" in phases and lib.PGSS:
        res["costs"] = {}
        for eng in engines:
            res["costs"][eng.name] = statement_profile(eng)
        lib.dump_json(args.out, res)

    res["meta"]["loadavg_end"] = os.getloadavg()
    res["meta"]["seconds"] = round(time.time() - t_start)
    lib.dump_json(args.out, res)
    md = render(res)
    with open(args.md, "w") as f:
        f.write(md + "\n")
    print(md)
    log(f"done in {res['meta']['seconds']} s; raw results in {args.out}, tables in {args.md}")


def script_args(phase: str, args: argparse.Namespace) -> list[str]:
    """The options of a script phase: the purge's history and a drain about as long as its purge."""
    if phase == "purge":
        # the history in 10 partitions, as pgqrs.maintain_history lays it out: the purge drops them
        return ["--runs", str(args.purge_runs), "--drain", str(max(args.purge_runs // 55, 1000)),
                "--width", str(max(args.purge_runs // 10, 1))]
    return ["--rows", "100000", "--calls", "300", "--reps", "1"] if args.quick else []


def statement_profile(eng: workloads.Engine, n: int = 500) -> dict[str, Any]:
    """The statements one run costs: trigger n runs one by one, drain them with one worker; per statement
    calls per run and mean execution time (pg_stat_statements)."""
    db_dsn = eng.fresh()
    lib.reset_statements()
    eng.trigger_many(db_dsn, n, 1)
    trig = [(q, c / n, ms) for q, c, ms in lib.top_statements(eng.db)]
    lib.reset_statements()
    with lib.Procs([eng.worker_argv(db_dsn, 0)], f"{eng.name}-costs") as workers:
        workers.wait_ready()
        workers.go()
        with lib.connect(db_dsn) as conn:
            while lib.scalar(conn, lib.TAG + eng.DONE_SQL) < n:
                workers.check()
                time.sleep(0.05)
    run = [(q, c / n, ms) for q, c, ms in lib.top_statements(eng.db)]
    with lib.connect(db_dsn) as conn:
        if eng.verify(conn, n) != n:
            raise RuntimeError(f"{eng.name} costs: runs did not verify")
    return {"trigger": trig, "worker": run}


# ---- rendering ---------------------------------------------------------------------------------------------

def vals(res: dict[str, Any], key: str, engine: str, field: str) -> list[float]:
    return [r[field] for r in res["m"].get(key, {}).get(engine, []) if field in r]


def med(xs: list[float]) -> float | None:
    import statistics
    return statistics.median(xs) if xs else None


def group_commit_setups(args: argparse.Namespace) -> list[tuple[int, int]]:
    """--group-commit "1x8,4x8" -> [(1, 8), (4, 8)]."""
    return [(int(p), int(c)) for p, c in (s.split("x") for s in args.group_commit.split(",") if s)]


def count_label(digits: str) -> str:
    """10000000 -> 10M, 100000 -> 100k, 1000 -> 1k; other counts as they are."""
    n = int(digits)
    for size, unit in ((1_000_000, "M"), (1000, "k")):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return digits


def cpu_table(res: dict[str, Any]) -> list[str]:
    """CPU per run of each drain (worker processes and server, from /proc), pgqrs next to the bound."""
    keys = sorted((k for k in res["m"] if k.startswith("e2e_")), key=lambda k: int(k[4:]))
    keys += sorted(k for k in res["m"] if k.startswith("gc_"))
    rows = []
    for key in keys:
        cells = []
        totals = []
        for eng in ("pgqrs", "raw"):
            client = med(vals(res, key, eng, "client_cpu_ms_per_run"))
            server = med(vals(res, key, eng, "server_cpu_ms_per_run"))
            if client is None or server is None:
                cells.append("–")
                continue
            totals.append(client + server)
            cells.append(f"{client:.2f} + {server:.2f} = {client + server:.2f}")
        ratio = f"{totals[0] / totals[1]:.1f}×" if len(totals) == 2 else "–"
        label = f"{key[4:]} worker process(es)" if key.startswith("e2e_") else \
            f"{key[3:].replace('x', ' process(es) × concurrency ')} (group commit)"
        rows.append([label, *cells, ratio])
    if not rows:
        return []
    return ["CPU per run in the end-to-end drains (ms, worker processes + server, from /proc; median of the "
            "repetitions):", "",
            lib.md_table(["drain", "pgqrs", "raw-SQL bound", "pgqrs vs bound"], rows), ""]


def render(res: dict[str, Any]) -> str:
    m = res["meta"]
    out = []
    srv = res["meta"]["server"]
    out.append(f"pgqrs bench — {m['started']}, git {m['machine']['git']}; {m['machine']['nproc']} cores, "
               f"{m['machine']['mem_gib']} GiB; {srv['version'].split(' on ')[0]}; fsync={srv['fsync']}, "
               f"synchronous_commit={srv['synchronous_commit']}; "
               f"load average {m['loadavg_start'][0]:.2f} at start, "
               f"{m.get('loadavg_end', [0])[0]:.2f} at end; {m.get('seconds', 0)} s.")
    out.append("")
    out.append("Median of the repetitions (min–max). The ratio compares pgqrs with the raw-SQL bound "
               "measured in the same run (throughput: % of the bound; latency: × the bound).")
    out.append("")
    rows = []

    def tput(label: str, key: str, field: str = "runs_per_s") -> None:
        ours, raw = vals(res, key, "pgqrs", field), vals(res, key, "raw", field)
        if not ours and not raw:
            return
        ratio = f"{100 * med(ours) / med(raw):.0f} %" if ours and raw else "–"  # type: ignore[operator]
        rows.append([label, lib.fmt_summary(ours), lib.fmt_summary(raw), ratio])

    def lat(label: str, key: str, field: str) -> None:
        ours, raw = vals(res, key, "pgqrs", field), vals(res, key, "raw", field)
        if not ours and not raw:
            return
        ratio = f"{med(ours) / med(raw):.1f}×" if ours and raw else "–"  # type: ignore[operator]
        rows.append([label, lib.fmt_summary(ours), lib.fmt_summary(raw), ratio])

    batch = res["meta"]["args"]["batch"]
    tput("trigger, one run per call (runs/s)", "trigger_1")
    tput(f"trigger, {batch} runs per call (trigger_batch) (runs/s)", "trigger_batch")
    for key in sorted((k for k in res["m"] if k.startswith("e2e_")), key=lambda k: int(k[4:])):
        k = int(key[4:])
        tput(f"end-to-end 3-step runs/s, {k} worker process{'es' if k > 1 else ''}", key)
    for key in sorted(k for k in res["m"] if k.startswith("rss_c")):
        c = key[5:]
        n_rss = res["meta"]["args"]["rss_runs"]
        tput(f"end-to-end 3-step runs/s, 1 process at concurrency {c} ({n_rss} runs)", key)
    bound_1 = vals(res, "e2e_1", "raw", "runs_per_s")
    for key in sorted(k for k in res["m"] if k.startswith("gc_")):
        procs, conc = key[3:].split("x")
        ours = vals(res, key, "pgqrs", "runs_per_s")
        ratio = f"{med(ours) / med(bound_1):.2f}× the bound's 1 process" if ours and bound_1 else "–"
        label = f"{procs} process{'es' if procs != '1' else ''} at concurrency {conc} (group commit)"
        rows.append([f"end-to-end 3-step runs/s, {label}", lib.fmt_summary(ours), "–", ratio])
    lat("trigger → first step p50 (ms)", "latency", "first_step_p50_ms")
    lat("trigger → first step p99 (ms)", "latency", "first_step_p99_ms")
    lat("trigger → result p50 (ms)", "latency", "result_p50_ms")
    lat("trigger → result p99 (ms)", "latency", "result_p99_ms")
    lat("event wake-up: emit → next step p50 (ms)", "wakeup", "wakeup_p50_ms")
    lat("event wake-up: emit → next step p99 (ms)", "wakeup", "wakeup_p99_ms")
    lat("event wake-up: the emit call p50 (ms)", "wakeup", "emit_call_p50_ms")
    fan = res["meta"]["args"]
    fan_label = (f"fan-out/fan-in, {fan.get('fan_children', 1000):,} children, "
                 f"{fan.get('fan_workers', 4)} worker processes")
    lat(f"{fan_label}: trigger → parent SUCCESS (s)", "fanout", "seconds")
    tput(f"{fan_label}: child runs/s", "fanout", "child_runs_per_s")
    idle = vals(res, "latency", "pgqrs", "idle_statements_per_s")
    if idle:
        rows.append(["idle worker: statements/s", lib.fmt_summary(idle), "–", "–"])
    if rows:
        out.append(lib.md_table(["workload", "pgqrs", "raw-SQL bound", "pgqrs vs bound"], rows))
        out.append("")

    fan_reps = res["m"].get("fanout", {})
    if fan_reps:
        waited = "; ".join(f"{eng} {sum(1 for r in rs if r.get('parent_waited'))} of {len(rs)}"
                           for eng, rs in fan_reps.items())
        out.append("Fan-out: repetitions in which the parent had to wait for its children (in the others the "
                   f"last child had finished before the parent reached its gather): {waited}.")
        out.append("")

    out.extend(cpu_table(res))

    # costs per run
    crow = []
    for eng in ("pgqrs", "raw"):
        t = res["m"].get("trigger_1", {}).get(eng, [])
        d = res["m"].get("e2e_1", {}).get(eng, [])
        if not t and not d:
            continue

        def f(rs: list[dict[str, Any]], field: str) -> str:
            xs = [r[field] for r in rs if field in r]
            return lib.fmt_num(med(xs)) if xs else "–"  # type: ignore[arg-type]
        crow.append([eng if eng == "pgqrs" else "raw-SQL bound",
                     f(t, "statements_per_run"), f(t, "write_xacts_per_run"),
                     f(d, "statements_per_run"), f(d, "write_xacts_per_run"),
                     f(t, "wal_bytes_per_run"), f(d, "wal_bytes_per_run")])
    if crow:
        out.append("Costs per run (trigger: one per call; worker: 1-worker drain, idle polls included). "
                   "Round trips = top-level statements (pg_stat_statements); write transactions = xids "
                   "assigned (each waits for a WAL flush when synchronous_commit is on).")
        out.append("")
        out.append(lib.md_table(["engine", "trigger round trips", "trigger write xacts", "worker round trips",
                                 "worker write xacts", "trigger WAL bytes", "worker WAL bytes"], crow))
        out.append("")

    if "depth" in res:
        d = res["depth"]
        base = med([r["p50_ms"] for r in d.get("empty", [])])
        drows = []
        order = ["empty"] + [k for k in d if k.endswith(" queued")] \
            + [k for k in d if k.endswith(" history")] + ["no message"]
        for state in order:
            rs = d.get(state)
            if not rs:
                continue
            p50 = [r["p50_ms"] for r in rs]
            label = {"empty": "1 queued (the baseline)",
                     "no message": "nothing visible (an idle poll)"}.get(state, state)
            label = " ".join(count_label(w) if w.isdigit() else w for w in label.split(" "))
            if state.endswith("history"):
                label += " + 1k queued"
            drows.append([label, lib.fmt_summary(p50), lib.fmt_summary([r["p99_ms"] for r in rs]),
                          f"{med(p50) / base:.2f}×" if base else "–"])  # type: ignore[operator]
        out.append("Dequeue latency, batch 1, one client, each call in begin … rollback so the queue stays "
                   "as it is (ms, round trip without a commit; bench/dequeue.py's method):")
        out.append("")
        out.append(lib.md_table(["queue", "p50", "p99", "p50 vs 1 queued"], drows))
        out.append("")
        fills = ", ".join(f"{k}: {v:.0f} s" for k, v in d["fill_s"].items())
        out.append(f"Bulk fills (not timed in the table): {fills}.")
        out.append("")

    if "flow" in res:
        out.append(flow.render(res["flow"]))
    for name, (title, _script) in SCRIPT_PHASES.items():
        if name in res:
            out += ["", f"{title}:", "", res[name]]
    rrows = []
    for key in sorted(k for k in res["m"] if k.startswith("rss_c")):
        rs = res["m"][key]["pgqrs"]
        rrows.append([key[5:], lib.fmt_summary([r["rss_warm_mib"] for r in rs]),
                      lib.fmt_summary([r["rss_end_mib"] for r in rs]),
                      lib.fmt_summary([r["rss_peak_mib"] for r in rs]),
                      lib.fmt_summary([r["rss_growth_mib"] for r in rs])])
    if rrows:
        n = res["meta"]["args"]["rss_runs"]
        out.append(f"Worker RSS (MiB), one process draining {n} runs: after the first {n // 10}, at the end, "
                   "peak, and growth from the first to the end:")
        out.append("")
        out.append(lib.md_table(["concurrency", f"after {n // 10}", f"after {n}", "peak", "growth"], rrows))
        out.append("")

    lrows = []
    for key, per in res["m"].items():
        for eng, rs in per.items():
            fc = [r["foreign_cpu_pct"] for r in rs if "foreign_cpu_pct" in r]
            la = [r["loadavg_1m"] for r in rs if "loadavg_1m" in r]
            if fc:
                lrows.append(f"{key}/{eng} {med(fc):.0f} % (load {med(la):.1f})")
    if lrows:
        out.append("Machine CPU used by other processes during the measurements (median % of all cores; "
                   "1-min load average): " + "; ".join(lrows) + ".")
        out.append("")

    if "costs" in res:
        for eng, c in res["costs"].items():
            out.append(f"Statements per run, {eng} (calls per run, mean ms):")
            out.append("")
            rows2 = [["trigger", q[:110], f"{calls:.2f}", f"{ms:.3f}"] for q, calls, ms in c["trigger"][:4]]
            rows2 += [["worker", q[:110], f"{calls:.2f}", f"{ms:.3f}"] for q, calls, ms in c["worker"][:8]]
            out.append(lib.md_table(["side", "statement", "per run", "mean ms"], rows2))
            out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    main()
