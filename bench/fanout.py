"""Fan-out/fan-in for `make bench` (--only fanout): a parent run starts N children (--fan-children, 1,000 by
default), each a run of ONE step, waits for all of them and sums their outputs; k worker processes
(--fan-workers, 4 by default), one run in flight each, do all of it. Measured: trigger of the parent -> the
parent SUCCESS (DB clock: the parent's created_at -> finished_at), and child runs/s = N / that time.

Both engines run one workflow in both roles on one queue: a run whose input is {"children": N} is the parent,
one whose input is {"i": k} a child. The worker processes idle in their LISTEN wait when the parent is
triggered.

pgqrs: `bench_fan` (bench/worker.py --workload fanout, the stock consumer): the parent calls
`ctx.start_child("bench_fan", {"i": k})` N times, then `ctx.gather(*handles)` and returns {"sum": ...}; a
child runs step `child_value` returning {"v": k} and returns it.
raw-SQL bound: the same durable work in plain SQL (psycopg, autocommit, prepared statements, a commit each):
  trigger  INSERT the parent (+ NOTIFY)                                                        1 commit
  parent   claim it (the e2e bound's UPDATE ... SKIP LOCKED); per child one INSERT of the child's run row,
           which is its queue row and the parent's record of the start (unique (parent, k): a parent that
           ran again would start no child twice) (+ NOTIFY)                                    1 + N commits
           wait: UPDATE the parent to WAITING with its number of children, unless all finished  1 commit
  child    claim; INSERT its step row; UPDATE it to SUCCESS with its output, counting the parent down in
           the same statement (the last one sets the parent QUEUED, + NOTIFY)                  3 commits each
  parent   claimed again; UPDATE it to SUCCESS with the sum of its children's outputs          2 commits
The count-down is an update of the parent's row by each finishing child, and the parent's wait an update of
that row too, so the two are ordered by its row lock (a child finishing while the parent begins to wait is
counted in either). No leases, fencing, journal, replay or retries: the durable writes alone.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import benchwf
import lib
import psycopg

import pgqrs

WF = "bench_fan"


def expected_sum(n: int) -> int:
    return n * (n - 1) // 2


# ---- pgqrs -------------------------------------------------------------------------------------------------

@pgqrs.step
async def child_value(k: int) -> dict[str, int]:
    return {"v": k}


@pgqrs.workflow(name=WF)
async def fan_wf(ctx: pgqrs.WorkflowContext, inp: dict[str, int]) -> Any:
    if "children" not in inp:
        return await child_value(inp["i"])
    handles = [await ctx.start_child(WF, {"i": k}) for k in range(inp["children"])]
    outputs = await ctx.gather(*handles)
    return {"sum": sum(o["v"] for o in outputs)}


def pgqrs_install(db_dsn: str) -> None:
    benchwf.install(db_dsn)  # the engine (PGQRS_BENCH_SQL=DIR: another SQL tree), as for the other phases
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("select pgqrs.create_workflow(p_name => %s)", (WF,))


async def pgqrs_worker(db_dsn: str, idx: int) -> None:
    store = await pgqrs.connect(db_dsn, max_size=3)
    consumer = await pgqrs.consumer(f"fan-{idx}", None, WF).handler(fan_wf).concurrency(1).create(store)
    lib.wait_go()
    try:
        await consumer.poll_forever()
    finally:
        await store.close()


PGQRS_TRIGGER = "select run_id from pgqrs.trigger(p_workflow => %s, p_input => %s::jsonb)"
PGQRS_STATUS = "select status from pgqrs.runs where run_id = %s"
# (the parent's created_at, finished_at, the first child's start, the last child's finish: epoch seconds;
# whether the parent waited: a parent whose children had all finished when it reached gather() goes on)
PGQRS_TIMES = """select extract(epoch from p.created_at)::float8, extract(epoch from p.finished_at)::float8,
    (select extract(epoch from min(c.started_at))::float8 from pgqrs.runs c
      where c.parent_run_id = p.run_id),
    (select extract(epoch from max(c.finished_at))::float8 from pgqrs.runs c
      where c.parent_run_id = p.run_id),
    p.attempt = 2
    from pgqrs.runs p where p.run_id = %(parent)s"""
# The children that count: SUCCESS with their own k, delivered once (attempt 1), their message archived as
# SUCCESS, one step row holding the output; k in 0..N-1, each once. The parent: SUCCESS with the right sum, N
# start_child steps naming its children and the gather step, delivered once, or twice if it had to wait; no
# other runs in the database.
PGQRS_VERIFY = """
select (select count(distinct (c.input->>'i')::int) from pgqrs.runs c
         where c.parent_run_id = %(parent)s and c.status = 'SUCCESS' and c.attempt = 1
           and (c.input->>'i')::int between 0 and %(n)s - 1
           and c.output = jsonb_build_object('v', (c.input->>'i')::int)
           and exists (select from pgqrs.messages_archive a
                       where a.message_id = c.run_id and a.outcome = 'SUCCESS')
           and (select count(*) from pgqrs.steps s where s.run_id = c.run_id) = 1
           and exists (select from pgqrs.steps s where s.run_id = c.run_id and s.step_id = 'child_value'
                       and s.status = 'SUCCESS' and s.value = c.output)),
       (select count(*) from pgqrs.runs),
       (select p.status = 'SUCCESS' and p.output = jsonb_build_object('sum', %(sum)s::bigint)
           and p.attempt in (1, 2)
           and (select count(*) from pgqrs.steps s where s.run_id = p.run_id and s.kind = 'child'
                and (s.value->>'run_id')::bigint in (select c.run_id from pgqrs.runs c
                                                     where c.parent_run_id = p.run_id)) = %(n)s
           and (select count(*) from pgqrs.steps s where s.run_id = p.run_id) = %(n)s + 1
        from pgqrs.runs p where p.run_id = %(parent)s)
"""


# ---- the raw-SQL bound -------------------------------------------------------------------------------------

RAW_SCHEMA = """
create table runs (
    id bigint generated always as identity primary key,
    parent_id bigint references runs (id),
    child_no integer,
    input jsonb not null,
    status text not null default 'QUEUED',
    output jsonb,
    worker integer,
    claims integer not null default 0,
    waits_for integer,
    finished_children integer not null default 0,
    created_at timestamptz not null default clock_timestamp(),
    started_at timestamptz,
    finished_at timestamptz,
    unique (parent_id, child_no)
);
create index runs_queued_idx on runs (id) where status = 'QUEUED';
create table steps (
    run_id bigint not null references runs (id),
    step_id text not null,
    value jsonb not null,
    primary key (run_id, step_id)
);
"""
RAW_TRIGGER = ("with r as (insert into runs (input) values (%s::jsonb) returning id)"
               " select id, pg_notify('raw_runs', '') from r")
RAW_CLAIM = """update runs set status = 'RUNNING', worker = %s, claims = claims + 1,
        started_at = coalesce(started_at, clock_timestamp())
    where id = (select id from runs where status = 'QUEUED' order by id limit 1 for update skip locked)
    returning id, input, waits_for"""
RAW_START = """with c as (insert into runs (parent_id, child_no, input) values (%s, %s, %s::jsonb)
        on conflict (parent_id, child_no) do nothing returning id)
    select id, pg_notify('raw_runs', '') from c"""
RAW_WAIT = """update runs set status = 'WAITING', worker = null, waits_for = %s
    where id = %s and worker = %s and finished_children < %s returning id"""
RAW_STEP = "insert into steps (run_id, step_id, value) values (%s, %s, %s::jsonb)"
RAW_CHILD_FINISH = """with f as (update runs set status = 'SUCCESS', output = %s::jsonb,
            finished_at = clock_timestamp()
        where id = %s and worker = %s returning parent_id),
    p as (update runs p set finished_children = p.finished_children + 1,
            status = case when p.status = 'WAITING' and p.finished_children + 1 = p.waits_for then 'QUEUED'
                          else p.status end
        from f where p.id = f.parent_id returning p.status)
    select pg_notify('raw_runs', '') from p where p.status = 'QUEUED'"""
RAW_PARENT_FINISH = """update runs p set status = 'SUCCESS', finished_at = clock_timestamp(),
        output = (select jsonb_build_object('sum', sum((c.output->>'v')::bigint)) from runs c
                  where c.parent_id = p.id)
    where id = %s and worker = %s returning id"""

RAW_STATUS = "select status from runs where id = %s"
RAW_TIMES = """select extract(epoch from p.created_at)::float8, extract(epoch from p.finished_at)::float8,
    (select extract(epoch from min(c.started_at))::float8 from runs c where c.parent_id = p.id),
    (select extract(epoch from max(c.finished_at))::float8 from runs c where c.parent_id = p.id),
    p.claims = 2
    from runs p where p.id = %(parent)s"""
RAW_VERIFY = """
select (select count(distinct (c.input->>'i')::int) from runs c
         where c.parent_id = %(parent)s and c.status = 'SUCCESS' and c.claims = 1
           and (c.input->>'i')::int between 0 and %(n)s - 1
           and c.output = jsonb_build_object('v', (c.input->>'i')::int)
           and (select count(*) from steps s where s.run_id = c.id and s.value = c.output) = 1),
       (select count(*) from runs),
       (select p.status = 'SUCCESS' and p.output = jsonb_build_object('sum', %(sum)s::bigint)
           and p.claims in (1, 2) and p.finished_children = %(n)s
        from runs p where p.id = %(parent)s)
"""


def raw_install(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(RAW_SCHEMA)


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
        run_id, inp, waits_for = row
        if "children" not in inp:  # a child: its one step, then finish and count the parent down
            value = json.dumps({"v": inp["i"]})
            conn.execute(RAW_STEP, (run_id, "child_value", value))
            conn.execute(RAW_CHILD_FINISH, (value, run_id, idx))
            continue
        n = inp["children"]
        if waits_for is None:  # the parent's first delivery: start the children, then wait for them
            for k in range(n):
                conn.execute(RAW_START, (run_id, k, json.dumps({"i": k}))).fetchall()
            if conn.execute(RAW_WAIT, (n, run_id, idx, n)).fetchone() is not None:
                continue  # WAITING: the last child's finish makes it QUEUED again
        if conn.execute(RAW_PARENT_FINISH, (run_id, idx)).fetchone() is None:
            raise RuntimeError(f"raw parent {run_id}: lost")


# ---- the workload ------------------------------------------------------------------------------------------

SQL = {"pgqrs": (PGQRS_STATUS, PGQRS_TIMES, PGQRS_VERIFY), "raw": (RAW_STATUS, RAW_TIMES, RAW_VERIFY)}


def worker_argv(engine: str, db_dsn: str, idx: int) -> list[str]:
    return [sys.executable, os.path.join(lib.HERE, "worker.py"), engine, db_dsn, str(idx),
            "--workload", "fanout"]


def trigger_parent(engine: str, conn: psycopg.Connection[Any], n: int) -> int:
    inp = json.dumps({"children": n})
    if engine == "pgqrs":
        return int(lib.scalar(conn, PGQRS_TRIGGER, (WF, inp)))
    return int(lib.scalar(conn, RAW_TRIGGER, (inp,)))


def measure(engine: str, db: str, n: int, procs: int, tag: str, timeout: float = 300.0) -> dict[str, Any]:
    """One parent starting n children, drained by `procs` worker processes: trigger -> parent SUCCESS (DB
    clock), child runs/s over that time; counts only if every run verifies."""
    db_dsn = lib.recreate_db(db)
    (pgqrs_install if engine == "pgqrs" else raw_install)(db_dsn)
    lib.checkpoint()
    status_sql, times_sql, verify_sql = SQL[engine]
    polls = 0
    with lib.Procs([worker_argv(engine, db_dsn, i) for i in range(procs)], tag) as workers:
        workers.wait_ready()
        workers.go()
        time.sleep(1.0)  # the workers are in their idle LISTEN wait
        counters = lib.Counters(db)
        with lib.connect(db_dsn) as conn:
            load = lib.LoadMeter()
            t0 = time.perf_counter()
            parent = trigger_parent(engine, conn, n)
            while (status := lib.scalar(conn, lib.TAG + status_sql, (parent,))) != "SUCCESS":
                if status in ("ERROR", "CANCELLED"):
                    raise RuntimeError(f"{tag}: the parent ended {status}")
                if time.perf_counter() - t0 > timeout:
                    raise RuntimeError(f"{tag}: the parent is still {status} after {timeout:.0f} s")
                workers.check()
                time.sleep(0.025)
                polls += 1
            wall = time.perf_counter() - t0
            out: dict[str, Any] = load.stop()
    costs = counters.per(n, runner_commits=polls + 1)  # less the runner's polls and the trigger
    with lib.connect(db_dsn) as conn:
        checks = conn.execute(verify_sql, {"parent": parent, "n": n, "sum": expected_sum(n)}).fetchone()
        times = conn.execute(times_sql, {"parent": parent}).fetchone()
    assert checks is not None and times is not None
    good_children, total_runs, parent_ok = checks
    created, finished, first_child, last_child, waited = times
    if good_children != n or total_runs != n + 1 or not parent_ok:
        raise RuntimeError(f"{tag}: {good_children} of {n} children verified, {total_runs} runs in the "
                           f"database, the parent {'verified' if parent_ok else 'wrong'}")
    seconds = finished - created
    out.update({"seconds": seconds, "child_runs_per_s": n / seconds, "wall_s": wall,
                "children_window_s": last_child - first_child, "parent_waited": waited, "children": n,
                "workers": procs,
                "verified": good_children,
                **{k.replace("_unit", "_child"): v for k, v in costs.items()}})
    return out
