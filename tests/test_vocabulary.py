"""One vocabulary (issue 14): pgqrs.vocabulary spells the run statuses, step statuses and acquire_step answers
exactly as the engine does, and the rest of the package and the CLI take them from there."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest

import pgqrs
import pgqrs.sync
from pgqrs.cli import ops as cli_ops
from pgqrs.cli import runs as cli_runs
from pgqrs.vocabulary import (
    FINISHED_RUN_STATUSES,
    RUN_STATUSES,
    STEP_STATUSES,
    UPDATABLE_STEP_STATUSES,
    RunStatus,
    StepAnswer,
    StepStatus,
)

PACKAGE = Path(pgqrs.__file__).parent
Conn = psycopg.Connection[tuple[object, ...]]


def check_values(conn: Conn, constraint: str) -> set[str]:
    """The strings a CHECK constraint `status in (...)` allows, from the catalog."""
    row = conn.execute(
        "select pg_get_constraintdef(oid) from pg_constraint where conname = %s"
        " and connamespace = 'pgqrs'::regnamespace", (constraint,)
    ).fetchone()
    assert row is not None, constraint
    return set(re.findall(r"'([A-Z_]+)'::text", row[0]))


def function_source(conn: Conn, name: str) -> str:
    row = conn.execute(
        "select prosrc from pg_proc where proname = %s and pronamespace = 'pgqrs'::regnamespace", (name,)
    ).fetchone()
    assert row is not None, name
    return str(row[0])


def test_run_statuses_are_the_runs_check_constraint(conn: Conn) -> None:
    assert set(RUN_STATUSES) == check_values(conn, "runs_status_check")
    assert set(FINISHED_RUN_STATUSES) <= set(RUN_STATUSES)


def test_step_statuses_are_the_steps_check_constraint_and_update_steps_list(conn: Conn) -> None:
    assert set(STEP_STATUSES) == check_values(conn, "steps_status_check")
    listed = re.search(r"p_status not in \(([^)]*)\)", function_source(conn, "update_step"))
    assert listed is not None
    # WAITING is recorded by the durable waits only (sleep_step, wait_event): update_step does not take it
    assert set(re.findall(r"'([A-Z_]+)'", listed[1])) == set(UPDATABLE_STEP_STATUSES)
    assert set(UPDATABLE_STEP_STATUSES) == set(STEP_STATUSES) - {"WAITING"}


def test_acquire_step_answers_are_the_ones_acquire_step_returns(conn: Conn) -> None:
    answered = set(re.findall(r"select '([A-Z_]+)'::text", function_source(conn, "acquire_step")))
    assert answered == {a.value for a in StepAnswer}


@pytest.mark.parametrize("module", [pgqrs, pgqrs.sync])
def test_both_flavours_export_the_same_classes(module: object) -> None:
    assert module.RunStatus is RunStatus and module.StepStatus is StepStatus  # type: ignore[attr-defined]
    assert module.StepAnswer is StepAnswer  # type: ignore[attr-defined]


def test_no_module_spells_a_status_list_of_its_own() -> None:
    """The tuples of statuses live in pgqrs.vocabulary only (the CLI's choices come from there too)."""
    assert cli_runs.RUN_STATUSES is RUN_STATUSES
    assert cli_runs.UPDATABLE_STEP_STATUSES is UPDATABLE_STEP_STATUSES
    assert cli_ops.RUN_STATUSES is RUN_STATUSES
    spelled = re.compile(r"\(\s*\"(QUEUED|RUNNING|SUCCESS)\",\s*\"[A-Z]+\"")
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "vocabulary.py":
            continue
        assert not spelled.search(path.read_text(encoding="utf-8")), f"{path.name} spells a status tuple"
