"""How fast the dashboard renders its pages with 1M runs in the database (issue 19).

Fills a database of its own (`pgqrs_dashbench`, kept between runs: --refill to redo it) with N runs (default
1M) straight into the pgqrs tables, as bench/depth.py does: three workflows, runs spread over 30 days, mostly
SUCCESS with 3 steps each, 2 % dead letters with an error and a traceback, some queued; then VACUUM ANALYZE
as autovacuum would after a bulk load. Then renders pages through the dashboard's ASGI app in process (the
whole request: routing, queries, template) and prints the median and p95 of each, plus the plan of the runs
page's query, so a missing index shows.

    PGQRS_PGDIR=/tmp/pgqrs-dash make db && eval "$(scripts/pg.sh env)"
    .venv/bin/python bench/dashboard.py [--runs 1000000] [--reps 20] [--refill]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from typing import Any

import lib

import pgqrs

DB = "pgqrs_dashbench"
WORKFLOWS = ("orders", "emails", "reports")
FILL = """
with r as (
    insert into pgqrs.runs (workflow_id, status, input, output, error, attempt, idempotency_key, created_at,
                            started_at, finished_at, updated_at)
    select w.ids[1 + g %% 3], case when g %% 50 = 0 then 'ERROR' else 'SUCCESS' end,
           jsonb_build_object('n', g, 'customer', 'c' || (g %% 997)),
           case when g %% 50 <> 0 then jsonb_build_object('sum', 3 * g) end,
           case when g %% 50 = 0 then jsonb_build_object('type', 'ValueError', 'message', 'bad row ' || g,
                'traceback', 'Traceback (most recent call last):\n  ValueError: bad row ' || g) end,
           1, 'key-' || g, t.at, t.at, t.at + interval '2 seconds', t.at + interval '2 seconds'
    from generate_series(%(lo)s::bigint, %(hi)s::bigint) as g,
         lateral (select now() - interval '30 days' * (1 - g::float8 / %(total)s) as at) as t,
         (select array_agg(workflow_id order by workflow_id) as ids from pgqrs.workflows) as w
    returning run_id, workflow_id, status, created_at, idempotency_key
), k as (
    insert into pgqrs.idempotency_keys (workflow_id, idempotency_key, run_id)
    select r.workflow_id, r.idempotency_key, r.run_id from r
), a as (
    insert into pgqrs.messages_archive (message_id, queue_id, outcome, enqueued_at, archived_at, read_count)
    select r.run_id, q.queue_id, case when r.status = 'ERROR' then 'DEAD_LETTER' else 'SUCCESS' end,
           r.created_at, r.created_at + interval '2 seconds', 1
    from r join pgqrs.queues as q using (workflow_id)
)
insert into pgqrs.steps (run_id, step_id, status, value, attempt, started_at, completed_at, updated_at)
select r.run_id, x.step_id, 'SUCCESS', jsonb_build_object('i', x.k), 1, r.created_at,
       r.created_at + interval '0.5 seconds', r.created_at + interval '0.5 seconds'
from r cross join (values ('fetch', 0), ('transform', 1), ('store', 2)) as x (step_id, k)
"""
QUEUED = "select count(*) from pgqrs.trigger_batch(p_workflow => %s, p_inputs => %s::jsonb)"


def fill(runs: int, width: int | None = None) -> str:
    """A fresh database with the schema and `runs` runs; returns its DSN. `width`: the history in partitions
    of that many run ids (pgqrs.maintain_history), else the fresh install's (1,000,000 ids each)."""
    dsn = lib.recreate_db(DB)
    pgqrs.install(dsn)
    with lib.connect(dsn) as conn:
        if width:  # the fresh install's partitions (empty) replaced by narrower ones, made ahead as runs come
            for (first,) in conn.execute("select first_id from pgqrs._history_partitions()").fetchall():
                conn.execute(f"drop table pgqrs.runs_from_{first}, pgqrs.steps_from_{first},"
                             f" pgqrs.messages_archive_from_{first}")
        for name in WORKFLOWS:
            conn.execute("select pgqrs.create_workflow(p_name => %s)", (name,))
        chunk = 100_000
        for lo in range(1, runs + 1, chunk):
            conn.execute("select pgqrs.maintain_history(%s)", (width,))
            conn.execute(FILL, {"lo": lo, "hi": min(lo + chunk - 1, runs), "total": runs})
            print(f"  filled {min(lo + chunk - 1, runs):,} runs", file=sys.stderr)
        conn.execute(QUEUED, ("orders", "[" + ",".join('{"queued": true}' for _ in range(500)) + "]"))
        conn.execute("vacuum analyze")
    return dsn


def existing(runs: int) -> str | None:
    """The DSN of the filled database when it holds `runs` runs already."""
    with lib.admin() as conn:
        if not lib.scalar(conn, "select 1 from pg_database where datname = %s", (DB,)):
            return None
    dsn = lib.dsn(DB)
    pgqrs.install(dsn)  # this checkout's views and grants
    with lib.connect(dsn) as conn:
        have = lib.scalar(conn, "select count(*) from pgqrs.run_overview")
    return dsn if have >= runs else None


def measure(client: Any, path: str, reps: int) -> list[float]:
    client.get(path)  # warm: pool connections, templates, the plan cache
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
    return times


def over_http(dsn: str, path: str, reps: int) -> list[float]:
    """Times of GET `path` from a `pgqrs dashboard` process (read-only, a free port), in ms."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "pgqrs", "dashboard", "--dsn", dsn, "--port", str(port),
                             "--read-only"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}{path}"
    try:
        for _ in range(100):  # until it answers (10 s)
            try:
                urllib.request.urlopen(url, timeout=5).read()
                break
            except OSError:
                time.sleep(0.1)
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            urllib.request.urlopen(url, timeout=5).read()
            times.append((time.perf_counter() - start) * 1000)
        return times
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--refill", action="store_true")
    args = parser.parse_args()
    dsn = None if args.refill else existing(args.runs)
    if dsn is None:
        print(f"filling {DB} with {args.runs:,} runs", file=sys.stderr)
        dsn = fill(args.runs)

    from starlette.testclient import TestClient

    from pgqrs.dashboard import DashboardConfig, create_app

    app = create_app(DashboardConfig(dsn=dsn, read_only=True))
    with lib.connect(dsn) as conn:
        middle = lib.scalar(conn, "select max(run_id) / 2 from pgqrs.runs")
        since = lib.scalar(conn, "select to_char(now() - interval '20 days', 'YYYY-MM-DD\"T\"HH24:MI')")
    pages = {
        "runs, first page of 100": "/runs",
        "runs, a page in the middle (keyset)": f"/runs?before={middle}",
        "runs of one workflow": "/runs?workflow=emails",
        "runs with status ERROR": "/runs?status=ERROR",
        "runs with status QUEUED (500 of them)": "/runs?status=QUEUED",
        "runs created before a time": f"/runs?until={since}",
        "runs by idempotency key": "/runs?key=key-4242",
        "run detail": f"/runs/{middle}",
        "overview": "/",
        "dead letters": "/dead",
    }
    print(f"\n{args.runs:,} runs; median and p95 of {args.reps} requests (ms), in process:\n")
    with TestClient(app) as client:
        for label, path in pages.items():
            t = measure(client, path, args.reps)
            p95 = sorted(t)[max(0, int(len(t) * 0.95) - 1)]
            print(f"  {label:40} {statistics.median(t):8.1f} {p95:8.1f}   {path}")
    print(f"\nover HTTP, `pgqrs dashboard` in its own process (uvicorn), {args.reps} requests:\n")
    for label, path in (("runs, first page of 100", "/runs"), ("run detail", f"/runs/{middle}")):
        t = over_http(dsn, path, args.reps)
        print(f"  {label:40} {statistics.median(t):8.1f} {sorted(t)[int(len(t) * 0.95) - 1]:8.1f}   {path}")
    print("\nplan of the runs page (status ERROR):")
    from pgqrs._sql import dashboard as dash_sql

    with lib.connect(dsn) as conn:
        params = {"before": None, "workflow": None, "status": "ERROR", "since": None, "until": None,
                  "limit": 101}
        for (line,) in conn.execute(("explain (analyze, costs off) " + dash_sql.RUNS_PAGE).encode(), params):
            print("  " + line)


if __name__ == "__main__":
    main()
