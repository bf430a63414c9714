"""Replay drift: does a replay ask for the steps in the order the run recorded them? (docs/reliability.md,
"Replay drift".) Flavour-neutral: `pgqrs.sync` uses the same class.

The journal of a delivery (``pgqrs.dequeue``) gives each recorded step its `order` (steps.step_order: when it
was first recorded). The steps a replay is held to are those recorded SUCCESS: their values are what a
replay returns. A step recorded but not succeeded (a failed attempt waiting for its retry, a pause, a wait
still waiting) returned nothing to the code after it, so the code may take another way from there (a fix
deployed while a step fails and retries is no drift). The rule:

- The handler's own flow (the task or thread that runs the handler) must not ask for the recorded steps in
  another order: a recorded step it passes by (asks for a later one first) must then be asked for by another
  flow (a task or thread beside the handler: their order on replay is the scheduler's, and one may have
  recorded its step before the handler asked for its own), never by the own flow itself (a reordered step).
  A step it asks for that the journal does not have (a new one) is fine only once every recorded step has
  been asked for: new steps go after the recorded ones.
- Exempt from that order: steps asked for from another task or thread (asyncio.gather, a TaskGroup, a thread
  pool), recorded steps whose recorded time span overlaps another step's (they ran side by side, so their
  recorded order is the order they happened to end in), and steps recorded from outside a worker
  (``pgqrs.update_step`` of a step no worker started).
- When the handler returns, every step a worker recorded must have been asked for (else a step was removed).

The hot path costs a dict lookup and a cursor step per step. Only when the order looks wrong does the worker
read the steps' recorded times (``pgqrs.run_steps``, one call per execution) to tell the exempt steps apart;
ReplayDrift is raised only for a step that no exemption covers.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

# (step id, start, end) of a recorded step, as pgqrs.run_steps has it; start None: recorded from outside.
Span = tuple[str, datetime | None, datetime | None]


class ReplayOrder:
    """The steps of one delivery's journal recorded SUCCESS, in recorded order, and which of them this
    execution has asked for so far."""

    def __init__(self, journal: dict[str, Any]) -> None:
        entries = [(entry.get("order"), step_id) for step_id, entry in journal.items()
                   if isinstance(entry, dict) and entry.get("status") == "SUCCESS"]
        if any(not isinstance(order, int) for order, _ in entries):
            entries = []  # a journal without orders (an engine older than the worker): nothing to check
        self._recorded = [step_id for _order, step_id in sorted(entries)]
        self._position = {step_id: i for i, step_id in enumerate(self._recorded)}
        self._done = [False] * len(self._recorded)  # asked for, or exempt from the order
        self._asked = [False] * len(self._recorded)
        self._next = 0  # the first recorded step not done
        self._passed: dict[str, str] = {}  # a recorded step the own flow passed by -> the step it asked for
        self._exempt: set[str] = set()  # recorded steps that ran side by side or were recorded from outside
        self.exempt_known = False  # whether exempt() has been told the recorded times

    def ask(self, step_id: str, own_flow: bool) -> tuple[str, str] | None:
        """Step `step_id` is asked for (`own_flow`: by the handler's own task or thread). The drift the ask
        shows, as (the recorded step expected, the step asked for), or None."""
        position = self._position.get(step_id)
        if position is not None:
            self._asked[position] = self._done[position] = True
        self._advance()
        if not own_flow:
            return None
        if step_id in self._passed and step_id not in self._exempt:  # passed by, then asked for: reordered
            return step_id, self._passed[step_id]
        if self._next == len(self._recorded):
            return None
        if position is None:  # a new step before recorded ones not asked for yet
            pending = [(passed, by) for passed, by in self._passed.items()
                       if not self._done[self._position[passed]]]
            return pending[0] if pending else (self._recorded[self._next], step_id)
        for skipped in range(self._next, position):  # to be asked for by another flow, later
            if not self._done[skipped]:
                self._passed.setdefault(self._recorded[skipped], step_id)
        return None

    def exempt(self, spans: Iterable[Span]) -> None:
        """Mark as done the recorded steps that may come in any order: recorded from outside (no start), or
        whose recorded span overlaps another's (they ran side by side)."""
        for step_id in side_by_side(spans):
            position = self._position.get(step_id)
            if position is not None:
                self._done[position] = True
                self._exempt.add(step_id)
        self.exempt_known = True
        self._advance()

    def unasked(self) -> list[str]:
        """The recorded steps never asked for, in recorded order."""
        return [step_id for step_id, asked in zip(self._recorded, self._asked, strict=True) if not asked]

    def _advance(self) -> None:
        while self._next < len(self._done) and self._done[self._next]:
            self._next += 1


def side_by_side(spans: Iterable[Span]) -> set[str]:
    """The steps exempt from the recorded order: those without a start (recorded from outside a worker), and
    those whose span [start, end] overlaps another's. Sorted by start, a span overlaps a later-starting one
    exactly when the next one starts before it ends, and an earlier-starting one exactly when the latest end
    before it is past its start: O(n log n)."""
    timed = []
    exempt = set()
    for step_id, start, end in spans:
        if start is None:
            exempt.add(step_id)
        else:
            timed.append((start, end if end is not None and end > start else start, step_id))
    timed.sort()
    latest_end: datetime | None = None
    for i, (start, end, step_id) in enumerate(timed):
        if latest_end is not None and latest_end > start:
            exempt.add(step_id)
        if i + 1 < len(timed) and timed[i + 1][0] < end:
            exempt.add(step_id)
        latest_end = end if latest_end is None else max(latest_end, end)
    return exempt
