"""`pgqrs worker --metrics-port N`: the worker's own counters and its queue's state in Prometheus' text format
on http://127.0.0.1:N/metrics (--metrics-host) (docs/dashboard.md#metrics). Needs prometheus-client (the extra
pgqrs-engine[dashboard]); imported only when the option is given.

Counted in the process (since it started): runs started and finished, step durations, retries, dead letters,
loop errors. Read from the database at each scrape: the queue's depth, ready, delayed and oldest age
(``pgqrs.queue_stats``), and the leases this worker holds (``pgqrs.worker_status``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from psycopg.rows import dict_row

from ._observer import Observer
from ._sql import dashboard as dash_sql

# step bodies take from milliseconds (a lookup) to minutes (a report)
STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)


class PrometheusObserver(Observer):
    """Counts what one worker of `workflow` reports (a Store's observer) into `registry`."""

    def __init__(self, workflow: str, registry: CollectorRegistry) -> None:
        self.workflow = workflow
        labels = ["workflow"]
        self.started = Counter("pgqrs_runs_started", "Runs this worker started (deliveries)", labels,
                               registry=registry).labels(workflow)
        self.finished = Counter("pgqrs_runs_finished", "Runs this worker finished, by status",
                                ["workflow", "status"], registry=registry)
        self.steps = Histogram("pgqrs_step_duration_seconds", "Step bodies' run time, by outcome",
                               ["workflow", "outcome"], buckets=STEP_BUCKETS, registry=registry)
        self.retries = Counter("pgqrs_step_retries", "Failed step attempts that will be retried", labels,
                               registry=registry).labels(workflow)
        self.dead = Counter("pgqrs_dead_letters", "Runs this worker ended ERROR (dead letters)", labels,
                            registry=registry).labels(workflow)
        self.errors = Counter("pgqrs_worker_loop_errors", "Errors the worker loop survived", labels,
                              registry=registry).labels(workflow)

    def run_started(self) -> None:
        """Counts a delivery."""
        self.started.inc()

    def run_finished(self, status: str) -> None:
        """Counts a finished run by status; an ERROR is a dead letter too."""
        self.finished.labels(self.workflow, status).inc()
        if status == "ERROR":
            self.dead.inc()

    def step_finished(self, run_status: str | None, seconds: float | None) -> None:
        """Observes the step's duration by outcome (success, retry, error); a failure that ends the run
        counts as its finish."""
        outcome = "success" if run_status is None else "retry" if run_status == "QUEUED" else "error"
        if seconds is not None:
            self.steps.labels(self.workflow, outcome).observe(seconds)
        if outcome == "retry":
            self.retries.inc()
        elif run_status == "ERROR":
            self.run_finished("ERROR")

    def loop_error(self) -> None:
        """Counts an error the loop survived."""
        self.errors.inc()


QUEUE_GAUGES = (  # column of pgqrs.queue_stats, metric, help
    ("ready", "pgqrs_queue_ready", "Runs ready to be dequeued now"),
    ("leased", "pgqrs_queue_leased", "Runs a worker holds a live lease on"),
    ("delayed", "pgqrs_queue_delayed", "Runs not visible yet: retries, delayed starts, pauses, waits"),
    ("waiting", "pgqrs_queue_waiting", "Runs in a durable wait (sleep, event, message, children)"),
    ("depth", "pgqrs_queue_depth", "Live messages in the queue (ready, leased and delayed)"),
)


def queue_families(queues: list[dict[str, Any]]) -> Iterator[GaugeMetricFamily]:
    """The gauges of rows of ``pgqrs.queue_stats``, labelled by queue."""
    for column, name, text in QUEUE_GAUGES:
        family = GaugeMetricFamily(name, text, labels=["queue"])
        for q in queues:
            family.add_metric([q["queue"]], float(q[column] or 0))
        yield family
    oldest = GaugeMetricFamily("pgqrs_queue_oldest_age_seconds", "Age of the queue's oldest live message",
                               labels=["queue"])
    for q in queues:
        oldest.add_metric([q["queue"]], q["oldest_age"].total_seconds() if q["oldest_age"] else 0.0)
    yield oldest


def worker_families(workers: list[dict[str, Any]]) -> Iterator[GaugeMetricFamily]:
    """The leases and heartbeat age of the active workers among rows of ``pgqrs.worker_status``."""
    leases = GaugeMetricFamily("pgqrs_worker_leases_held", "Live leases an active worker holds",
                               labels=["worker", "queue"])
    heartbeat = GaugeMetricFamily("pgqrs_worker_heartbeat_age_seconds",
                                  "Seconds since an active worker's last heartbeat",
                                  labels=["worker", "queue"])
    for w in workers:
        if w["status"] == "ACTIVE":
            leases.add_metric([w["name"], w["queue"]], float(w["leases"]))
            heartbeat.add_metric([w["name"], w["queue"]], w["heartbeat_age"].total_seconds())
    yield leases
    yield heartbeat


class QueueState(Collector):
    """At each scrape, the worker's queue (``pgqrs.queue_stats``) and the worker itself
    (``pgqrs.worker_status``), read on a connection of its own (the scrape runs in the server's thread)."""

    def __init__(self, dsn: str, queue: str, worker_id: int) -> None:
        self.dsn, self.queue, self.worker_id = dsn, queue, worker_id

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The gauges of ``pgqrs.queue_stats`` and ``pgqrs.worker_status``; none when the database cannot be
        read now (the counters are still served)."""
        try:
            with psycopg.connect(self.dsn, autocommit=True, connect_timeout=5, row_factory=dict_row) as conn:
                queues = conn.execute(dash_sql.QUEUE.encode(), (self.queue,)).fetchall()
                workers = conn.execute(dash_sql.WORKER.encode(), (self.worker_id,)).fetchall()
        except psycopg.Error:
            return
        yield from queue_families(queues)
        yield from worker_families(workers)


def serve(host: str, port: int, dsn: str, queue: str, worker_id: int, store: Any) -> None:
    """Start the metrics server on `host`:`port` (a daemon thread) and make it hear `store`'s workers. Raises
    OSError when the port is taken."""
    registry = CollectorRegistry()
    store.observer = PrometheusObserver(queue, registry)
    registry.register(QueueState(dsn, queue, worker_id))
    start_http_server(port, addr=host, registry=registry)
