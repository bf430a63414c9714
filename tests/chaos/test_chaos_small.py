"""The small chaos run inside `make test`: 60 runs of the 4-step workflow on a cluster of its own, while
two worker processes are SIGKILLed and PostgreSQL restarts with `-m immediate` once. The full suite is
`make chaos` (tests/chaos/run_chaos.py); the checks are the same (tests/chaos/chaos_checks.py)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from chaos_cluster import Cluster
from chaos_harness import ScenarioRunner
from chaos_results import Scenario, markdown


@pytest.mark.chaos
@pytest.mark.timeout(240)
def test_sigkills_and_a_restart_lose_nothing_and_repeat_only_steps_in_flight() -> None:
    cluster = Cluster()
    logdir = Path(f"{cluster.pgdir}-logs")
    cluster.start()
    try:
        scenario = Scenario(
            "small",
            "2 worker SIGKILLs and 1 PostgreSQL restart (make test)",
            runs=60,
            workers=2,
            concurrency=3,
            visibility=2.5,
            rate=6.0,
            faults=[(2.5, "sigkill"), (5.0, "pg_restart"), (7.5, "sigkill")],
        )
        result = asyncio.run(ScenarioRunner(cluster, scenario, logdir, seed=7).run())
    finally:
        cluster.stop()
        cluster.remove()
    report = markdown([result])
    failed = [c for c in result.checks if not c.ok]
    assert not failed, f"worker logs in {logdir}\n{report}"
    shutil.rmtree(logdir, ignore_errors=True)
    assert result.metrics["runs SUCCESS"] == 60
    assert result.metrics["faults"] == "2 sigkill, 1 pg_restart"
