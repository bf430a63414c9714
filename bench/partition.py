"""Partitioned history or not (issue 20): what native range partitioning of the run tables would cost the hot
path, and what it would save a purge.

Partitioning `pgqrs.runs` and `pgqrs.steps` by run id (the only key every hot statement has) would let a purge
drop a whole partition of old runs, a change of the catalog, instead of deleting them in batches. But every
hot statement then works on a partitioned table. This measures both sides on tables of the shape of
`pgqrs.runs` (run id, status, attempt, times, input), N rows, flat and split into 8, 32 and 128 range
partitions:

- hot path: one session calls a PL/pgSQL function making the statements a run's life makes on its row by
  key (dequeue's update, complete_run's locked read and update, run_status' read) for random run ids, one
  transaction per call as in the engine (prepared); the server CPU per call (its backend's, as
  bench/profile_sql.py reads it), with PL/pgSQL's default plans and with generic plans (plan_cache_mode), the
  layouts alternating for --reps rounds of --calls calls, the median and the ratio against the flat table;
- removal of the oldest half of the rows: a DELETE of 10,000 rows per transaction (what pgqrs.purge_runs
  does) on the flat table, a DROP of the partitions holding them on the partitioned ones; time and WAL.

    PGQRS_PGDIR=/tmp/pgqrs-bench PGQRS_FSYNC=on scripts/pg.sh start && eval "$(scripts/pg.sh env)"
    .venv/bin/python bench/partition.py [--rows 1000000] [--calls 3000] [--reps 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from typing import Any

import lib

DB = "bench_partition"
LAYOUTS = {"flat": 0, "8 partitions": 8, "32 partitions": 32, "128 partitions": 128}
# how PL/pgSQL plans the statements: its default (a custom plan per call while that looks cheaper: partitions
# pruned when planning), or one generic plan (partitions pruned when executing, after every one is locked)
PLANS = ("custom", "generic")
COLUMNS = ("run_id bigint primary key, status text not null, attempt integer not null default 0,"
           " input jsonb not null, started_at timestamptz, updated_at timestamptz not null default now()")
# the statements of a run's life on its own row, by key, as the engine makes them (one transaction per call)
LIFE = """
create function {t}_life{suffix}(p_run bigint) returns void language plpgsql {settings} as $$
declare
    v_status text;
begin
    update {t} set status = 'RUNNING', attempt = attempt + 1, started_at = coalesce(started_at, now()),
        updated_at = now() where run_id = p_run;
    select status into v_status from {t} where run_id = p_run for no key update;
    update {t} set status = 'SUCCESS', updated_at = now() where run_id = p_run;
    perform status, input from {t} where run_id = p_run;
end
$$"""


def table(parts: int) -> str:
    return "flat" if parts == 0 else f"p{parts}"


def create(conn: Any, rows: int, parts: int) -> None:
    t = table(parts)
    if parts == 0:
        conn.execute(f"create table {t} ({COLUMNS})")
    else:
        conn.execute(f"create table {t} ({COLUMNS}) partition by range (run_id)")
        span = -(-rows // parts)
        for i in range(parts):
            conn.execute(f"create table {t}_{i} partition of {t}"
                         f" for values from ({i * span + 1}) to ({(i + 1) * span + 1})")
    conn.execute(f"insert into {t} (run_id, status, input) select g, 'SUCCESS', '{{\"order\": 1}}'"
                 f" from generate_series(1, {rows}) as g")
    conn.execute(f"vacuum analyze {t}")
    conn.execute(LIFE.format(t=t, suffix="", settings=""))
    conn.execute(LIFE.format(t=t, suffix="_generic", settings="set plan_cache_mode = force_generic_plan"))


def hot_path_us(conn: Any, rows: int, parts: int, plans: str, calls: int, rng: random.Random) -> float:
    """Server CPU microseconds per call of the run-life function (its backend's CPU time around `calls` calls,
    each its own transaction, prepared: hardly moved by other load on the machine)."""
    pid = lib.scalar(conn, "select pg_backend_pid()")
    query = f"select {table(parts)}_life{'_generic' if plans == 'generic' else ''}(%s)"
    for _ in range(50):  # warm: plans made, pages cached
        conn.execute(query, (rng.randint(1, rows),), prepare=True)
    before = lib.cpu_ns(pid)
    for _ in range(calls):
        conn.execute(query, (rng.randint(1, rows),), prepare=True)
    return (lib.cpu_ns(pid) - before) / calls / 1000


def removal(conn: Any, rows: int, parts: int) -> dict[str, float]:
    """Remove the rows with the lower half of the ids: seconds and WAL bytes."""
    t, half = table(parts), rows // 2
    lsn = lib.scalar(conn, "select pg_current_wal_lsn()")
    t0 = time.perf_counter()
    if parts == 0:
        while conn.execute(f"delete from {t} where run_id in (select run_id from {t} where run_id <= {half}"
                           " order by run_id limit 10000)").rowcount:
            pass
    else:
        for i in range(parts // 2):
            conn.execute(f"drop table {t}_{i}")
    took = time.perf_counter() - t0
    wal = lib.scalar(conn, "select pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", (lsn,))
    return {"seconds": took, "wal_bytes": float(wal)}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--calls", type=int, default=3000, help="calls per layout and round")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    db_dsn = lib.recreate_db(DB)
    with lib.connect(db_dsn) as conn:
        for parts in LAYOUTS.values():
            create(conn, args.rows, parts)
        lib.checkpoint()
        calls: dict[tuple[str, str], list[float]] = {(name, p): [] for name in LAYOUTS for p in PLANS}
        rng = random.Random(1)
        for _ in range(args.reps):
            for (name, plans), got in calls.items():
                got.append(hot_path_us(conn, args.rows, LAYOUTS[name], plans, args.calls, rng))
        removed = {name: removal(conn, args.rows, parts) for name, parts in LAYOUTS.items()}
    lib.drop_db(DB)
    print(f"{args.rows:,} rows; hot path: server CPU per call, median of {args.reps} rounds of {args.calls:,}"
          f" calls; removal: the oldest {args.rows // 2:,} rows")
    rows = []
    for name in LAYOUTS:
        cells = [name]
        for plans in PLANS:
            us = calls[(name, plans)]
            ratio = statistics.median(us) / statistics.median(calls[("flat", plans)])
            cells += [f"{statistics.median(us):.1f} ({min(us):.1f}–{max(us):.1f})", f"{ratio:.2f}×"]
        cells += [f"{removed[name]['seconds'] * 1000:,.0f} ms", f"{removed[name]['wal_bytes'] / 1e6:,.1f} MB"]
        rows.append(cells)
    print(lib.md_table(["layout", "custom plans: server CPU µs per run life", "vs flat",
                        "generic plans: server CPU µs per run life", "vs flat", "remove oldest half",
                        "WAL written"], rows))


if __name__ == "__main__":
    main()
