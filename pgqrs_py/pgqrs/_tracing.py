"""OpenTelemetry traces, when `opentelemetry-api` is installed (`pip install "pgqrs-engine[otel]"`); without
it every function here does nothing and nothing is imported (docs/dashboard.md, "Traces").

Spans are made once a tracer provider is set (an SDK configured); with the API alone they would all be no-ops.

- A trigger stores the caller's current trace context with the run (``runs.trace_context``: what the global
  propagator injects, W3C `traceparent` and `tracestate` by default); a child run gets its parent's.
- A worker makes a span per execution of a run ("pgqrs.run <workflow>", a child of that stored context) and,
  inside it, a span per step body it runs ("pgqrs.step <step id>"; a replayed step makes none). Attributes:
  pgqrs.workflow (run spans), pgqrs.run_id, pgqrs.attempt (the run's delivery, the step's attempt),
  pgqrs.step_id, pgqrs.outcome (the run's status after it, or the step's: SUCCESS, QUEUED for a retry,
  ERROR...). So one trace follows a request from
  the handler that triggered it through every step, across retries and workers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

try:
    from opentelemetry import propagate, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError:  # no OpenTelemetry: no trace context is stored, no span is made
    trace = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from .run import Message

TRACER = "pgqrs"
FAILED = ("ERROR", "CANCELLED")  # outcomes that mark a span as failed


def _tracing() -> bool:
    """OpenTelemetry is installed and a tracer provider is set (an SDK): until then every span would be a
    no-op, and making them would still cost each run and step some CPU."""
    return trace is not None and not isinstance(
        trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider
    )


def injected() -> str | None:
    """The caller's current trace context as JSON text for `p_trace_context`, or None (no OpenTelemetry, no
    tracer provider, or no span is current)."""
    if not _tracing() or not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return json.dumps(carrier) if carrier else None


class Outcome:
    """What a span reports at its end (pgqrs.outcome): set by the code that knows it; None: left unset."""

    def __init__(self, span: Any) -> None:
        self.span = span

    def __call__(self, outcome: str) -> None:
        if self.span is None:
            return
        self.span.set_attribute("pgqrs.outcome", outcome)
        if outcome in FAILED:
            self.span.set_status(Status(StatusCode.ERROR))


@contextmanager
def run_span(workflow: str, message: Message) -> Iterator[Outcome]:
    """One execution of a run, current while its handler runs; a child of the context its trigger stored."""
    if not _tracing():
        yield Outcome(None)
        return
    parent = propagate.extract(message.trace_context) if isinstance(message.trace_context, dict) else None
    attributes: dict[str, str | int] = {"pgqrs.workflow": workflow, "pgqrs.run_id": message.run_id,
                                        "pgqrs.attempt": message.attempt}
    with trace.get_tracer(TRACER).start_as_current_span(
        f"pgqrs.run {workflow}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes,
        record_exception=False, set_status_on_exception=False,
    ) as span:
        yield Outcome(span)


@contextmanager
def step_span(run_id: int, step_id: str, attempt: int) -> Iterator[Outcome]:
    """A step body's run, inside its run's span (which names the workflow); current while the body runs (its
    own spans nest in it). `attempt` is the step's."""
    if not _tracing():
        yield Outcome(None)
        return
    attributes: dict[str, str | int] = {"pgqrs.run_id": run_id, "pgqrs.step_id": step_id,
                                        "pgqrs.attempt": attempt}
    with trace.get_tracer(TRACER).start_as_current_span(
        f"pgqrs.step {step_id}", attributes=attributes, record_exception=False, set_status_on_exception=False,
    ) as span:
        yield Outcome(span)
