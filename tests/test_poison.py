"""Values one side of the JSON boundary refuses; worker settings out of bounds (issue 13, classes 1, 2, 7).

- Poison JSON: jsonb holds what Python's json cannot read (2,000 levels of nesting, an integer of 5,001
  digits). A run with such an input, or such a recorded step value, must fail with a clear error while the
  worker process lives on and serves other runs; `result()` and the CLI must say so instead of crashing.
- Values PostgreSQL refuses: U+0000 and lone surrogates in an error, a step value or an output. The failure is
  recorded (errors escaped, values refused before they are sent) and the run ends instead of being delivered
  again and again.
- Worker settings: out of bounds is a ValueError (InvalidArgument) when set, in both flavours.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

import pgqrs
import pgqrs.sync
from conftest import REPO
from pgqrs._json import dumps
from worker_procs import start_ready, stop_all

WORKER = Path(__file__).with_name("poison_worker.py")
DEEP = "repeat('[', 2000) || repeat(']', 2000)"  # 4 kB of jsonb; Python's json: RecursionError
HUGE = "1e5000"  # 13 bytes of JSON text; jsonb stores the integer, Python's json refuses its 5,001 digits
FINAL = ("SUCCESS", "ERROR", "CANCELLED")


class Worker:
    """One tests/poison_worker.py process; killed at the end of the test if still alive."""

    def __init__(self, dsn: str, log: Path, *args: str) -> None:
        self.log = log
        self.proc, _ = start_ready([sys.executable, str(WORKER), dsn, "poisoned", *args], log)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def close(self) -> None:
        stop_all([self.proc])


@pytest.fixture
def start_worker(db: str, tmp_path: Path) -> Iterator[Any]:
    started: list[Worker] = []

    def start(*args: str) -> Worker:
        worker = Worker(db, tmp_path / f"worker-{len(started)}.log", *args)
        started.append(worker)
        return worker

    with psycopg.connect(db, autocommit=True) as c:
        c.execute("select pgqrs.create_workflow('poison')")
    yield start
    for worker in started:
        worker.close()


def trigger_sql(conn: psycopg.Connection[Any], input_sql: str) -> int:
    row = conn.execute(f"select run_id from pgqrs.trigger('poison', ({input_sql})::jsonb)").fetchone()
    assert row is not None
    return int(row[0])


def trigger(conn: psycopg.Connection[Any], case: str) -> int:
    row = conn.execute("select run_id from pgqrs.trigger('poison', %s)", (Jsonb({"case": case}),)).fetchone()
    assert row is not None
    return int(row[0])


def wait_final(conn: psycopg.Connection[Any], runs: list[int], worker: Worker,
               timeout: float) -> dict[int, str]:
    """Status of each run once all are final; fails (with the worker's log) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        rows = conn.execute("select run_id, status from pgqrs.runs where run_id = any(%s)", (runs,))
        statuses = {int(r[0]): str(r[1]) for r in rows}
        if all(statuses[r] in FINAL for r in runs):
            return statuses
        assert time.monotonic() < deadline, f"runs not final after {timeout} s: {statuses}\n{worker.tail()}"
        time.sleep(0.05)


def stored_error(conn: psycopg.Connection[Any], run_id: int) -> dict[str, Any]:
    row = conn.execute("select error, attempt from pgqrs.runs where run_id = %s", (run_id,)).fetchone()
    assert row is not None and isinstance(row[0], dict), row
    return row[0]


def cli(dsn: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pgqrs", *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PGQRS_DSN": dsn}, stdin=subprocess.DEVNULL, timeout=timeout)


# ---- poison JSON (class 2) ---------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", ["async", "sync"])
def test_poison_json_fails_its_run_and_the_worker_serves_the_others(
    flavour: str, db: str, conn: psycopg.Connection[Any], start_worker: Any
) -> None:
    ordinary = [trigger(conn, "ok")]
    deep_input = trigger_sql(conn, f"'{{\"x\": ' || {DEEP} || '}}'")
    huge_input = trigger_sql(conn, f"'{{\"x\": {HUGE}}}'")
    ordinary.append(trigger(conn, "ok"))
    deep_step = trigger(conn, "ok")  # step 'v' recorded from outside (a webhook) before any worker runs it
    conn.execute(f"select pgqrs.update_step(%s, 'v', 'SUCCESS', ({DEEP})::jsonb)", (deep_step,))
    huge_step = trigger(conn, "ok")
    conn.execute(f"select pgqrs.update_step(%s, 'v', 'SUCCESS', '{{\"n\": {HUGE}}}')", (huge_step,))
    recorded_while_running = trigger(conn, "recorded_deep")  # update_step while the body runs: it wins
    ordinary.append(trigger(conn, "ok"))

    worker = start_worker(*(["--sync"] if flavour == "sync" else []))
    poisoned = [deep_input, huge_input, deep_step, huge_step, recorded_while_running]
    statuses = wait_final(conn, ordinary + poisoned, worker, timeout=20)

    assert worker.proc.poll() is None, f"the worker died\n{worker.tail()}"
    assert [statuses[r] for r in ordinary] == ["SUCCESS"] * 3
    assert [statuses[r] for r in poisoned] == ["ERROR"] * 5
    expected = {
        deep_input: (f"the input of run {deep_input} could not be read", "nested deeper"),
        huge_input: (f"the input of run {huge_input} could not be read", "5001 digits"),
        deep_step: ("the stored value of step 'v' could not be read", "nested deeper"),
        huge_step: ("the stored value of step 'v' could not be read", "5001 digits"),
        recorded_while_running: ("the stored value of step 'v' could not be read", "nested deeper"),
    }
    for run_id, fragments in expected.items():
        error = stored_error(conn, run_id)
        assert error["type"] == "UnreadableValue", error
        for fragment in fragments:
            assert fragment in error["message"], error
    # another run after them all: still served
    last = trigger(conn, "ok")
    assert wait_final(conn, [last], worker, timeout=10)[last] == "SUCCESS"


def test_unreadable_output_raises_a_clear_error_and_the_cli_shows_placeholders(
    db: str, conn: psycopg.Connection[Any]
) -> None:
    """A run completed (from SQL) with an output Python cannot read, and one failed with such an error;
    plus a run whose input is unreadable. result() raises UnreadableValue; `pgqrs run` / `pgqrs runs` (tables
    and --json) show a placeholder and exit 0."""
    conn.execute("select pgqrs.create_workflow('poison')")
    conn.execute("select pgqrs.register_worker(p_name => 'by-hand', p_queue => 'poison')")
    done, failed = trigger(conn, "ok"), trigger(conn, "ok")
    bad_input = trigger_sql(conn, f"'{{\"x\": {HUGE}}}'")
    leases = dict(conn.execute(
        "select run_id, lease_token from pgqrs.dequeue(p_queue => 'poison', p_worker => (select worker_id"
        " from pgqrs.workers where name = 'by-hand'), p_batch_size => 2)"
    ).fetchall())
    assert set(leases) == {done, failed}
    conn.execute(f"select pgqrs.complete_run(%s, %s, '{{\"n\": {HUGE}}}')", (done, leases[done]))
    conn.execute(f"select pgqrs.fail_run(%s, %s, ({DEEP})::jsonb)", (failed, leases[failed]))

    async def results() -> None:
        async with await pgqrs.connect(db) as store:
            with pytest.raises(pgqrs.UnreadableValue, match=f"the output of run {done} could not be read"):
                await pgqrs.run().status(done).store(store).result(timeout=5)
            info = await pgqrs.run().status(bad_input).store(store).get()
            assert isinstance(info.input, pgqrs.UnreadableJson) and "5001 digits" in info.input.reason
            with pytest.raises(pgqrs.WorkflowFailed) as failure:
                await pgqrs.run().status(failed).store(store).result(timeout=5)
            assert isinstance(failure.value.error, pgqrs.UnreadableJson)

    asyncio.run(results())
    with pgqrs.sync.connect(db) as store, pytest.raises(pgqrs.UnreadableValue):
        pgqrs.sync.run().status(done).store(store).get().output()

    for run_id, column in ((done, "output"), (failed, "error"), (bad_input, "input")):
        shown = cli(db, "run", str(run_id))
        assert shown.returncode == 0 and "Traceback" not in shown.stderr, shown.stderr
        assert f"{column}:" in shown.stdout and "<unreadable JSON" in shown.stdout, shown.stdout
        as_json = cli(db, "run", str(run_id), "--json")
        assert as_json.returncode == 0, as_json.stderr
        assert json.loads(as_json.stdout)["run"][column].startswith("<unreadable JSON")
    listed = cli(db, "runs")
    assert listed.returncode == 0 and "<unreadable JSON" in listed.stdout, listed.stderr
    listed_json = cli(db, "runs", "--json")
    assert listed_json.returncode == 0, listed_json.stderr
    errors = {r["run_id"]: r["error"] for r in json.loads(listed_json.stdout)}
    assert errors[failed].startswith("<unreadable JSON")


def test_the_cli_refuses_json_python_cannot_read_in_one_line(db: str) -> None:
    for text in ("[" * 2000 + "]" * 2000, '{"x": 1' + "0" * 5000 + "}"):
        res = cli(db, "trigger", "poison", text)
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        assert res.stderr.startswith("pgqrs: the run input cannot be read"), res.stderr


# ---- values PostgreSQL refuses (class 1) -------------------------------------------------------------------


@pytest.mark.parametrize("flavour", ["async", "sync"])
def test_values_postgres_refuses_end_the_run_with_a_readable_error(
    flavour: str, conn: psycopg.Connection[Any], start_worker: Any
) -> None:
    cases = ["error_nul", "error_surrogate", "handler_error_surrogate", "step_value_nul", "step_key_nul",
             "step_value_surrogate", "output_nul", "escaped_not_nul", "ok"]
    runs = {case: trigger(conn, case) for case in cases}
    worker = start_worker("--visibility", "2", *(["--sync"] if flavour == "sync" else []))
    # each ends at its first delivery, long before its lease (2 s) could expire and deliver it again
    statuses = wait_final(conn, list(runs.values()), worker, timeout=10)
    assert worker.proc.poll() is None, worker.tail()
    assert {case: statuses[run] for case, run in runs.items()} == {
        **dict.fromkeys(cases, "ERROR"), "escaped_not_nul": "SUCCESS", "ok": "SUCCESS"
    }
    attempts = dict(conn.execute("select run_id, attempt from pgqrs.runs where run_id = any(%s)",
                                 (list(runs.values()),)).fetchall())
    assert set(attempts.values()) == {1}, attempts

    def error(case: str) -> tuple[str, str]:
        stored = stored_error(conn, runs[case])
        assert "\\x00" in stored["traceback"] or "\\udcff" in stored["traceback"] or case.startswith(
            ("step_", "output_")), stored
        return stored["type"], stored["message"]

    assert error("error_nul") == ("RuntimeError", "bad\\x00byte")
    kind, message = error("error_surrogate")
    assert kind == "FileNotFoundError" and "report-\\udcff.txt" in message
    kind, message = error("handler_error_surrogate")
    assert kind == "ValueError" and message == "cannot parse /nonexistent/report-\\udcff.txt"
    for case in ("step_value_nul", "step_key_nul"):
        assert error(case) == ("NotSerializable", "the result of step 'v' holds U+0000 (a NUL character),"
                                                  " which PostgreSQL cannot store in jsonb")
    kind, message = error("step_value_surrogate")
    assert kind == "NotSerializable" and "the result of step 'v' holds a lone surrogate, U+DCFF" in message
    assert error("output_nul") == (
        "NotSerializable",
        f"the output of run {runs['output_nul']} holds U+0000 (a NUL character), which PostgreSQL cannot"
        " store in jsonb",
    )
    output = conn.execute("select output from pgqrs.runs where run_id = %s", (runs["escaped_not_nul"],))
    assert output.fetchone()[0]["v"] == "\\u0000 \\\\u0000"  # type: ignore[index]
    # the failed step bodies' errors are recorded on the step too
    step_error = conn.execute("select error from pgqrs.steps where run_id = %s and step_id = 'v'",
                              (runs["error_nul"],)).fetchone()
    assert step_error is not None and step_error[0]["message"] == "bad\\x00byte"


def test_dumps_finds_what_jsonb_refuses_and_nothing_else(conn: psycopg.Connection[Any]) -> None:
    """Every value dumps accepts, jsonb accepts too; every value dumps refuses, jsonb refuses too."""
    values = ["\x00", "\\\x00", "a\\u0000", "\\\\u0000", "\ud800", "\udcff", "x\udbff", "\ude00\ud83d",
              "\ud83d\ude00", "\U0001f600", "\\ud800", "\\\ud800", "한국어 \ud7ff", "plain", {"\x00": 1},
              {"k": ["\\", "\x00"]}]
    for value in values:
        try:
            text = dumps({"v": value}, "the value")
        except pgqrs.NotSerializable as exc:
            assert "U+" in str(exc)
            with pytest.raises(psycopg.DataError):
                conn.execute("select %s::jsonb", (json.dumps({"v": value}),))
        else:
            stored = conn.execute("select %s::jsonb", (text,)).fetchone()[0]  # type: ignore[index]
            if value != "\ud83d\ude00":  # two code points that jsonb reads as the pair they spell (U+1F600)
                assert stored == {"v": value}


# ---- worker settings (class 7) -----------------------------------------------------------------------------


BAD_SETTINGS = [
    *(("concurrency", v) for v in (0, 1001, -1, True, 2.0)),
    *(("visibility", v) for v in (0, -1, 0.05, 86401, math.nan, math.inf, True, "30", timedelta(0))),
    *(("poll_interval", v) for v in (0, -0.5, 0.001, math.nan, math.inf, 86401, False)),
]
GOOD_SETTINGS = [
    ("concurrency", 1, 1), ("concurrency", 1000, 1000),
    ("visibility", 0.1, 0.1), ("visibility", 86400, 86400.0), ("visibility", timedelta(seconds=2), 2.0),
    ("poll_interval", 0.01, 0.01), ("poll_interval", 86400, 86400.0),
]
BOUNDS = {"concurrency": "from 1 to 1000", "visibility": "from 0.1 to 86400 seconds",
          "poll_interval": "from 0.01 to 86400 seconds"}


@pytest.mark.parametrize("module", [pgqrs, pgqrs.sync], ids=["async", "sync"])
@pytest.mark.parametrize(("setting", "value"), BAD_SETTINGS, ids=[f"{s}={v!r}" for s, v in BAD_SETTINGS])
def test_worker_settings_out_of_bounds_are_refused_naming_the_bounds(module: Any, setting: str,
                                                                     value: Any) -> None:
    builder = module.consumer("w", None, "q")
    with pytest.raises(pgqrs.InvalidArgument) as refused:
        getattr(builder, setting)(value)
    assert isinstance(refused.value, ValueError)
    assert f"{setting} must be" in str(refused.value) and BOUNDS[setting] in str(refused.value)


@pytest.mark.parametrize("module", [pgqrs, pgqrs.sync], ids=["async", "sync"])
@pytest.mark.parametrize(("setting", "value", "stored"), GOOD_SETTINGS,
                         ids=[f"{s}={v!r}" for s, v, _ in GOOD_SETTINGS])
def test_worker_settings_at_their_bounds_are_taken(module: Any, setting: str, value: Any,
                                                   stored: Any) -> None:
    builder = getattr(module.consumer("w", None, "q"), setting)(value)
    assert getattr(builder, f"_{setting}") == stored


@pytest.mark.parametrize("timeout", [-1, math.nan, math.inf, 86401, True])
def test_shutdown_timeout_out_of_bounds_is_refused_before_the_worker_starts(db: str, timeout: Any) -> None:
    async def handler(ctx: pgqrs.WorkflowContext, params: Any) -> None:
        return None

    refused = "shutdown_timeout must be from 0 to 86400 seconds"

    async def async_flavour() -> None:
        async with await pgqrs.connect(db) as store:
            await store.create_workflow("q")
            worker = await pgqrs.consumer("w-async", None, "q").handler(handler).create(store)
            worker.stop()  # without the check, poll_forever returns at once instead of serving
            with pytest.raises(pgqrs.InvalidArgument, match=refused):
                await worker.poll_forever(shutdown_timeout=timeout)

    asyncio.run(async_flavour())
    with pgqrs.sync.connect(db) as store:
        worker = pgqrs.sync.consumer("w-sync", None, "q").handler(lambda ctx, params: None).create(store)
        worker.stop()
        with pytest.raises(pgqrs.InvalidArgument, match=refused):
            worker.poll_forever(shutdown_timeout=timeout)


def test_the_cli_worker_refuses_settings_out_of_bounds_in_one_line(db: str) -> None:
    for option, value, fragment in (("--concurrency", "1001", "at most 1000"),
                                    ("--visibility", "0.05", "at least 0.1")):
        res = cli(db, "worker", "examples.pipeline:data_pipeline", option, value, timeout=20)
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        assert res.stderr.startswith(f"pgqrs: {option} must be") and fragment in res.stderr, res.stderr
