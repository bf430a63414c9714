"""The `pgqrs` command, run as a real process (`python -m pgqrs ...`) against a fresh database per test.

Happy paths parse the `--json` output; bad input must give a non-zero exit code and exactly one line on
stderr, never a traceback.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from conftest import REPO, drop_db, server_dsn


def pgqrs(*args: str, dsn: str | None = None, env: dict[str, str] | None = None,
          cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    if dsn is not None:
        full_env["PGQRS_DSN"] = dsn
    return subprocess.run([sys.executable, "-m", "pgqrs", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=60, stdin=subprocess.DEVNULL)


def ok_json(*args: str, dsn: str) -> Any:
    res = pgqrs(*args, "--json", dsn=dsn)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def assert_one_line_error(res: subprocess.CompletedProcess[str], code: int, *fragments: str) -> None:
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("pgqrs: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def sql_exec(dsn: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def lease(dsn: str, workflow: str) -> tuple[int, str]:
    """Dequeue the oldest run of `workflow` as a worker would; returns (run_id, lease_token)."""
    sql_exec(dsn, "select pgqrs.register_worker(p_name => 'test-worker', p_queue => %s)", (workflow,))
    rows = sql_exec(dsn, """select run_id, lease_token::text from pgqrs.dequeue(p_queue => %s,
        p_worker => (select worker_id from pgqrs.workers where name = 'test-worker'))""", (workflow,))
    assert rows, "nothing to dequeue"
    return int(rows[0][0]), str(rows[0][1])


# ---- happy paths -----------------------------------------------------------------------------------------


def test_install_and_upgrade_are_idempotent(pg_dsn: str) -> None:
    name = f"cli_install_{os.getpid()}"
    drop_db(name)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    dsn = server_dsn(name)
    try:
        first = pgqrs("install", dsn=dsn)
        assert first.returncode == 0, first.stderr
        assert "installed pgqrs schema version" in first.stdout
        again = ok_json("install", dsn=dsn)
        assert again["previous_version"] == again["version"] >= 1
        upgraded = ok_json("upgrade", dsn=dsn)
        assert upgraded == again
    finally:
        drop_db(name)


def test_trigger_prints_the_run_id_and_runs_lists_it(db: str) -> None:
    sql_exec(db, "select pgqrs.create_workflow('zip_files')")
    res = pgqrs("trigger", "zip_files", '{"bucket": "b"}', dsn=db)
    assert res.returncode == 0, res.stderr
    run_id = int(res.stdout.strip())

    keyed = ok_json("trigger", "zip_files", '{"bucket": "c"}', "--idempotency-key", "k1", dsn=db)
    assert keyed["created"] is True and keyed["run_id"] == keyed["message_id"]
    again = ok_json("trigger", "zip_files", '{"bucket": "c"}', "--idempotency-key", "k1", dsn=db)
    assert again == {**keyed, "created": False}
    delayed = ok_json("trigger", "zip_files", "{}", "--delay", "60", dsn=db)

    runs = ok_json("runs", dsn=db)
    assert [r["run_id"] for r in runs] == [delayed["run_id"], keyed["run_id"], run_id]  # newest first
    assert {r["status"] for r in runs} == {"QUEUED"}
    assert ok_json("runs", "--limit", "1", dsn=db)[0]["run_id"] == delayed["run_id"]
    assert ok_json("runs", "--status", "success", dsn=db) == []
    assert ok_json("runs", "--workflow", "other", dsn=db) == []

    shown = ok_json("run", str(delayed["run_id"]), dsn=db)
    assert shown["run"]["status"] == "QUEUED" and shown["run"]["workflow"] == "zip_files"
    assert shown["run"]["visible_at"] > shown["run"]["created_at"]
    assert shown["steps"] == []

    human = pgqrs("runs", dsn=db)
    assert human.returncode == 0 and "zip_files" in human.stdout and "QUEUED" in human.stdout


def test_run_shows_steps_attempts_and_errors(db: str) -> None:
    sql_exec(db, "select pgqrs.create_workflow('wf')")
    run_id = int(pgqrs("trigger", "wf", "{}", dsn=db).stdout)
    rid, token = lease(db, "wf")
    assert rid == run_id
    sql_exec(db, "select pgqrs.complete_step(%s, 'first', %s::uuid, '[1, 2]')", (run_id, token))
    sql_exec(db, """select pgqrs.fail_step(%s, 'second', %s::uuid,
                    '{"type": "ValueError", "message": "boom"}', p_transient => false)""", (run_id, token))
    shown = ok_json("run", str(run_id), dsn=db)
    assert shown["run"]["status"] == "ERROR"
    assert shown["run"]["error"]["message"] == "boom"
    steps = {s["step_id"]: s for s in shown["steps"]}
    assert steps["first"]["status"] == "SUCCESS" and steps["first"]["value"] == [1, 2]
    assert steps["second"]["status"] == "ERROR" and steps["second"]["attempt"] == 1

    human = pgqrs("run", str(run_id), dsn=db)
    assert human.returncode == 0, human.stderr
    assert "ERROR" in human.stdout and "ValueError: boom" in human.stdout and "first" in human.stdout

    # retry: ERROR -> QUEUED, the successful step kept
    assert ok_json("retry", str(run_id), dsn=db) == {"run_id": run_id, "status": "QUEUED"}
    after = ok_json("run", str(run_id), dsn=db)
    assert after["run"]["status"] == "QUEUED"
    assert [s["step_id"] for s in after["steps"]] == ["first"]


def test_fork_starts_a_new_run_from_a_step(db: str) -> None:
    sql_exec(db, "select pgqrs.create_workflow('wf')")
    run_id = int(pgqrs("trigger", "wf", '{"n": 5}', dsn=db).stdout)
    _, token = lease(db, "wf")
    for step in ("first", "second"):
        sql_exec(db, "select pgqrs.complete_step(%s, %s, %s::uuid, '1')", (run_id, step, token))
    sql_exec(db, "select pgqrs.fail_run(%s, %s::uuid, '{\"message\": \"bug\"}')", (run_id, token))

    forked = ok_json("fork", str(run_id), "--from-step", "second", dsn=db)
    assert forked == {"run_id": forked["run_id"], "forked_from": run_id, "from_step": "second"}
    shown = ok_json("run", str(forked["run_id"]), dsn=db)
    assert shown["run"]["status"] == "QUEUED" and shown["run"]["input"] == {"n": 5}
    assert [(s["step_id"], s["status"]) for s in shown["steps"]] == [("first", "SUCCESS")]
    assert ok_json("run", str(run_id), dsn=db)["run"]["status"] == "ERROR"  # the original as it was

    human = pgqrs("fork", str(run_id), "--from-step", "first", dsn=db)
    assert human.returncode == 0, human.stderr
    assert int(human.stdout) > forked["run_id"]
    assert_one_line_error(pgqrs("fork", str(run_id), "--from-step", "nope", dsn=db), 2,
                          f"run {run_id} has no step nope")
    assert_one_line_error(pgqrs("fork", str(run_id), dsn=db), 2, "--from-step")


def test_update_step_and_resume_a_paused_run(db: str) -> None:
    sql_exec(db, "select pgqrs.create_workflow('approval')")
    run_id = int(pgqrs("trigger", "approval", '{"approver": "a@example.com"}', dsn=db).stdout)
    _, token = lease(db, "approval")
    sql_exec(db, "select pgqrs.pause_step(%s, 'wait_for_approval', %s::uuid, interval '1 hour')",
             (run_id, token))
    assert ok_json("run", str(run_id), dsn=db)["run"]["status"] == "PAUSED"

    step = ok_json("update-step", str(run_id), "wait_for_approval", "success", '{"approved": true}', dsn=db)
    assert step["status"] == "SUCCESS" and step["value"] == {"approved": True}
    assert ok_json("resume", str(run_id), dsn=db) == {"run_id": run_id, "status": "QUEUED"}
    shown = ok_json("run", str(run_id), dsn=db)
    assert shown["run"]["status"] == "QUEUED"
    assert shown["steps"][0]["value"] == {"approved": True}

    # resuming again is refused by the engine: exit 1 with its message and hint
    assert_one_line_error(pgqrs("resume", str(run_id), dsn=db), 1, "not PAUSED", "hint:")


def test_workers_and_stats(db: str) -> None:
    sql_exec(db, "select pgqrs.create_workflow('wf')")
    for _ in range(3):
        pgqrs("trigger", "wf", "{}", dsn=db)
    lease(db, "wf")
    workers = ok_json("workers", dsn=db)
    assert [w["name"] for w in workers] == ["test-worker"]
    assert workers[0]["queue"] == "wf" and workers[0]["leases"] == 1
    assert isinstance(workers[0]["heartbeat_age"], float)

    stats = ok_json("stats", dsn=db)
    (queue,) = stats["queues"]
    assert queue["queue"] == "wf" and queue["depth"] == 3 and queue["leased"] == 1 and queue["ready"] == 2
    assert queue["runs"]["QUEUED"] == 2 and queue["runs"]["RUNNING"] == 1
    assert stats["runs_by_status"]["QUEUED"] == 2

    human = pgqrs("stats", dsn=db)
    assert human.returncode == 0 and "wf" in human.stdout and "runs by status" in human.stdout


def test_connection_from_pg_variables_and_dsn_flag_anywhere(db: str) -> None:
    dbname = psycopg.conninfo.conninfo_to_dict(db)["dbname"]
    env = {k: v for k, v in os.environ.items() if k != "PGQRS_DSN"}
    env["PGDATABASE"] = str(dbname)
    res = subprocess.run([sys.executable, "-m", "pgqrs", "stats", "--json"], capture_output=True, text=True,
                         env=env, cwd=REPO, timeout=60)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["queues"] == []
    # --dsn before or after the command; it wins over $PGQRS_DSN
    for args in (["--dsn", db, "workers", "--json"], ["workers", "--dsn", db, "--json"]):
        res = pgqrs(*args, dsn="host=/nonexistent")
        assert res.returncode == 0, res.stderr


# ---- the worker ---------------------------------------------------------------------------------------


def wait_status(dsn: str, run_id: int, status: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while sql_exec(dsn, "select status from pgqrs.runs where run_id = %s", (run_id,))[0][0] != status:
        assert time.monotonic() < deadline, f"run {run_id} did not reach {status}"
        time.sleep(0.05)


def start_worker(dsn: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pgqrs", "worker", *args], cwd=REPO, text=True,
                            env={**os.environ, "PGQRS_DSN": dsn, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)


def stop_worker(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def test_worker_runs_a_workflow_function_and_exits_0_on_sigterm(db: str) -> None:
    # the @workflow function names its queue; the worker creates the definition when it is missing
    proc = start_worker(db, "examples.pipeline:data_pipeline", "--concurrency", "2", "--visibility", "5",
                        "--name", "cli-test-worker")
    try:
        deadline = time.monotonic() + 30
        while not sql_exec(db, "select 1 from pgqrs.workers where name = 'cli-test-worker'"):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        run_id = int(pgqrs("trigger", "data_pipeline", '{"url": "https://example.com/x"}', dsn=db).stdout)
        wait_status(db, run_id, "SUCCESS")
    finally:
        code, out, err = stop_worker(proc)
    assert code == 0, err
    assert "Traceback" not in err
    assert ok_json("run", str(run_id), dsn=db)["run"]["output"] == {"processed_count": 5}
    assert ok_json("workers", dsn=db)[0]["status"] == "STOPPED"


def test_worker_runs_a_plain_async_function_with_queue(db: str, tmp_path: Path) -> None:
    (tmp_path / "cli_handlers.py").write_text(textwrap.dedent("""
        async def double(ctx, params):
            value = await ctx.step("double", lambda: params["n"] * 2)
            return {"doubled": value}
    """))
    proc = start_worker(db, "cli_handlers:double", "--queue", "doubler", env={"PYTHONPATH": str(tmp_path)})
    try:
        deadline = time.monotonic() + 30
        while not sql_exec(db, "select 1 from pgqrs.workers"):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        run_id = int(pgqrs("trigger", "doubler", '{"n": 21}', dsn=db).stdout)
        wait_status(db, run_id, "SUCCESS")
    finally:
        code, _out, err = stop_worker(proc)
    assert code == 0, err
    assert ok_json("run", str(run_id), dsn=db)["run"]["output"] == {"doubled": 42}


# ---- bad input: one line on stderr, the right exit code, no traceback ------------------------------------


def test_unknown_command() -> None:
    assert_one_line_error(pgqrs("frobnicate"), 2, "invalid choice")


def test_no_command() -> None:
    assert_one_line_error(pgqrs(), 2, "required")


def test_bad_json(db: str) -> None:
    sql_exec(db, "select pgqrs.create_workflow('wf')")
    assert_one_line_error(pgqrs("trigger", "wf", "{not json", dsn=db), 2, "not valid JSON")
    assert_one_line_error(pgqrs("update-step", "1", "s", "SUCCESS", "{oops", dsn=db), 2, "not valid JSON")
    assert ok_json("runs", dsn=db) == []  # nothing was written


def test_trigger_takes_any_json_value(db: str) -> None:
    sql_exec(db, "select pgqrs.create_workflow('wf')")
    for text, value in (("[1, 2]", [1, 2]), ("42", 42), ('"x"', "x")):
        run_id = ok_json("trigger", "wf", text, dsn=db)["run_id"]
        assert ok_json("run", str(run_id), dsn=db)["run"]["input"] == value


def test_bad_arguments(db: str) -> None:
    assert_one_line_error(pgqrs("run", "abc", dsn=db), 2, "integer")
    assert_one_line_error(pgqrs("run", str(2**64), dsn=db), 2, "64-bit")
    assert_one_line_error(pgqrs("resume", "0", dsn=db), 2, "positive")
    assert_one_line_error(pgqrs("runs", "--status", "DONE", dsn=db), 2, "QUEUED")
    assert_one_line_error(pgqrs("update-step", "1", "s", "FINISHED", dsn=db), 2, "SUCCESS")
    # only the durable waits record WAITING: the command refuses it itself, and its help does not offer it
    assert_one_line_error(pgqrs("update-step", "1", "s", "WAITING", dsn=db), 2, "is not one of", "PAUSED")
    assert_one_line_error(pgqrs("trigger", "wf", "{}", "--delay", "-5", dsn=db), 2, "0 or more")
    assert_one_line_error(pgqrs("worker", "no_such_module_xyz:handler", dsn=db), 2, "cannot import")
    assert_one_line_error(pgqrs("worker", "examples.pipeline", dsn=db), 2, "MODULE:FUNCTION")
    assert_one_line_error(pgqrs("worker", "examples.pipeline:nope", dsn=db), 2, "no attribute")
    assert_one_line_error(pgqrs("worker", "examples.pipeline:data_pipeline_handler", dsn=db), 2, "--queue")
    too_long = pgqrs("worker", "examples.pipeline:data_pipeline", "--visibility", "90000", dsn=db)
    assert_one_line_error(too_long, 2, "at most 86400")
    # the engine's 22023 (an invalid workflow name) is bad input too
    assert_one_line_error(pgqrs("trigger", "bad name!", "{}", dsn=db), 2, "invalid workflow name")


def test_unreachable_database() -> None:
    for args in (["runs"], ["run", "1"], ["install"], ["worker", "examples.pipeline:data_pipeline"]):
        assert_one_line_error(pgqrs("--dsn", "host=/nonexistent", *args), 3, "cannot connect")


def test_malformed_dsn() -> None:
    assert_one_line_error(pgqrs("--dsn", "this is not a dsn", "runs"), 2, "connection string")


def test_unknown_run_id(db: str) -> None:
    for args in (["run", "999999"], ["resume", "999999"], ["retry", "999999"],
                 ["fork", "999999", "--from-step", "s"], ["update-step", "999999", "s", "SUCCESS"]):
        assert_one_line_error(pgqrs(*args, dsn=db), 1, "unknown run: 999999")


def test_unknown_workflow(db: str) -> None:
    assert_one_line_error(pgqrs("trigger", "nope", "{}", dsn=db), 1, "unknown workflow: nope", "hint:")


def test_schema_not_installed(pg_dsn: str) -> None:
    name = f"cli_empty_{os.getpid()}"
    drop_db(name)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        assert_one_line_error(pgqrs("runs", dsn=server_dsn(name)), 1, "pgqrs install")
    finally:
        drop_db(name)


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["worker", "--help"]])
def test_help(args: list[str]) -> None:
    res = pgqrs(*args)
    assert res.returncode == 0 and "usage: pgqrs" in res.stdout and res.stderr == ""


# ---- least privilege: an application login with pgqrs_client uses the CLI --------------------------------


def test_cli_as_a_pgqrs_client_login(db: str, pg_dsn: str) -> None:
    """The read commands use only views and read functions, which pgqrs_client may use; writes are function
    calls. retry_run and fork_run are admin operations: refused as a clear one-line error."""
    login = f"cli_client_{os.getpid()}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(login)))
        conn.execute(sql.SQL("create role {} login").format(sql.Identifier(login)))
        conn.execute(sql.SQL("grant pgqrs_client to {}").format(sql.Identifier(login)))
    try:
        sql_exec(db, "select pgqrs.create_workflow('wf')")
        client = psycopg.conninfo.make_conninfo(db, user=login)
        run_id = ok_json("trigger", "wf", '{"n": 1}', dsn=client)["run_id"]
        assert [r["run_id"] for r in ok_json("runs", dsn=client)] == [run_id]
        assert ok_json("run", str(run_id), dsn=client)["run"]["status"] == "QUEUED"
        assert ok_json("stats", dsn=client)["queues"][0]["runs"]["QUEUED"] == 1
        assert ok_json("workers", dsn=client) == []
        for args in (["run", str(run_id)], ["stats"]):  # the human tables too
            res = pgqrs(*args, dsn=client)
            assert res.returncode == 0, (args, res.stderr)
        for args in (["retry", str(run_id)], ["fork", str(run_id), "--from-step", "s"]):
            assert_one_line_error(pgqrs(*args, dsn=client), 1, "permission denied")
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(login)))
            conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(login)))
