"""What a worker reports as it goes, for metrics: a Store's `observer` (this no-op by default) hears of each
run a worker starts and finishes, each step's outcome and duration, and the loop's errors. `pgqrs worker
--metrics-port` puts a pgqrs.worker_metrics.PrometheusObserver there; the calls cost a method call each."""

from __future__ import annotations


class Observer:
    """Does nothing: the default of every Store. A subclass overrides what it counts."""

    def run_started(self) -> None:
        """A run was delivered to this worker and its handler starts."""

    def run_finished(self, status: str) -> None:
        """This worker finished a run: SUCCESS, or ERROR (its message is a dead letter)."""

    def step_finished(self, run_status: str | None, seconds: float | None) -> None:
        """A step body's outcome was recorded after `seconds` (None: not measured). `run_status` None: the
        step succeeded; else it failed and the run is QUEUED (a retry) or ERROR (for good)."""

    def loop_error(self) -> None:
        """The worker loop met an error it survives (a failed dequeue, an unexpected error around a run)."""


NO_OBSERVER = Observer()
