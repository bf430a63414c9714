"""`make demo`: a worker is SIGKILLed in the middle of a step, and nothing that had finished runs again; then
durable waits and child workflows (examples/demo_waits.py).

The story, told as it happens, on a database of its own (pgqrs_demo, dropped and created on every run; the
cluster comes from the PG* variables, which `make demo` sets):

  * five runs of the Durable Workflows Guide's data pipeline (fetch_data -> transform_data -> save_results,
    examples/pipeline.py) and one approval run;
  * worker A, a real process (`python -m pgqrs worker examples.pipeline:data_pipeline`), is SIGKILLed while
    transform_data is running, found "in flight" from the log the step bodies write, not by a sleep;
  * its lease (3 s) runs out, pgqrs.stuck_runs shows the run, worker B takes it over and continues after the
    last completed step; one run's API fails once with TransientError(retry_after=2) and is retried 2 s later;
  * the approval run pauses at wait_for_approval and a "webhook" resumes it with store.update_step +
    store.resume_run;
  * at the end, runs and steps from the ops views, and how often each step body really ran, from the table
    the bodies append to (run_id, step_id, pid, at) in their own committed transactions. Only the step that
    was in flight at the kill may have run twice; the demo checks that and exits 1 otherwise.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from examples.demo_support import (  # noqa: E402
    T0,
    TIMEOUT,
    VISIBILITY,
    DemoFailed,
    Worker,
    detail,
    say,
    wait_exit,
    wait_until,
)
from examples.demo_waits import waits_chapter  # noqa: E402
from examples.pipeline import STEP_LOG_DDL  # noqa: E402

import pgqrs  # noqa: E402
from pgqrs import StepStatus  # noqa: E402
from pgqrs.cli.output import table  # noqa: E402

DEMO_DB = os.environ.get("PGQRS_DEMO_DB", "pgqrs_demo")  # the tests use another name
RUNS = 5
FLAKY_RUN_INDEX = 3  # the third pipeline run's API fails once
TRANSFORM_SECONDS = 1.5  # long enough to be killed in the middle of it, even on a busy machine
RETRY_AFTER = 2  # seconds, the TransientError's retry_after


def fresh_database(admin_dsn: str) -> str:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute("set client_min_messages = warning")
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(DEMO_DB)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(DEMO_DB)))
    return make_conninfo(admin_dsn, dbname=DEMO_DB)


async def story(dsn: str, logdir: Path, workers: list[Worker]) -> None:
    # 1. the database
    version = pgqrs.install(dsn)
    with psycopg.connect(dsn, autocommit=True) as setup:
        setup.execute(STEP_LOG_DDL)
    say(1, f"Fresh database {DEMO_DB}: pgqrs schema version {version} installed (pgqrs.install), "
           "and the table example_step_log that every step body appends to before it works.")

    store = await pgqrs.connect(dsn)
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True, row_factory=dict_row)
    try:
        # 2. triggers
        await store.create_workflow("data_pipeline")
        await store.create_workflow("approval")
        runs: list[int] = []
        for i in range(1, RUNS + 1):
            url = f"https://api.example.com/{'flaky' if i == FLAKY_RUN_INDEX else 'data'}/{i}"
            handle = await pgqrs.workflow("data_pipeline") \
                .trigger({"url": url, "transform_seconds": TRANSFORM_SECONDS, "retry_after": RETRY_AFTER}) \
                .execute(store)
            runs.append(int(handle))
        flaky = runs[FLAKY_RUN_INDEX - 1]
        approval_trigger = pgqrs.workflow("approval").trigger({"approver": "ops@example.com"})
        approval = int(await approval_trigger.execute(store))
        say(2, f"Triggered {RUNS} data_pipeline runs ({runs[0]}-{runs[-1]}; run {flaky}'s API will answer "
               f"503 once) and approval run {approval}.")

        # 3. worker A and the approval worker
        a = Worker("a", "examples.pipeline:data_pipeline", dsn, logdir, "--concurrency", "1")
        approver = Worker("approver", "examples.pipeline:approval_workflow", dsn, logdir)
        workers += [a, approver]
        say(3, f"Started worker A (pid {a.pid}, concurrency 1, lease {VISIBILITY} s) and an approval worker "
               f"(pid {approver.pid}): `python -m pgqrs worker examples.pipeline:...`.")

        await wait_until(conn, f"run {approval} to pause",
                         "select * from pgqrs.paused_runs where run_id = %s", (approval,), [approver])
        say(4, f"Run {approval} sent its approval request and paused at wait_for_approval "
               "(raise Step.pause(3600)); pgqrs.paused_runs lists it, and no worker holds it.")

        # 5. the kill, when the step log shows worker A inside transform_data of its second run
        rows = await wait_until(
            conn, "worker A to start transform_data of its second run",
            """select run_id, at from example_step_log where pid = %s and step_id = 'transform_data'
               order by at offset 1 limit 1""", (a.pid,), [a])
        victim = int(rows[0]["run_id"])
        a.proc.send_signal(signal.SIGKILL)
        await wait_exit(a.proc)
        # the server notices the dead connections at once; wait for them so nothing of A's is still committing
        await wait_until(
            conn, "worker A's connections to close",
            "select 1 where not exists (select from pg_stat_activity where application_name = %s)",
            (a.app_name,))
        in_flight = await (await conn.execute(
            """select distinct l.run_id, l.step_id from example_step_log as l
               where l.pid = %s and not exists (select from pgqrs.steps as s where s.run_id = l.run_id
                                                and s.step_id = l.step_id and s.status = 'SUCCESS')""",
            (a.pid,))).fetchall()
        in_flight_set = {(int(r["run_id"]), r["step_id"]) for r in in_flight}
        done_by_a = await (await conn.execute(
            "select run_id from pgqrs.runs where status = 'SUCCESS' and run_id = any(%s) order by run_id",
            (runs,))).fetchall()
        journal = await (await conn.execute(
            "select step_id, status from pgqrs.run_steps(%s)", (victim,))).fetchall()
        finished = ", ".join(str(r["run_id"]) for r in done_by_a) or "(none)"
        say(5, f"Worker A finished run {finished}; the step log shows it inside transform_data of run "
               f"{victim}: SIGKILL (pid {a.pid}).")
        detail(f"in flight at the kill: {', '.join(f'run {r} {s}' for r, s in sorted(in_flight_set))}; "
               f"run {victim}'s journal: "
               + (", ".join(f"{j['step_id']} {j['status']}" for j in journal) or "empty"))
        if in_flight_set != {(victim, "transform_data")}:
            raise DemoFailed(f"expected exactly run {victim} transform_data in flight, got {in_flight_set}")

        # 6. the lease runs out: the run shows as stuck, no one has to reclaim it
        stuck = await wait_until(conn, f"run {victim} to show in pgqrs.stuck_runs",
                                 "select * from pgqrs.stuck_runs where run_id = %s", (victim,))
        say(6, f"Its lease ran out: pgqrs.stuck_runs lists run {victim} (worker {stuck[0]['worker']}, "
               f"lease expired at {stuck[0]['lease_expired_at']:%H:%M:%S}). No reclaim job: the next dequeue "
               "takes it.")

        # 7. worker B
        b = Worker("b", "examples.pipeline:data_pipeline", dsn, logdir, "--concurrency", "2")
        workers.append(b)
        say(7, f"Started worker B (pid {b.pid}, concurrency 2).")
        retrying: dict[str, Any] | None = None
        deadline = time.monotonic() + TIMEOUT
        while True:
            if retrying is None:
                row = await (await conn.execute(
                    "select step_id, attempt, retry_at - now() as due_in, last_error "
                    "from pgqrs.retrying_runs where run_id = %s", (flaky,))).fetchone()
                if row is not None:
                    retrying = row
            left = await (await conn.execute(
                "select count(*) as n from pgqrs.runs where run_id = any(%s) and status <> 'SUCCESS'",
                (runs,))).fetchone()
            if left is not None and left["n"] == 0:
                break
            if b.proc.poll() is not None:
                raise DemoFailed(f"worker B exited ({b.proc.returncode}) before the runs finished")
            if time.monotonic() > deadline:
                raise DemoFailed("timed out waiting for the pipeline runs to finish")
            await asyncio.sleep(0.05)
        victim_steps = await (await conn.execute(
            """select step_id, count(*) filter (where pid = %s) as by_a,
                      count(*) filter (where pid = %s) as by_b
               from example_step_log where run_id = %s group by step_id order by min(at)""",
            (a.pid, b.pid, victim))).fetchall()
        say(8, f"Worker B took run {victim} over and continued after its last completed step; it also ran "
               f"the other pipeline runs. All {RUNS} are SUCCESS.")
        for s in victim_steps:
            what = ("replayed from the journal, not run again" if s["by_b"] == 0 else
                    "run again: it had not finished" if s["by_a"] else "run once, by B")
            detail(f"run {victim} {s['step_id']}: {what} (executions: A {s['by_a']}, B {s['by_b']})")

        # 9. the transient error
        fetches = await (await conn.execute(
            "select at from example_step_log where run_id = %s and step_id = 'fetch_data' order by at",
            (flaky,))).fetchall()
        if len(fetches) != 2:
            raise DemoFailed(f"run {flaky}'s fetch_data should have run twice (a failure, a retry), "
                             f"ran {len(fetches)} times")
        gap = (fetches[1]["at"] - fetches[0]["at"]).total_seconds()
        seen = (f"pgqrs.retrying_runs showed it: {retrying['step_id']} attempt {retrying['attempt']}, "
                f"due in {retrying['due_in'].total_seconds():.1f} s" if retrying else
                "(it left pgqrs.retrying_runs before the demo looked)")
        say(9, f"Run {flaky}: fetch_data raised TransientError(retry_after={RETRY_AFTER}); {seen}; "
               f"it ran again {gap:.1f} s later and succeeded.")
        if gap < RETRY_AFTER - 0.2:
            raise DemoFailed(f"the retry came {gap:.2f} s after the failure, before "
                             f"retry_after={RETRY_AFTER}")

        # 10. the webhook
        await store.update_step(approval, "wait_for_approval", StepStatus.SUCCESS,
                                {"approved": True, "by": "ops@example.com"})
        await store.resume_run(approval)
        result = await pgqrs.run().status(approval).store(store).result(timeout=TIMEOUT)
        say(10, f"A webhook approved run {approval}: store.update_step({approval}, 'wait_for_approval', "
                f"StepStatus.SUCCESS, {{...}}) and store.resume_run({approval}). The approval worker "
                f"finished it: {result}.")

        # 11. graceful stop
        codes = {w.label: await w.stop() for w in (b, approver)}
        say(11, "SIGTERM to worker B and the approval worker: "
                + ", ".join(f"{label} exited {code}" for label, code in codes.items()) + ".")
        if any(codes.values()):
            raise DemoFailed(f"a worker did not exit 0 on SIGTERM: {codes}")

        # the record
        overview = await (await conn.execute(
            "select run_id, workflow, status, attempt, current_step, worker, output "
            "from pgqrs.run_overview left join pgqrs.runs using (run_id, status, attempt) order by run_id"
        )).fetchall()
        print("\nRuns (pgqrs.run_overview; attempt = deliveries to a worker):")
        print(table(overview, [("run_id", "run"), ("workflow", "workflow"), ("status", "status"),
                               ("attempt", "attempt"), ("current_step", "last step"), ("output", "output")],
                    "(no runs)"))
        steps = await (await conn.execute(
            """select s.run_id, s.step_id, s.status, s.attempt,
                      coalesce(l.executions, 0) as executions,
                      coalesce(l.pids, '') as pids
               from pgqrs.workflow_steps as s
               left join (select run_id, step_id, count(*) as executions,
                                 string_agg(distinct pid::text, ', ') as pids
                          from example_step_log group by run_id, step_id) as l using (run_id, step_id)
               order by s.run_id, coalesce(s.started_at, s.completed_at)""")).fetchall()
        label = {a.pid: "A", b.pid: "B", approver.pid: "approver"}
        for s in steps:
            s["ran_on"] = ", ".join(label.get(int(p), p) for p in s["pids"].split(", ") if p)
        print("\nSteps (pgqrs.workflow_steps; executions = rows the body wrote to example_step_log):")
        print(table(steps, [("run_id", "run"), ("step_id", "step"), ("status", "status"),
                            ("attempt", "attempt"), ("executions", "executions"),
                            ("ran_on", "worker")], "(no steps)"))

        # the count
        total = sum(int(s["executions"]) for s in steps)
        repeats = {(int(s["run_id"]), s["step_id"]) for s in steps if s["executions"] > 1}
        planned = {(flaky, "fetch_data")}
        unplanned = repeats - planned
        unexpected = unplanned - in_flight_set
        never_ran = [(s["run_id"], s["step_id"]) for s in steps
                     if s["executions"] == 0 and s["step_id"] != "wait_for_approval"]
        if unexpected or never_ran or any(s["executions"] > 2 for s in steps):
            raise DemoFailed(f"step bodies ran more than once outside the crash: {sorted(unexpected)}; "
                             f"never ran: {never_ran}")
        print(f"\nStep bodies executed: {total} times for {len(steps)} recorded steps "
              f"(1 planned retry: run {flaky} fetch_data after its TransientError).")
        print(f"Ran more than once: {len(unplanned)} — "
              + (", ".join(f"run {r} {s}" for r, s in sorted(unplanned)) or "none")
              + " (in flight when worker A was killed). Every step that had finished ran exactly once.")

        print(flush=True)
        await waits_chapter(dsn, logdir, workers, store, conn, 12)
    finally:
        await conn.close()
        await store.close()


async def amain() -> int:
    admin_dsn = ""  # libpq's PG* variables (make demo sets PGHOST, PGPORT, PGUSER, PGDATABASE)
    try:
        dsn = fresh_database(admin_dsn)
    except psycopg.OperationalError as exc:
        print(f"demo: cannot reach PostgreSQL ({' '.join(str(exc).split())}); run it with `make demo`",
              file=sys.stderr)
        return 3
    print("pgqrs demo: a worker is killed in the middle of a step; nothing that had finished runs again.\n",
          flush=True)
    logdir = Path(tempfile.mkdtemp(prefix="pgqrs-demo-"))
    workers: list[Worker] = []
    try:
        await story(dsn, logdir, workers)
    except DemoFailed as exc:
        print(f"\ndemo FAILED: {exc}", file=sys.stderr)
        for w in workers:
            print(f"--- worker {w.label} (pid {w.pid}), last lines of {w.logfile}:\n{w.tail()}",
                  file=sys.stderr)
        return 1
    finally:
        for w in workers:  # only the processes this demo started
            if w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait()
    print(f"\nDone in {time.monotonic() - T0:.1f} s. Worker logs: {logdir}.\n"
          f"Look around: eval \"$(scripts/pg.sh env)\"; PGDATABASE={DEMO_DB} .venv/bin/pgqrs runs",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(amain()))
