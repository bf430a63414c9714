"""`/metrics` of the dashboard: the state of the whole database in Prometheus' text format, read at each
scrape from the ops views (docs/dashboard.md#metrics). A worker's own counters are on
`pgqrs worker --metrics-port` (pgqrs.worker_metrics, whose gauges this shares)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from .._sql import dashboard as dash_sql
from ..worker_metrics import queue_families, worker_families


class Snapshot(Collector):
    """The gauges of rows read just before: queues (``pgqrs.queue_stats``), workers
    (``pgqrs.worker_status``), dead letters (``pgqrs.dead_letters``)."""

    def __init__(self, queues: list[dict[str, Any]], workers: list[dict[str, Any]], dead: int) -> None:
        self.queues, self.workers, self.dead = queues, workers, dead

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The metric families, built from the snapshot."""
        yield from queue_families(self.queues)
        yield from worker_families(self.workers)
        yield GaugeMetricFamily("pgqrs_dead_letter_runs", "Runs that failed for good (pgqrs.dead_letters)",
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
