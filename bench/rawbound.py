"""The raw-SQL bound: plain psycopg doing the commits a durable 3-step run cannot do without.

Per run, each statement its own committed transaction (autocommit, prepared statements, one round trip each):
  trigger  INSERT the run (+ NOTIFY in the same statement)                                   1 commit
  worker   claim the oldest queued run (UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED))  1 commit
           INSERT one checkpoint row per step                                                3 commits
           UPDATE the run to SUCCESS with its output (+ NOTIFY for a waiting client)         1 commit
No engine logic (no leases, retries, fencing, journal replay): what the same durable writes cost alone.
One run in flight per worker process; an idle worker waits on LISTEN (1 s fallback poll).
"""

from __future__ import annotations

import json
import time
from typing import Any

import psycopg

SCHEMA = """
create table runs (
    id bigint generated always as identity primary key,
    input jsonb not null,
    status text not null default 'QUEUED',
    output jsonb,
    worker integer,
    created_at timestamptz not null default clock_timestamp(),
    started_at timestamptz,
    finished_at timestamptz
);
create index runs_queued_idx on runs (id) where status = 'QUEUED';
create table steps (
    run_id bigint not null references runs (id),
    step_id text not null,
    value jsonb not null,
    primary key (run_id, step_id)
);
"""

TRIGGER = ("with r as (insert into runs (input) values (%s::jsonb) returning id)"
           " select id, pg_notify('raw_runs', '') from r")
TRIGGER_BATCH = """with r as (insert into runs (input) select value from jsonb_array_elements(%s::jsonb)
    returning id) select (select count(*) from r), pg_notify('raw_runs', '')"""
CLAIM = """update runs set status = 'RUNNING', worker = %s, started_at = clock_timestamp()
    where id = (select id from runs where status = 'QUEUED' order by id limit 1 for update skip locked)
    returning id, input"""
STEP = "insert into steps (run_id, step_id, value) values (%s, %s, %s::jsonb)"
FINISH = """with u as (update runs set status = 'SUCCESS', output = %s::jsonb, finished_at = clock_timestamp()
    where id = %s and worker = %s returning id) select pg_notify('raw_done', id::text) from u"""

DONE_SQL = "select count(*) from runs where status = 'SUCCESS'"
TOTAL_SQL = "select count(*) from runs"
TIMES_SQL = """select extract(epoch from created_at)::float8, extract(epoch from started_at)::float8,
    extract(epoch from finished_at)::float8 from runs where status = 'SUCCESS'"""
VERIFY_SQL = """
select count(distinct (r.input->>'n')::int) from runs r
 where r.status = 'SUCCESS'
   and (r.input->>'n')::int between 0 and %(n)s - 1
   and r.output = jsonb_build_object('sum', 3 * (r.input->>'n')::int + 3)
   and (select count(*) from steps s where s.run_id = r.id
         and s.value = jsonb_build_object('i', (r.input->>'n')::int
             + case s.step_id when 'a' then 0 when 'b' then 1 when 'c' then 2 end)) = 3
"""


def install(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)


def fill(db_dsn: str, first: int, count: int, batch: int = 1000) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        for lo in range(first, first + count, batch):
            hi = min(first + count, lo + batch)
            conn.execute(TRIGGER_BATCH, (json.dumps([{"n": i} for i in range(lo, hi)]),))


def trigger_many(db_dsn: str, n: int, batch: int) -> float:
    """Seconds to trigger runs 0..n-1 from one client: a statement per run, or `batch` runs per statement."""
    with psycopg.connect(db_dsn, autocommit=True, prepare_threshold=0) as conn:
        t0 = time.perf_counter()
        if batch == 1:
            for i in range(n):
                conn.execute(TRIGGER, (json.dumps({"n": i}),)).fetchone()
        else:
            for lo in range(0, n, batch):
                conn.execute(TRIGGER_BATCH, (json.dumps([{"n": i} for i in range(lo, min(n, lo + batch))]),))
        return time.perf_counter() - t0


def worker(db_dsn: str, idx: int, ready: Any, first_step_log: Any = None) -> None:
    conn = psycopg.connect(db_dsn, autocommit=True, prepare_threshold=0)
    conn.execute("listen raw_runs")
    ready()
    while True:
        row = conn.execute(CLAIM, (idx,)).fetchone()
        if row is None:
            for _ in conn.notifies(timeout=1.0, stop_after=1):
                pass
            continue
        run_id, inp = row
        n = inp["n"]
        total = 0
        for k, step_id in enumerate(("a", "b", "c")):
            if k == 0 and first_step_log is not None:
                first_step_log.write(f"{n} {time.time():.6f}\n")
                first_step_log.flush()
            value = {"i": n + k}
            conn.execute(STEP, (run_id, step_id, json.dumps(value)))
            total += value["i"]
        conn.execute(FINISH, (json.dumps({"sum": total}), run_id, idx))


def latency(db_dsn: str, samples: int, gap: tuple[float, float], rng: Any) -> list[tuple[int, float, float]]:
    """Trigger one run at a time with an idle worker; (n, trigger start epoch, result seen epoch) per run.
    The client LISTENs for the worker's completion NOTIFY (the raw counterpart of pgqrs's result())."""
    out = []
    with psycopg.connect(db_dsn, autocommit=True, prepare_threshold=0) as conn, \
            psycopg.connect(db_dsn, autocommit=True) as listener:
        listener.execute("listen raw_done")
        for n in range(samples):
            time.sleep(rng.uniform(*gap))
            t0 = time.time()
            run_id = conn.execute(TRIGGER, (json.dumps({"n": n}),)).fetchone()[0]  # type: ignore[index]
            deadline = time.monotonic() + 30
            done = False
            while not done:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"raw run {run_id} did not finish within 30 s")
                for note in listener.notifies(timeout=1.0):
                    if note.payload == str(run_id):
                        done = True
                        break
            out.append((n, t0, time.time()))
    return out


def verify(conn: psycopg.Connection[Any], n: int) -> int:
    row = conn.execute(VERIFY_SQL, {"n": n}).fetchone()
    assert row is not None
    return int(row[0])
