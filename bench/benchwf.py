"""The benchmark workflow on pgqrs: three no-op steps returning {"i": n}, {"i": n+1}, {"i": n+2}; the output
is {"sum": 3n+3}. Steps are `@pgqrs.step` coroutines (a plain `def` body would run in a thread: see
docs/benchmarks.md). Also the SQL the runner uses to check and time pgqrs runs.
"""

from __future__ import annotations

import importlib
import json
import os
import time
from pathlib import Path
from typing import Any

import psycopg

import pgqrs

WF = "bench_wf"

# Set by a worker that records when each run's first step starts (trigger -> first step latency).
first_step_log: Any = None


@pgqrs.step
async def step_a(n: int) -> dict[str, int]:
    if first_step_log is not None:
        first_step_log.write(f"{n} {time.time():.6f}\n")
        first_step_log.flush()
    return {"i": n}


@pgqrs.step
async def step_b(n: int) -> dict[str, int]:
    return {"i": n + 1}


@pgqrs.step
async def step_c(n: int) -> dict[str, int]:
    return {"i": n + 2}


@pgqrs.workflow(name=WF)
async def bench_wf(ctx: pgqrs.WorkflowContext, inp: dict[str, int]) -> dict[str, int]:
    n = inp["n"]
    a = await step_a(n)
    b = await step_b(n)
    c = await step_c(n)
    return {"sum": a["i"] + b["i"] + c["i"]}


def install(db_dsn: str) -> None:
    """The engine from the package, or (experiments: PGQRS_BENCH_SQL=DIR) from the install.sql of another
    directory."""
    other = os.environ.get("PGQRS_BENCH_SQL")
    if other:
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            conn.execute("set client_min_messages = warning")
            for path in importlib.import_module("pgqrs.install").schema_files(Path(other)):
                conn.execute(path.read_bytes())
    else:
        pgqrs.install(db_dsn)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("select pgqrs.create_workflow(p_name => %s)", (WF,))


def fill(db_dsn: str, first: int, count: int, batch: int = 1000) -> None:
    """Queue runs n = first .. first+count-1 through pgqrs.trigger_batch (setup, not timed)."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        for lo in range(first, first + count, batch):
            hi = min(first + count, lo + batch)
            inputs = json.dumps([{"n": i} for i in range(lo, hi)])
            conn.execute("select count(*) from pgqrs.trigger_batch(p_workflow => %s, p_inputs => %s::jsonb)",
                         (WF, inputs))


DONE_SQL = "select count(*) from pgqrs.runs where status = 'SUCCESS'"
TOTAL_SQL = "select count(*) from pgqrs.runs"
QUEUED_SQL = "select count(*) from pgqrs.messages"
# (created, started = first dequeue, finished) in epoch seconds, DB clock
TIMES_SQL = """select extract(epoch from created_at)::float8, extract(epoch from started_at)::float8,
    extract(epoch from finished_at)::float8 from pgqrs.runs where status = 'SUCCESS'"""
# created -> first step recorded, DB clock
FIRST_STEP_SQL = """select extract(epoch from s.completed_at - r.created_at)::float8 from pgqrs.runs r
    join pgqrs.steps s on s.run_id = r.run_id and s.step_id = 'step_a'"""

# A run counts when it is SUCCESS with {"sum": 3n+3}, its message archived as SUCCESS, and exactly three step
# rows, each SUCCESS with the right value; n must lie in 0..N-1 and appear once.
VERIFY_SQL = """
select count(distinct (r.input->>'n')::int) from pgqrs.runs r
 where r.status = 'SUCCESS'
   and (r.input->>'n')::int between 0 and %(n)s - 1
   and r.output = jsonb_build_object('sum', 3 * (r.input->>'n')::int + 3)
   and exists (select from pgqrs.messages_archive a where a.message_id = r.run_id and a.outcome = 'SUCCESS')
   and not exists (select from pgqrs.messages m where m.message_id = r.run_id)
   and (select count(*) from pgqrs.steps s where s.run_id = r.run_id) = 3
   and (select count(*) from pgqrs.steps s
         where s.run_id = r.run_id and s.status = 'SUCCESS'
           and s.value = jsonb_build_object('i', (r.input->>'n')::int
               + case s.step_id when 'step_a' then 0 when 'step_b' then 1 when 'step_c' then 2 end)) = 3
"""


def verify(conn: psycopg.Connection[Any], n: int) -> int:
    row = conn.execute(VERIFY_SQL, {"n": n}).fetchone()
    assert row is not None
    return int(row[0])
