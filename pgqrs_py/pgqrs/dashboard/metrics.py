"""`/metrics` of the dashboard: the state of the whole database in Prometheus' text format, read at each
scrape from the ops views (docs/dashboard.md#metrics). A worker's own counters are on
`pgqrs worker --metrics-port`."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from .._sql import dashboard as dash_sql

QUEUE_GAUGES = (  # column of pgqrs.queue_stats, metric, help
    ("ready", "pgqrs_queue_ready", "Runs ready to be dequeued now"),
    ("leased", "pgqrs_queue_leased", "Runs a worker holds a live lease on"),
    ("delayed", "pgqrs_queue_delayed", "Runs not visible yet: retries, delayed starts, pauses, waits"),
    ("waiting", "pgqrs_queue_waiting", "Runs in a durable wait (sleep, event, message, children)"),
    ("depth", "pgqrs_queue_depth", "Live messages in the queue (ready, leased and delayed)"),
)


class Snapshot(Collector):
    """The gauges of rows read just before: queues (``pgqrs.queue_stats``), workers
    (``pgqrs.worker_status``), dead letters (``pgqrs.dead_letters``)."""

    def __init__(self, queues: list[dict[str, Any]], workers: list[dict[str, Any]], dead: int) -> None:
        self.queues, self.workers, self.dead = queues, workers, dead

    def collect(self) -> Any:
        """The metric families, built from the snapshot."""
        for column, name, text in QUEUE_GAUGES:
            family = GaugeMetricFamily(name, text, labels=["queue"])
            for q in self.queues:
                family.add_metric([q["queue"]], float(q[column] or 0))
            yield family
        oldest = GaugeMetricFamily("pgqrs_queue_oldest_age_seconds", "Age of the oldest live message",
                                   labels=["queue"])
        for q in self.queues:
            oldest.add_metric([q["queue"]], q["oldest_age"].total_seconds() if q["oldest_age"] else 0.0)
        yield oldest
        leases = GaugeMetricFamily("pgqrs_worker_leases", "Leases an active worker holds",
                                   labels=["worker", "queue"])
        heartbeat = GaugeMetricFamily("pgqrs_worker_heartbeat_age_seconds",
                                      "Seconds since an active worker's last heartbeat",
                                      labels=["worker", "queue"])
        for w in self.workers:
            if w["status"] == "ACTIVE":
                leases.add_metric([w["name"], w["queue"]], float(w["leases"]))
                heartbeat.add_metric([w["name"], w["queue"]], w["heartbeat_age"].total_seconds())
        yield leases
        yield heartbeat
        yield GaugeMetricFamily("pgqrs_dead_letters", "Runs that failed for good (pgqrs.dead_letters)",
                                value=float(self.dead))


async def snapshot(db: Any) -> Snapshot:
    """Read the rows the gauges show: ``pgqrs.queue_stats``, ``pgqrs.worker_status`` and the count of
    ``pgqrs.dead_letters``."""
    dead = (await db.one(dash_sql.DEAD_LETTER_COUNT))["dead_letters"]
    return Snapshot(await db.rows(dash_sql.QUEUES), await db.rows(dash_sql.WORKERS), int(dead))


async def endpoint(request: Request) -> Response:
    """GET /metrics: the gauges of this moment in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(await snapshot(request.app.state.db))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
