#!/usr/bin/env python3
"""`make bench-peers`: pgqrs and the raw-SQL bound next to the engines a user would pick instead.

Every engine gets its own venv under /tmp/pgqrs-peers (pinned versions from PyPI, created once and reused
while the pins match; pgqrs and the raw bound use the project's .venv) and its own database `peers_<name>`,
dropped and recreated before every measurement. Same workflow everywhere: 3 steps returning {"i": n},
{"i": n+1}, {"i": n+2}, output {"sum": 3n+3}. Per repetition and engine (the engine order rotates):

  A    one client triggers N runs, one API call per run (runs/s, timed inside the engine's process)
  B@k  those N runs drained by k worker processes started and set up first, then released together;
       runs/s over the engine's own DB timestamps (first claim -> last completion); counts only when every
       run verifies in the database (output and the 3 step checkpoints); A is measured again before each B
  C    one idle worker; S single runs, each after a random gap; trigger call -> completion seen by polling
       the run's state every 1 ms (the same client-side method for every engine); p50 and p99

Also per measurement: write transactions (xids) and statements (pg_stat_statements) per run, the CPU the
engine's processes and the server used per run, and the CPU other tenants of the machine used meanwhile.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import lib  # noqa: E402

AGENT = os.path.join(HERE, "agent.py")
VENV_ROOT = os.environ.get("PGQRS_PEERS_DIR", "/tmp/pgqrs-peers")
ALL = ["ours", "raw", "pgqrs015", "absurd", "dbos", "procrastinate"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---- venvs -------------------------------------------------------------------------------------------------

def base_python() -> str:
    """A plain interpreter to create venvs from (not the project's venv)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def ensure_venv(spec: Any) -> str:
    """The python of the engine's venv, created (or recreated) when its pinned requirements changed."""
    if spec.REQUIREMENTS is None:
        return sys.executable
    venv = os.path.join(VENV_ROOT, f"venv-{spec.NAME}")
    py = os.path.join(venv, "bin", "python")
    want = hashlib.sha256("\n".join(spec.REQUIREMENTS).encode()).hexdigest()
    stamp = os.path.join(venv, ".pgqrs-peers-stamp")
    if os.path.exists(py) and os.path.exists(stamp) and open(stamp).read() == want:
        return py
    t0 = time.time()
    log(f"{spec.NAME}: creating {venv} with {' '.join(spec.REQUIREMENTS)}")
    subprocess.run([base_python(), "-m", "venv", "--clear", venv], check=True)
    subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", *spec.REQUIREMENTS],
                   check=True)
    with open(stamp, "w") as f:
        f.write(want)
    log(f"{spec.NAME}: venv ready in {time.time() - t0:.0f} s")
    return py


def versions(py: str, spec: Any) -> dict[str, str]:
    if spec.REQUIREMENTS is None:
        return {}
    names = [r.split("==")[0].split("[")[0] for r in spec.REQUIREMENTS]
    code = ("import json, importlib.metadata as m; "
            f"print(json.dumps({{n: m.version(n) for n in {names!r}}}))")
    return json.loads(subprocess.run([py, "-c", code], capture_output=True, text=True, check=True).stdout)


# ---- one engine --------------------------------------------------------------------------------------------

class Engine:
    def __init__(self, name: str) -> None:
        self.spec = importlib.import_module(f"engines.{name}")
        self.name = name
        self.db = f"peers_{name}"
        self.py = ensure_venv(self.spec)
        host = os.environ.get("PGHOST", "/tmp/pgqrs-bench")
        port = os.environ.get("PGPORT", "5432")
        user = os.environ.get("PGUSER", "postgres")
        make = getattr(self.spec, "dsn", None)
        self.agent_dsn = make(host, port, user, self.db) if make else lib.dsn(self.db)

    def agent(self, role: str, *args: Any, timeout: float = 600) -> str:
        argv = [self.py, AGENT, self.name, role, self.agent_dsn, *map(str, args)]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError(f"{self.name} {role} failed ({p.returncode}): {p.stderr[-2000:]}")
        return p.stdout

    def fresh(self) -> None:
        lib.recreate_db(self.db)
        self.agent("install")
        lib.checkpoint()

    def workers(self, k: int, tag: str) -> lib.Procs:
        return lib.Procs([[self.py, AGENT, self.name, "worker", self.agent_dsn, str(i)] for i in range(k)],
                         tag)

    def verify(self, n: int) -> int:
        with lib.connect(lib.dsn(self.db)) as conn:
            return int(self.spec.verify(conn, n))


def cpu_per_run(cpu: dict[str, Any], n: int) -> dict[str, Any]:
    cpu["client_cpu_ms_per_run"] = round(1000 * cpu["client_cpu_s"] / n, 3)
    cpu["server_cpu_ms_per_run"] = round(1000 * cpu["server_cpu_s"] / n, 3)
    return cpu


def measure_trigger(e: Engine, n: int) -> dict[str, Any]:
    counters = lib.Counters(e.db)
    load = lib.LoadMeter()
    seconds = json.loads(e.agent("trigger", n))["seconds"]
    cpu = cpu_per_run(load.stop(), n)
    costs = {k.replace("_unit", "_run"): v for k, v in counters.per(n, settle=0.0).items()}
    with lib.connect(lib.dsn(e.db)) as conn:
        total = lib.scalar(conn, e.spec.TOTAL)
    if total != n:
        raise RuntimeError(f"{e.name} A: {total} runs in the database, expected {n}")
    return {"runs_per_s": n / seconds, "seconds": seconds, **costs, **cpu}


def measure_drain(e: Engine, n: int, k: int, tag: str) -> dict[str, Any]:
    polls = 0
    with e.workers(k, tag) as workers:
        workers.wait_ready()
        lib.checkpoint()
        counters = lib.Counters(e.db)
        with lib.connect(lib.dsn(e.db)) as conn:
            conn.prepare_threshold = 0
            load = lib.LoadMeter()
            t0 = time.perf_counter()
            workers.go()
            done = 0
            while done < n:
                time.sleep(0.025)
                done = lib.scalar(conn, lib.TAG + e.spec.DONE_COUNT)
                polls += 1
                workers.check()
                if time.perf_counter() - t0 > 600:
                    raise RuntimeError(f"{tag}: drain timed out with {done}/{n} done")
            wall = time.perf_counter() - t0
            cpu = cpu_per_run(load.stop(), n)
    costs = {k.replace("_unit", "_run"): v for k, v in counters.per(n, runner_commits=polls).items()}
    verified = e.verify(n)
    if verified != n:
        raise RuntimeError(f"{tag}: only {verified} of {n} runs verified")
    with lib.connect(lib.dsn(e.db)) as conn:
        times = conn.execute(e.spec.TIMES).fetchall()
    window = float(max(t[2] for t in times)) - float(min(t[1] for t in times))
    return {"runs_per_s": n / window, "window_s": window, "wall_s": wall, "runs_per_s_wall": n / wall,
            "verified": verified, **costs, **cpu}


def measure_latency(e: Engine, samples: int, warmup: int, gap: tuple[float, float], seed: int,
                    tag: str) -> dict[str, Any]:
    e.fresh()
    with e.workers(1, tag) as workers:
        workers.wait_ready()
        workers.go()
        time.sleep(3.0)  # DBOS launches after go; every worker reaches its idle wait
        load = lib.LoadMeter()
        rows = json.loads(e.agent("latency", warmup + samples, gap[0], gap[1], seed))
        cpu = load.stop()
        workers.check()
    verified = e.verify(warmup + samples)
    if verified != warmup + samples:
        raise RuntimeError(f"{tag}: only {verified} of {warmup + samples} runs verified")
    ms = [1000 * (t1 - t0) for _n, t0, t1 in rows[warmup:]]
    with lib.connect(lib.dsn(e.db)) as conn:
        times = conn.execute(e.spec.TIMES).fetchall()
    return {"p50_ms": lib.percentile(ms, 50), "p99_ms": lib.percentile(ms, 99), "max_ms": max(ms),
            "samples_ms": [round(x, 2) for x in ms],
            "db_pickup_p50_ms": 1000 * statistics.median(float(t[1]) - float(t[0]) for t in times),
            "db_exec_p50_ms": 1000 * statistics.median(float(t[2]) - float(t[1]) for t in times),
            "verified": verified, **cpu}


# ---- main --------------------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", default=",".join(ALL))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--workers", default="1,4")
    ap.add_argument("--lat-samples", type=int, default=30)
    ap.add_argument("--lat-warmup", type=int, default=2)
    ap.add_argument("--gap", default="0.05,0.55", help="random pause before each latency sample (s): lo,hi")
    ap.add_argument("--skip", default="", help="comma list of A,B,C to leave out (A always runs before a B)")
    ap.add_argument("--async-commit", action="store_true", help="expect synchronous_commit=off")
    ap.add_argument("--out", default="/tmp/pgqrs-bench-peers.json")
    ap.add_argument("--md", default="/tmp/pgqrs-bench-peers.md")
    args = ap.parse_args()
    t_start = time.time()
    lib.PGSS = lib.has_pg_stat_statements()
    settings = lib.server_settings()
    want = "off" if args.async_commit else "on"
    if settings["synchronous_commit"] != want or settings["fsync"] != "on":
        sys.exit(f"bench-peers: the cluster has fsync={settings['fsync']}, synchronous_commit="
                 f"{settings['synchronous_commit']}; expected fsync=on, synchronous_commit={want}")
    names = [e for e in args.engines.split(",") if e]
    engines = [Engine(name) for name in names]
    ks = [int(k) for k in args.workers.split(",") if k]
    gap = tuple(float(x) for x in args.gap.split(","))
    skip = {s for s in args.skip.split(",") if s}
    res: dict[str, Any] = {
        "meta": {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "argv": sys.argv, "args": vars(args),
                 "server": settings, "nproc": os.cpu_count(), "loadavg_start": os.getloadavg(),
                 "setup_s": round(time.time() - t_start),
                 "engines": {e.name: {"label": e.spec.LABEL, "settings": e.spec.SETTINGS,
                                      "versions": versions(e.py, e.spec)} for e in engines}},
        "m": {},
    }

    def record(key: str, e: Engine, value: dict[str, Any]) -> None:
        res["m"].setdefault(key, {}).setdefault(e.name, []).append(value)
        lib.dump_json(args.out, res)
        brief = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in value.items()
                 if not isinstance(v, list | dict)}
        log(f"{key} {e.name}: {json.dumps(brief)}")

    for rep in range(args.reps):
        shift = rep % len(engines)
        for e in engines[shift:] + engines[:shift]:
            try:
                if "B" not in skip:
                    for k in ks:
                        e.fresh()
                        record("A", e, measure_trigger(e, args.n))
                        record(f"B{k}", e, measure_drain(e, args.n, k, f"peers-{e.name}-B{k}-r{rep}"))
                elif "A" not in skip:
                    e.fresh()
                    record("A", e, measure_trigger(e, args.n))
                if "C" not in skip:
                    record("C", e, measure_latency(e, args.lat_samples, args.lat_warmup, gap,  # type: ignore[arg-type]
                                                   rep, f"peers-{e.name}-C-r{rep}"))
            except Exception as ex:  # the other engines go on; the failure is in the results
                res["m"].setdefault("errors", {}).setdefault(e.name, []).append(f"{type(ex).__name__}: {ex}")
                lib.dump_json(args.out, res)
                log(f"{e.name}: FAILED {type(ex).__name__}: {ex}")
    for e in engines:
        lib.drop_db(e.db)
    res["meta"]["loadavg_end"] = os.getloadavg()
    res["meta"]["seconds"] = round(time.time() - t_start)
    lib.dump_json(args.out, res)
    md = render(res)
    with open(args.md, "w") as f:
        f.write(md + "\n")
    print(md)
    log(f"done in {res['meta']['seconds']} s; raw results in {args.out}, tables in {args.md}")


def render(res: dict[str, Any]) -> str:
    m = res["meta"]
    srv = m["server"]

    def vals(key: str, name: str, field: str) -> list[float]:
        return [r[field] for r in res["m"].get(key, {}).get(name, []) if field in r]

    def med(xs: list[float]) -> float | None:
        return statistics.median(xs) if xs else None

    ks = sorted(int(k[1:]) for k in res["m"] if k.startswith("B"))
    out = [f"pgqrs bench-peers — {m['started']}; {m['nproc']} cores; {srv['version'].split(' on ')[0]}; "
           f"fsync={srv['fsync']}, synchronous_commit={srv['synchronous_commit']}; N={m['args']['n']} runs, "
           f"{m['args']['reps']} repetitions, {m['args']['lat_samples']} latency samples each; load average "
           f"{m['loadavg_start'][0]:.2f} at start, {m.get('loadavg_end', [0])[0]:.2f} at end; "
           f"{m.get('seconds', 0)} s.", ""]
    header = ["engine", "A trigger runs/s"] + [f"B@{k} runs/s" for k in ks] + \
        ["C p50 ms", "C p99 ms", "write xacts/run", "statements/run", "CPU ms/run (engine + server)"]
    rows = []
    for name, info in m["engines"].items():
        b1 = res["m"].get(f"B{ks[0]}", {}).get(name, []) if ks else []
        wx = [r["write_xacts_per_run"] for r in b1]
        st = [r["statements_per_run"] for r in b1 if "statements_per_run" in r]
        at = res["m"].get("A", {}).get(name, [])
        wx_a = [r["write_xacts_per_run"] for r in at]
        st_a = [r["statements_per_run"] for r in at if "statements_per_run" in r]
        cpu = [r["client_cpu_ms_per_run"] + r["server_cpu_ms_per_run"] for r in b1]
        rows.append([info["label"], lib.fmt_summary(vals("A", name, "runs_per_s"))]
                    + [lib.fmt_summary(vals(f"B{k}", name, "runs_per_s")) for k in ks]
                    + [lib.fmt_summary(vals("C", name, "p50_ms")), lib.fmt_summary(vals("C", name, "p99_ms")),
                       f"{med(wx_a) + med(wx):.1f}" if wx and wx_a else "–",  # type: ignore[operator]
                       f"{med(st_a) + med(st):.1f}" if st and st_a else "–",  # type: ignore[operator]
                       f"{med(cpu):.2f}" if cpu else "–"])
    out.append(lib.md_table(header, rows))
    out.append("")
    if "ours" in m["engines"]:
        rrows = []
        for name, info in m["engines"].items():
            if name == "ours":
                continue
            cells = [info["label"]]
            cols = [("A", "runs_per_s")] + [(f"B{k}", "runs_per_s") for k in ks] + [("C", "p50_ms")]
            for key, field in cols:
                ours, theirs = med(vals(key, "ours", field)), med(vals(key, name, field))
                if ours is None or theirs is None:
                    cells.append("–")
                elif field == "p50_ms":
                    cells.append(f"{theirs / ours:.1f}× faster" if ours < theirs
                                 else f"{ours / theirs:.1f}× slower")
                else:
                    cells.append(f"{ours / theirs:.2f}×")
            rrows.append(cells)
        out.append("pgqrs (this repository) relative to each (throughput: pgqrs ÷ engine; latency: p50 "
                   "ratio):")
        out.append("")
        out.append(lib.md_table(["vs", "A"] + [f"B@{k}" for k in ks] + ["C p50"], rrows))
        out.append("")
    fc = []
    for key, per in res["m"].items():
        if key == "errors":
            continue
        for name, rs in per.items():
            xs = [r["foreign_cpu_pct"] for r in rs if "foreign_cpu_pct" in r]
            if xs:
                fc.append(f"{key}/{name} {med(xs):.0f} %")
    out.append("CPU used by other processes during the measurements (median, % of all cores): "
               + "; ".join(fc) + ".")
    out.append("")
    for info in m["engines"].values():
        ver = ", ".join(f"{k} {v}" for k, v in info["versions"].items()) or "project .venv"
        out.append(f"- {info['label']} ({ver}): {info['settings']}")
    for name, errs in res["m"].get("errors", {}).items():
        out.append(f"- FAILED {name}: " + " | ".join(errs))
    return "\n".join(out)


if __name__ == "__main__":
    main()
