"""A worker's view of the leases it holds: the bookkeeping behind its heartbeats, shared by both flavours.

Each lease runs out at a deadline by this process's monotonic clock (`deadlines`, read by Run.lease_expired):
a worker that was frozen past it must not start another step body, though the database would refuse its
writes anyway. A deadline of 0 means the lease is gone (lost, or given up by this worker): the run starts no
further step body.
"""

from __future__ import annotations

import json
import time
from typing import Any, Protocol
from uuid import UUID

from .run import Message


class InFlight(Protocol):
    """What the heartbeat reads of a run in flight (pgqrs.Run or pgqrs.sync.Run)."""

    steps_in_flight: dict[str, float]

    @property
    def call_started(self) -> float | None:
        """When the engine call in progress started (time.monotonic()), None when none is."""


class Leases:
    """The deadlines of the leases held, and the runs in flight by lease token (what heartbeats report)."""

    def __init__(self, visibility: float) -> None:
        self.visibility = visibility
        self.deadlines: dict[UUID, float] = {}
        self.runs: dict[UUID, InFlight] = {}

    def granted(self, messages: list[Message], sent: float) -> None:
        """Leases granted by a dequeue sent at monotonic time `sent`: the server's expiry is its own now plus
        the visibility, never earlier than `sent` plus it, so this deadline errs on the safe side."""
        for message in messages:
            self.deadlines[message.lease_token] = sent + self.visibility

    def forget(self, token: UUID) -> None:
        """The run is over for this worker."""
        self.deadlines.pop(token, None)
        self.runs.pop(token, None)

    def give_up(self, token: UUID) -> None:
        """This worker stops working on the run: it starts no further step body."""
        if token in self.deadlines:
            self.deadlines[token] = 0.0

    def extended(self, rows: list[tuple[Any, ...]], sent: float) -> set[UUID]:
        """Apply a heartbeat's answer (sent at monotonic `sent`): move the deadlines of the leases still held;
        return the tokens of the lost ones."""
        lost = set()
        for token, held, _until in rows:
            if held is None:
                continue  # its row was busy with one of the run's own calls: not extended, not lost
            if held:
                if token in self.deadlines:
                    self.deadlines[token] = sent + self.visibility
            else:
                lost.add(token)
                self.give_up(token)  # taken over or cancelled: start no other step
        return lost

    def beat_payload(self, messages: list[Message]) -> tuple[list[UUID], str | None, list[Message]]:
        """What the next heartbeat sends: the lease tokens to extend and the steps in flight (JSON for
        pgqrs.heartbeat), and the runs left out because an engine call of theirs has hung for longer than a
        lease: their leases must expire so that another worker takes them over."""
        now = time.monotonic()
        tokens: list[UUID] = []
        steps: list[dict[str, Any]] = []
        hung: list[Message] = []
        for message in messages:
            run = self.runs.get(message.lease_token)
            if run is not None and run.call_started is not None and now - run.call_started > self.visibility:
                hung.append(message)
                continue
            tokens.append(message.lease_token)
            if run is not None:
                steps.extend(
                    {"lease_token": str(message.lease_token), "step_id": step_id,
                     "running_for": round(max(0.0, now - started), 3)}
                    for step_id, started in list(run.steps_in_flight.items())
                )
        return tokens, json.dumps(steps) if steps else None, hung

    def calling(self, message: Message) -> bool:
        """Whether the run has an engine call on its way: its answer tells what became of the lease (the
        call may be the complete_run that just ended the run: a heartbeat then finds no lease, which is no
        loss), so the heartbeat leaves such a run alone instead of stopping it mid-call."""
        run = self.runs.get(message.lease_token)
        return run is not None and run.call_started is not None
