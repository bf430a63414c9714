"""Event wake-up latency for `make bench` (--only wakeup): emit -> the waiting run's next step starts.

N runs wait, each on its own key; one idle worker process holds them all (a WAITING run holds no worker slot,
so concurrency 1 is enough). The runner then emits the keys one at a time, each after a random pause, and
takes the time just before the emit call; the step after the wait takes the time its body starts and returns
it as its value (the run's output). Both times come from one clock: CLOCK_MONOTONIC (`time.monotonic()`),
which Linux keeps machine-wide, so the runner's and the worker's readings compare.

pgqrs: `bench_wake` = `await ctx.wait_for_event(key)`, then step `after_wait` (bench/worker.py --workload
wakeup runs it with the stock consumer); the runner emits with `store.emit_event`.
raw-SQL bound: the same wake-up in plain SQL (psycopg, autocommit, prepared statements):
  wait     the worker claims a run and, as no event is there, sets it WAITING with its key       (not timed)
  emit     one statement: INSERT the event (first wins), UPDATE the runs waiting on the key to QUEUED with
           the payload, NOTIFY                                                                   1 commit
  wake-up  the worker's LISTEN wakes it, it claims the run (the e2e bound's UPDATE ... SKIP LOCKED), the
           payload comes back with the claim, and the next step starts                            1 commit
No leases, fencing, journal, replay, race guard between an emit and a wait: the durable writes alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from typing import Any

import benchwf
import lib
import psycopg

import pgqrs

WF = "bench_wake"


def key_of(n: int) -> str:
    return f"bench-wake:{n}"


# ---- pgqrs -------------------------------------------------------------------------------------------------

@pgqrs.step
async def after_wait(n: int) -> dict[str, Any]:
    return {"n": n, "t": time.monotonic()}


@pgqrs.workflow(name=WF)
async def wake_wf(ctx: pgqrs.WorkflowContext, inp: dict[str, int]) -> dict[str, Any]:
    n = inp["n"]
    payload = await ctx.wait_for_event(key_of(n))
    if payload != {"n": n}:
        raise RuntimeError(f"run {n}: wrong payload {payload!r}")
    return await after_wait(n)


PGQRS_WAITING_SQL = "select count(*) from pgqrs.waiting_runs where kind = 'event'"
PGQRS_STARTS_SQL = """select (r.input->>'n')::int, (r.output->>'t')::float8 from pgqrs.runs r
    where r.status = 'SUCCESS'"""
# A run counts when it is SUCCESS with its own n, the wait step holds its payload, the next step its n, and
# nothing else was recorded; n in 0..N-1, each once.
PGQRS_VERIFY_SQL = """
select count(distinct (r.input->>'n')::int) from pgqrs.runs r
 where r.status = 'SUCCESS' and (r.input->>'n')::int between 0 and %(n)s - 1
   and (r.output->>'n')::int = (r.input->>'n')::int
   and (select count(*) from pgqrs.steps s where s.run_id = r.run_id) = 2
   and exists (select from pgqrs.steps s where s.run_id = r.run_id and s.step_id = 'wait_for_event'
               and s.status = 'SUCCESS' and s.value = jsonb_build_object('payload', jsonb_build_object('n',
               (r.input->>'n')::int)))
   and exists (select from pgqrs.steps s where s.run_id = r.run_id and s.step_id = 'after_wait'
               and s.status = 'SUCCESS' and s.value = r.output)
"""


def pgqrs_install(db_dsn: str, n: int) -> None:
    benchwf.install(db_dsn)  # the engine (PGQRS_BENCH_SQL=DIR: another SQL tree), as for the other phases
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("select pgqrs.create_workflow(p_name => %s)", (WF,))
        conn.execute("select count(*) from pgqrs.trigger_batch(p_workflow => %s, p_inputs => %s::jsonb)",
                     (WF, json.dumps([{"n": i} for i in range(n)])))


async def pgqrs_worker(db_dsn: str, idx: int, concurrency: int) -> None:
    store = await pgqrs.connect(db_dsn, max_size=concurrency + 2)
    consumer = await (pgqrs.consumer(f"wake-{idx}", None, WF).handler(wake_wf)
                      .concurrency(concurrency).create(store))
    lib.wait_go()
    try:
        await consumer.poll_forever()
    finally:
        await store.close()


async def _pgqrs_emit_all(db_dsn: str, n: int, gap: tuple[float, float], rng: random.Random
                          ) -> list[tuple[int, float, float]]:
    out = []
    store = await pgqrs.connect(db_dsn)
    try:
        for i in range(n):
            await asyncio.sleep(rng.uniform(*gap))
            t0 = time.monotonic()
            if not await store.emit_event(key_of(i), {"n": i}):
                raise RuntimeError(f"event {key_of(i)} was emitted before")
            out.append((i, t0, time.monotonic()))
    finally:
        await store.close()
    return out


# ---- the raw-SQL bound -------------------------------------------------------------------------------------

RAW_SCHEMA = """
create table runs (
    id bigint generated always as identity primary key,
    input jsonb not null,
    key text not null,
    status text not null default 'QUEUED',
    payload jsonb,
    output jsonb,
    worker integer
);
create index runs_queued_idx on runs (id) where status = 'QUEUED';
create index runs_waiting_idx on runs (key) where status = 'WAITING';
create table events (key text primary key, payload jsonb not null);
create table steps (
    run_id bigint not null references runs (id),
    step_id text not null,
    value jsonb not null,
    primary key (run_id, step_id)
);
"""
RAW_CLAIM = """update runs set status = 'RUNNING', worker = %s
    where id = (select id from runs where status = 'QUEUED' order by id limit 1 for update skip locked)
    returning id, input, payload"""
RAW_WAIT = """update runs set status = 'WAITING', worker = null
    where id = %s and not exists (select from events e where e.key = runs.key) returning id"""
RAW_EVENT = "select payload from events where key = %s"
RAW_EMIT = """with e as (insert into events (key, payload) values (%s, %s::jsonb) on conflict do nothing
        returning key, payload),
    w as (update runs r set status = 'QUEUED', payload = e.payload from e
        where r.key = e.key and r.status = 'WAITING' returning r.id)
    select (select count(*) from e), pg_notify('raw_runs', '')"""
RAW_STEP = "insert into steps (run_id, step_id, value) values (%s, %s, %s::jsonb)"
RAW_FINISH = "update runs set status = 'SUCCESS', output = %s::jsonb where id = %s and worker = %s"

RAW_WAITING_SQL = "select count(*) from runs where status = 'WAITING'"
RAW_STARTS_SQL = "select (input->>'n')::int, (output->>'t')::float8 from runs where status = 'SUCCESS'"
RAW_VERIFY_SQL = """
select count(distinct (r.input->>'n')::int) from runs r
 where r.status = 'SUCCESS' and (r.input->>'n')::int between 0 and %(n)s - 1
   and (r.output->>'n')::int = (r.input->>'n')::int
   and r.payload = jsonb_build_object('n', (r.input->>'n')::int)
   and (select count(*) from steps s where s.run_id = r.id and s.value = r.output) = 1
"""


def raw_install(db_dsn: str, n: int) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(RAW_SCHEMA)
        conn.execute("insert into runs (input, key) select jsonb_build_object('n', g), 'bench-wake:' || g"
                     " from generate_series(0, %s - 1) as g", (n,))


def raw_worker(db_dsn: str, idx: int) -> None:
    conn = psycopg.connect(db_dsn, autocommit=True, prepare_threshold=0)
    conn.execute("listen raw_runs")
    lib.wait_go()
    while True:
        row = conn.execute(RAW_CLAIM, (idx,)).fetchone()
        if row is None:
            for _ in conn.notifies(timeout=1.0, stop_after=1):
                pass
            continue
        run_id, inp, payload = row
        n = inp["n"]
        if payload is None:
            if conn.execute(RAW_WAIT, (run_id,)).fetchone() is not None:
                continue  # WAITING: the emit makes it QUEUED again
            payload = lib.scalar(conn, RAW_EVENT, (key_of(n),))
        if payload != {"n": n}:
            raise RuntimeError(f"raw run {n}: wrong payload {payload!r}")
        value = json.dumps({"n": n, "t": time.monotonic()})  # the next step starts
        conn.execute(RAW_STEP, (run_id, "after_wait", value))
        conn.execute(RAW_FINISH, (value, run_id, idx))


def _raw_emit_all(db_dsn: str, n: int, gap: tuple[float, float], rng: random.Random
                  ) -> list[tuple[int, float, float]]:
    out = []
    with psycopg.connect(db_dsn, autocommit=True, prepare_threshold=0) as conn:
        for i in range(n):
            time.sleep(rng.uniform(*gap))
            t0 = time.monotonic()
            if lib.scalar(conn, RAW_EMIT, (key_of(i), json.dumps({"n": i}))) != 1:
                raise RuntimeError(f"raw event {key_of(i)} was emitted before")
            out.append((i, t0, time.monotonic()))
    return out


# ---- the workload ------------------------------------------------------------------------------------------

SQL = {"pgqrs": (PGQRS_WAITING_SQL, PGQRS_STARTS_SQL, PGQRS_VERIFY_SQL),
       "raw": (RAW_WAITING_SQL, RAW_STARTS_SQL, RAW_VERIFY_SQL)}


def worker_argv(engine: str, db_dsn: str, concurrency: int) -> list[str]:
    return [sys.executable, os.path.join(lib.HERE, "worker.py"), engine, db_dsn, "0", "--concurrency",
            str(concurrency), "--workload", "wakeup"]


def measure(engine: str, db: str, samples: int, warmup: int, concurrency: int, gap: tuple[float, float],
            seed: int, tag: str) -> dict[str, Any]:
    """warmup + samples runs wait on their own keys under one idle worker; the keys are emitted one by one.
    Emit -> next step start per run (the first `warmup` left out), p50 / p99; and the emit call's own time."""
    n = warmup + samples
    db_dsn = lib.recreate_db(db)
    (pgqrs_install if engine == "pgqrs" else raw_install)(db_dsn, n)
    waiting_sql, starts_sql, verify_sql = SQL[engine]
    out: dict[str, Any] = {}
    with lib.Procs([worker_argv(engine, db_dsn, concurrency)], tag) as workers:
        workers.wait_ready()
        workers.go()
        with lib.connect(db_dsn) as conn:
            deadline = time.monotonic() + 120
            while lib.scalar(conn, lib.TAG + waiting_sql) < n:
                workers.check()
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{tag}: the {n} runs did not all reach WAITING within 120 s")
                time.sleep(0.05)
            time.sleep(1.0)  # the worker is back in its idle LISTEN wait
            load = lib.LoadMeter()
            rng = random.Random(seed)
            if engine == "pgqrs":
                emits = asyncio.run(_pgqrs_emit_all(db_dsn, n, gap, rng))
            else:
                emits = _raw_emit_all(db_dsn, n, gap, rng)
            out.update(load.stop())
            deadline = time.monotonic() + 60
            while len(starts := dict(conn.execute(starts_sql).fetchall())) < n:
                workers.check()
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{tag}: only {len(starts)} of {n} runs finished after the emits")
                time.sleep(0.05)
            verified = lib.scalar(conn, verify_sql, {"n": n})
    if verified != n:
        raise RuntimeError(f"{tag}: only {verified} of {n} runs verified")
    wake_ms = [1000 * (starts[i] - t0) for i, t0, _t1 in emits[warmup:]]
    emit_ms = [1000 * (t1 - t0) for _i, t0, t1 in emits[warmup:]]
    out.update({"wakeup_p50_ms": lib.percentile(wake_ms, 50), "wakeup_p99_ms": lib.percentile(wake_ms, 99),
                "emit_call_p50_ms": lib.percentile(emit_ms, 50), "samples": len(wake_ms),
                "verified": verified, "concurrency": concurrency})
    return out
