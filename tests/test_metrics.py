"""Prometheus metrics after a known workload: a real `pgqrs worker --metrics-port` runs
tests/dashboard_worker.py (4 runs that succeed, one of them after a transient failure, and 2 that fail for
good); its /metrics counts exactly that, and the dashboard's /metrics shows the database's side (queues,
workers, dead letters)."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import psycopg
from prometheus_client.parser import text_string_to_metric_families

from dashboard_helpers import dashboard, free_port, run_status, start, stop, trigger, wait_for
from pgqrs.cli import main


def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample: (name, sorted labels) -> value."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_a_worker_counts_its_runs_steps_retries_and_dead_letters(db: str, tmp_path: Path) -> None:
    port = free_port()
    worker = start("worker", "dashboard_worker:invoices", "--name", "metrics-worker", "--metrics-port",
                   str(port), dsn=db)
    try:
        with psycopg.connect(db, autocommit=True) as conn:
            wait_for("the worker", lambda: conn.execute(
                "select 1 from pgqrs.workers where name = 'metrics-worker'").fetchone() is not None)
            runs = [trigger(conn, "invoices", {"n": i}) for i in range(3)]
            runs.append(trigger(conn, "invoices", {"flaky": str(tmp_path / "flaky")}))
            failed = [trigger(conn, "invoices", {"needs": str(tmp_path / f"missing-{i}")}) for i in range(2)]
        for run_id in runs:
            wait_for(f"run {run_id}", lambda r=run_id: run_status(db, r) == "SUCCESS")  # type: ignore[misc]
        for run_id in failed:
            wait_for(f"run {run_id}", lambda r=run_id: run_status(db, r) == "ERROR")  # type: ignore[misc]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            samples = scrape(response.read().decode())
    finally:
        stop(worker)

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted({"workflow": "invoices", **labels}.items()))), 0.0)

    assert value("pgqrs_runs_started_total") == 7  # 6 runs, the flaky one delivered twice
    assert value("pgqrs_runs_finished_total", status="SUCCESS") == 4
    assert value("pgqrs_runs_finished_total", status="ERROR") == 2
    assert value("pgqrs_dead_letters_total") == 2
    assert value("pgqrs_step_retries_total") == 1
    # load + charge of the 4 runs that succeed (the flaky run's load is replayed, not run again), and the
    # load of the 2 that fail
    assert value("pgqrs_step_duration_seconds_count", outcome="success") == 10
    assert value("pgqrs_step_duration_seconds_count", outcome="retry") == 1
    assert value("pgqrs_step_duration_seconds_count", outcome="error") == 2
    assert value("pgqrs_worker_loop_errors_total") == 0
    assert samples[("pgqrs_queue_depth", (("queue", "invoices"),))] == 0
    assert samples[("pgqrs_worker_leases_held", (("queue", "invoices"), ("worker", "metrics-worker")))] == 0


def test_the_dashboard_serves_the_database_gauges(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("select pgqrs.create_workflow(p_name => 'invoices')")
        for i in range(3):
            trigger(conn, "invoices", {"n": i})
    with dashboard(db, read_only=True) as client:
        response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[Any, float] = scrape(response.text)
    assert samples[("pgqrs_queue_ready", (("queue", "invoices"),))] == 3
    assert samples[("pgqrs_queue_depth", (("queue", "invoices"),))] == 3
    assert samples[("pgqrs_queue_oldest_age_seconds", (("queue", "invoices"),))] >= 0
    assert samples[("pgqrs_dead_letter_runs", ())] == 0


def test_the_worker_refuses_a_bad_metrics_port(capsys: Any) -> None:
    assert main(["worker", "dashboard_worker:invoices", "--metrics-port", "70000", "--dsn", "dbname=x"]) == 2
    assert "--metrics-port must be from 1 to 65535" in capsys.readouterr().err
