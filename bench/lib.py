"""Shared plumbing of the benchmarks: the cluster, databases, counters, worker processes, statistics.

Everything here talks to the cluster named by the libpq environment (PGHOST, PGPORT, PGUSER), which
`make bench` points at its own durable cluster (scripts/pg.sh with PGQRS_PGDIR=/tmp/pgqrs-bench).
"""

from __future__ import annotations

import json
import math
import os
import select
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
LOG_DIR = os.environ.get("PGQRS_BENCH_LOGS", "/tmp/pgqrs-bench-logs")
# The runner's own queries during a workload carry this tag, so pg_stat_statements counts leave them out.
TAG = "/*bench-runner*/ "
# Whether the cluster preloads pg_stat_statements (run.py sets it once at start).
PGSS = False


def dsn(db: str) -> str:
    host = os.environ.get("PGHOST", "/tmp/pgqrs-bench")
    port = os.environ.get("PGPORT", "5432")
    user = os.environ.get("PGUSER", "postgres")
    return f"host={host} port={port} user={user} dbname={db}"


def connect(db_dsn: str) -> psycopg.Connection[Any]:
    return psycopg.connect(db_dsn, autocommit=True)


def scalar(conn: psycopg.Connection[Any], sql: str, params: Sequence[Any] | None = None) -> Any:
    row = conn.execute(sql, params).fetchone()
    return None if row is None else row[0]


def admin() -> psycopg.Connection[Any]:
    return connect(dsn("postgres"))


def recreate_db(name: str) -> str:
    """Drop and create database `name`; returns its DSN."""
    with admin() as c:
        c.execute("set client_min_messages = warning")
        c.execute(f'drop database if exists "{name}" with (force)')
        c.execute(f'create database "{name}"')
    return dsn(name)


def drop_db(name: str) -> None:
    with admin() as c:
        c.execute(f'drop database if exists "{name}" with (force)')


def cpu_ns(pid: int) -> int:
    """Nanoseconds process `pid` (a server backend) has spent on a CPU: /proc/<pid>/schedstat."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def checkpoint() -> None:
    with admin() as c:
        c.execute("checkpoint")


def server_settings() -> dict[str, str]:
    out: dict[str, str] = {}
    with admin() as c:
        out["version"] = scalar(c, "select version()")
        for g in ("fsync", "synchronous_commit", "full_page_writes", "shared_buffers", "wal_sync_method",
                  "shared_preload_libraries", "max_connections"):
            out[g] = scalar(c, f"show {g}")
    return out


def has_pg_stat_statements() -> bool:
    with admin() as c:
        if "pg_stat_statements" not in (scalar(c, "show shared_preload_libraries") or ""):
            return False
        c.execute("create extension if not exists pg_stat_statements")
        return True


# ---- counters: round trips, commits, write transactions, WAL -----------------------------------------------

class Counters:
    """Snapshot of what a workload cost the server, taken before and after it.

    statements: top-level statements (= client round trips) in one database from pg_stat_statements, without
    the runner's tagged queries; xids: transactions that wrote (each waits for a WAL flush when
    synchronous_commit is on); commits: pg_stat_database.xact_commit (also read-only ones, and the
    transactions a LISTENing backend runs to read notifications; flushed by backends at most once a second
    and at exit, so read it after the workers are gone); wal: bytes of WAL.
    """

    def __init__(self, db: str, pgss: bool | None = None) -> None:
        self.db = db
        self.pgss = PGSS if pgss is None else pgss
        self.before = self._read()

    def _read(self) -> dict[str, float]:
        with admin() as c:
            c.execute("select pg_stat_clear_snapshot()")
            row = c.execute(
                "select pg_snapshot_xmax(pg_current_snapshot())::text::bigint, pg_current_wal_lsn(),"
                " (select xact_commit from pg_stat_database where datname = %s)", (self.db,)).fetchone()
            assert row is not None
            xid, lsn, commits = row
            wal = scalar(c, "select pg_wal_lsn_diff(%s, '0/0')", (lsn,))
            stmts = 0.0
            if self.pgss:
                stmts = float(scalar(c, """select coalesce(sum(s.calls), 0) from pg_stat_statements s
                    join pg_database d on d.oid = s.dbid
                    where d.datname = %s and s.toplevel and s.query not like '/*bench-runner*/%%'""",
                                     (self.db,)))
        return {"xids": float(xid), "wal": float(wal), "commits": float(commits or 0), "statements": stmts}

    def per(self, n: int, runner_commits: int = 0, settle: float = 1.2) -> dict[str, float]:
        """Costs per unit (n units) since construction. `runner_commits`: the runner's own transactions in the
        database meanwhile (its polling), subtracted from the commit count."""
        time.sleep(settle)  # backends flush their commit counters at most once a second
        after = self._read()
        d = {k: after[k] - self.before[k] for k in after}
        out = {"write_xacts_per_unit": round(d["xids"] / n, 2),
               "commits_per_unit": round((d["commits"] - runner_commits) / n, 2),
               "wal_bytes_per_unit": round(d["wal"] / n)}
        if self.pgss:
            out["statements_per_unit"] = round(d["statements"] / n, 2)
        return out


def reset_statements() -> None:
    with admin() as c:
        c.execute("select pg_stat_statements_reset()")


def top_statements(db: str, limit: int = 12) -> list[tuple[str, int, float]]:
    """(query, calls, mean ms) of the busiest statements in `db`, the runner's own left out."""
    with admin() as c:
        rows = c.execute("""select regexp_replace(s.query, '\\s+', ' ', 'g'), s.calls, s.mean_exec_time
            from pg_stat_statements s join pg_database d on d.oid = s.dbid
            where d.datname = %s and s.toplevel and s.query not like '/*bench-runner*/%%'
            order by s.calls desc limit %s""", (db, limit)).fetchall()
    return [(q, int(calls), round(float(ms), 3)) for q, calls, ms in rows]


# ---- machine load ------------------------------------------------------------------------------------------

_HZ = os.sysconf("SC_CLK_TCK")


def _postmaster_pid() -> int | None:
    pgdir = os.environ.get("PGHOST", "")
    try:
        with open(os.path.join(pgdir, "postmaster.pid")) as f:
            return int(f.readline())
    except (OSError, ValueError):
        return None


def _proc_table() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, utime + stime ticks) for every process we can read; for the two roots of LoadMeter the
    ticks include their reaped children's (cutime + cstime: exited workers, backends of closed sessions)."""
    table: dict[int, tuple[int, int]] = {}
    roots = {os.getpid(), _postmaster_pid()}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                text = f.read()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        ticks = int(fields[11]) + int(fields[12])
        if int(name) in roots:
            ticks += int(fields[13]) + int(fields[14])
        table[int(name)] = (int(fields[1]), ticks)
    return table


def _machine_busy_ticks() -> int:
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = parts[:8]
    return user + nice + system + irq + softirq + steal


class LoadMeter:
    """Machine CPU while a workload runs: total busy, and the part used by processes outside this benchmark
    (not the runner, its descendants, nor the benchmark cluster's server processes) -- other tenants. Both in
    % of all cores; a high foreign share marks a noisy measurement."""

    def __init__(self) -> None:
        self.client_root = os.getpid()
        self.server_root = _postmaster_pid() or -1
        self.t0 = time.monotonic()
        self.busy0 = _machine_busy_ticks()
        self.mine0 = self._mine()

    def _mine(self) -> dict[int, tuple[str, int]]:
        """pid -> ("client" | "server", CPU ticks) for the runner's and the cluster's process trees."""
        table = _proc_table()
        mine: dict[int, tuple[str, int]] = {}
        for pid, (_ppid, ticks) in table.items():
            p, hops = pid, 0
            while p > 1 and hops < 20:
                if p in (self.client_root, self.server_root):
                    mine[pid] = ("client" if p == self.client_root else "server", ticks)
                    break
                p = table.get(p, (0, 0))[0]
                hops += 1
        return mine

    def stop(self) -> dict[str, float]:
        """Also the CPU seconds used by the runner and its workers (client) and by the cluster (server): a
        cost that, unlike throughput, hardly depends on what else the machine does."""
        elapsed = time.monotonic() - self.t0
        busy = (_machine_busy_ticks() - self.busy0) / _HZ
        used = {"client": 0.0, "server": 0.0}
        for pid, (side, ticks) in self._mine().items():
            used[side] += (ticks - self.mine0.get(pid, (side, 0))[1]) / _HZ
        mine = used["client"] + used["server"]
        cap = max(elapsed, 1e-9) * (os.cpu_count() or 1)
        return {"cpu_busy_pct": round(100 * busy / cap, 1),
                "foreign_cpu_pct": round(100 * max(0.0, busy - mine) / cap, 1),
                "loadavg_1m": round(os.getloadavg()[0], 2),
                "client_cpu_s": round(used["client"], 3), "server_cpu_s": round(used["server"], 3)}


# ---- worker processes --------------------------------------------------------------------------------------

class Procs:
    """k worker processes started from one command line each; each prints `ready` once set up and starts its
    loop when the runner writes `go` to its stdin. Stopped with SIGTERM (then SIGKILL), by PID."""

    def __init__(self, argvs: Iterable[Sequence[str]], tag: str, env: dict[str, str] | None = None) -> None:
        os.makedirs(LOG_DIR, exist_ok=True)
        self.procs: list[subprocess.Popen[str]] = []
        self.logs = []
        for i, argv in enumerate(argvs):
            log = open(os.path.join(LOG_DIR, f"{tag}-{i}.log"), "w")
            self.logs.append(log)
            self.procs.append(subprocess.Popen(list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                               stderr=log, text=True, env=env))
        self.tag = tag

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        for p in self.procs:
            assert p.stdout is not None
            while True:
                left = deadline - time.monotonic()
                ready, _, _ = select.select([p.stdout], [], [], max(0.0, left))
                line = p.stdout.readline() if ready else ""
                if line.strip() == "ready":
                    break
                if not line or left <= 0:
                    raise RuntimeError(f"{self.tag}: worker {p.pid} did not get ready; "
                                       f"see {LOG_DIR}/{self.tag}-*.log")

    def go(self) -> None:
        for p in self.procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()

    def check(self) -> None:
        for p in self.procs:
            if p.poll() is not None:
                raise RuntimeError(f"{self.tag}: worker {p.pid} exited with {p.returncode}; see {LOG_DIR}")

    def stop(self, grace: float = 10.0) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + grace
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for log in self.logs:
            log.close()

    def __enter__(self) -> Procs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_go() -> None:
    """Worker side of Procs: say ready, block until go (exit quietly if the runner went away)."""
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    if sys.stdin.readline().strip() != "go":
        os._exit(0)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# ---- statistics and tables ---------------------------------------------------------------------------------

def percentile(xs: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0-100)."""
    s = sorted(xs)
    k = max(0, min(len(s) - 1, math.ceil(q / 100 * len(s)) - 1))
    return s[k]


def summary(xs: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def fmt_num(x: float) -> str:
    if x >= 1000:
        return f"{x:,.0f}"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def fmt_summary(xs: Sequence[float] | None) -> str:
    if not xs:
        return "–"
    s = summary(xs)
    if len(xs) == 1:
        return fmt_num(s["median"])
    return f"{fmt_num(s['median'])} ({fmt_num(s['min'])}–{fmt_num(s['max'])})"


def md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def dump_json(path: str, obj: Any) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, default=str)
    os.replace(tmp, path)
