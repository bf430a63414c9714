"""OpenTelemetry traces (pgqrs/_tracing.py), in processes of their own (tests/tracing_program.py): with the
SDK's in-memory exporter, one trace follows a run from the span that triggered it through every step, a retry
and a child run; without OpenTelemetry nothing is imported and no trace context is stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

PROGRAM = Path(__file__).with_name("tracing_program.py")
pytestmark = pytest.mark.timeout(120)


def run_program(db: str, mode: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(PROGRAM), db, mode],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def test_one_trace_follows_a_run_through_its_steps_a_retry_and_a_child(db: str) -> None:
    report = run_program(db, "with-sdk")
    assert report["output"] == "fetched+leaf"
    spans = report["spans"]
    (request,) = [s for s in spans if s["name"] == "http.request"]
    assert {s["trace_id"] for s in spans} == {request["trace_id"]}, "a span left the request's trace"

    parent_runs = [
        s for s in spans if s["name"] == "pgqrs.run traced" and s["attributes"]["pgqrs.run_id"] == 1
    ]
    child_runs = [
        s for s in spans if s["name"] == "pgqrs.run traced" and s["attributes"]["pgqrs.run_id"] != 1
    ]
    # three deliveries of the parent: the retry, the wait for the child, the end
    assert [(s["attributes"]["pgqrs.attempt"], s["attributes"]["pgqrs.outcome"]) for s in parent_runs] == [
        (1, "QUEUED"),
        (2, "WAITING"),
        (3, "SUCCESS"),
    ]
    assert all(s["parent_id"] == request["span_id"] for s in parent_runs)
    (child,) = child_runs
    assert child["attributes"]["pgqrs.outcome"] == "SUCCESS"
    assert child["parent_id"] == parent_runs[1]["span_id"], "the child is not in the span that started it"

    steps = {
        (s["attributes"]["pgqrs.step_id"], s["attributes"]["pgqrs.attempt"]): s
        for s in spans
        if s["name"].startswith("pgqrs.step ")
    }
    assert {k: s["attributes"]["pgqrs.outcome"] for k, s in steps.items()} == {
        ("fetch", 1): "QUEUED",
        ("fetch", 2): "SUCCESS",
        ("leaf", 1): "SUCCESS",
        ("store", 1): "SUCCESS",
    }, "a replayed step made a span, or a step's outcome is wrong"
    assert steps[("fetch", 1)]["parent_id"] == parent_runs[0]["span_id"]
    assert steps[("fetch", 2)]["parent_id"] == parent_runs[1]["span_id"]
    assert steps[("store", 1)]["parent_id"] == parent_runs[2]["span_id"]
    assert steps[("leaf", 1)]["parent_id"] == child["span_id"]


def test_without_opentelemetry_nothing_is_imported_and_no_context_is_stored(db: str) -> None:
    report = run_program(db, "without")
    assert report["output"] == "fetched+leaf"
    assert report["loaded"] == []
    with psycopg.connect(db) as conn:
        assert conn.execute("select count(*) from pgqrs.runs where trace_context is not null").fetchone() == (
            0,
        )
