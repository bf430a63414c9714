"""The durable waits of a workflow context (`ctx.sleep`, `ctx.wait_for_event`, `ctx.recv`): each records its
outcome as a step of its kind, and unwinds the handler (Suspended) while the run is WAITING. A replay answers
an outcome the delivery's journal holds without a round trip, as ctx.step does (`_journal_outcome`).

WorkflowContext (workflow.py) inherits them; the step ids they share with ctx.step are numbered here.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from ._acompat import current_flow
from ._json import UnreadableJson
from ._replay_order import ReplayOrder
from .errors import DuplicateStepId, InvalidArgument, ReplayDrift, WaitTimeout, seconds
from .outcomes import Suspended, error_json
from .run import Run


class DurableWaits:
    """The waits of `ctx`, and the step ids, their recorded order and the recorded values they share with
    ctx.step."""

    run: Run
    journal: dict[str, Any]
    _seen: set[str]
    _auto_counts: dict[str, int]
    _own_flow: object | None  # the task (thread) that runs the handler: _acompat.current_flow()
    _order: ReplayOrder | None  # built from the journal at the first step
    drift: ReplayDrift | None  # once raised, raised again by every later step and by the end of the handler

    async def _in_order(self, step_id: str) -> None:
        """Step `step_id` is asked for: raises ReplayDrift when the ask passes by a recorded step that it
        should have come after (pgqrs/_replay_order.py has the rule), before anything runs or is recorded.
        Only then, once per execution, are the recorded time spans read (``pgqrs.run_steps``)."""
        if self.drift is not None:
            raise self.drift
        order = self._replay_order()
        drift = order.ask(step_id, current_flow() == self._own_flow)
        if drift is not None and not order.exempt_known:
            order.exempt(await self.run.step_spans())
            drift = order.ask(step_id, True)
        if drift is not None:
            self.drift = ReplayDrift(self.run.run_id, *drift)
            raise self.drift

    async def replay_finished(self) -> None:
        """The handler has returned: raises ReplayDrift when a step recorded SUCCESS was never asked for (a
        step removed), or when a step raised it before (whatever the handler made of it). Reads the
        recorded steps (``pgqrs.run_steps``) only when some were not asked for, to leave out those recorded
        from outside a worker (``pgqrs.update_step``)."""
        if self.drift is not None:
            raise self.drift
        unasked = self._replay_order().unasked()
        if not unasked:
            return
        from_outside = {step_id for step_id, start, _end in await self.run.step_spans() if start is None}
        removed = [step_id for step_id in unasked if step_id not in from_outside]
        if removed:
            self.drift = ReplayDrift(self.run.run_id, removed[0], None)
            raise self.drift

    def _replay_order(self) -> ReplayOrder:
        if self._order is None:
            self._order = ReplayOrder(self.journal if isinstance(self.journal, dict) else {})
        return self._order

    def auto_id(self, base: str) -> str:
        """The id of a `@step` call: its name, then name#2, name#3 for repeated calls in this execution."""
        n = self._auto_counts.get(base, 0) + 1
        candidate = base if n == 1 else f"{base}#{n}"
        while candidate in self._seen:
            n += 1
            candidate = f"{base}#{n}"
        self._auto_counts[base] = n
        return candidate

    async def _claim(self, step_id: str | None, base: str) -> str:
        """The id of a wait: `step_id`, or `base` auto-numbered (base, base#2, ...); each id once per
        execution (DuplicateStepId), in the recorded order (ReplayDrift)."""
        if step_id is None:
            step_id = self.auto_id(base)
        if step_id in self._seen:
            run_id = self.run.run_id
            raise DuplicateStepId(f"step id {step_id!r} is used twice in one execution of run {run_id}")
        self._seen.add(step_id)
        await self._in_order(step_id)
        return step_id

    def _journal_outcome(self, step_id: str, kind: str) -> tuple[bool, Any]:
        """(True, value) when the delivery's journal (``pgqrs.dequeue``) holds step `step_id` as a step of
        `kind` (steps.kind) recorded SUCCESS: `value` is its recorded outcome, which the engine would answer
        too. Else (False, None), and the wait asks the engine: the step is not recorded yet or still WAITING,
        is another kind of step (the engine raises StepKindConflict), or its value was left out of the
        journal (past its size bound)."""
        recorded = self.journal.get(step_id)
        if (recorded is None or recorded.get("status") != "SUCCESS" or recorded.get("kind") != kind
                or recorded.get("value_omitted")):
            return False, None
        return True, recorded.get("value")

    async def sleep(self, duration: float | timedelta, step_id: str | None = None) -> None:
        """Durable sleep: ``pgqrs.sleep_step`` records the wake-up time (now + `duration` seconds or
        timedelta, on the engine clock) as step `step_id` (default "sleep", "sleep#2", ...), releases the
        lease and unwinds the handler (Suspended, like a pause): the run is WAITING, holds no worker slot,
        and is delivered again at the wake-up, when the replay of this call returns at once (it keeps the
        first wake-up time; a sleep the journal has as done returns without a round trip). A duration of 0
        returns at once. Raises InvalidArgument (a negative, infinite or NaN duration, or more than 365
        days), StepKindConflict (QR010: the id is another kind of step), DuplicateStepId, ReplayDrift and the
        lease errors."""
        value = seconds(duration)
        if not math.isfinite(value) or value < 0:
            raise InvalidArgument(f"sleep duration must be a finite number of seconds >= 0, got {duration!r}")
        await self._sleep(await self._claim(step_id, "sleep"), seconds=value)

    async def sleep_until(self, when: datetime, step_id: str | None = None) -> None:
        """Durable sleep until `when` (an aware datetime; a time that has come returns at once): as
        `sleep`, through ``pgqrs.sleep_step``. Raises InvalidArgument (a naive datetime, or more than 365
        days ahead), StepKindConflict (QR010), DuplicateStepId, ReplayDrift and the lease errors."""
        if when.tzinfo is None:
            raise InvalidArgument("sleep_until needs an aware datetime (with a time zone)")
        await self._sleep(await self._claim(step_id, "sleep"), until=when)

    async def _sleep(self, step_id: str, **when: Any) -> None:
        if self._journal_outcome(step_id, "sleep")[0]:
            return  # the recorded wake-up time has come (the value is that time)
        status, _until = await self.run.sleep_step(step_id, **when)
        if status != "SUCCESS":
            raise Suspended("WAITING")

    async def wait_for_event(self, key: str, timeout: float | timedelta | None = None,
                             step_id: str | None = None) -> Any:
        """Wait for event `key` (``pgqrs.wait_event``), at most `timeout` (seconds or timedelta; None: no
        timeout), as step `step_id` (default "wait_for_event", "wait_for_event#2", ...). Returns its payload
        at once when it was emitted (``pgqrs.emit_event``, `store.emit_event`); otherwise the run is WAITING,
        its lease released, and the handler unwinds (Suspended) until the emit wakes it or the timeout
        passes; the replay then returns the payload or raises WaitTimeout (a replay gives the same outcome,
        from the journal without a round trip once it is recorded; the handler may catch it). Raises
        InvalidArgument (22023: a key not of 1-255 characters, a timeout not within 0-365 days),
        StepKindConflict (QR010), DuplicateStepId, ReplayDrift and the lease errors."""
        step_id = await self._claim(step_id, "wait_for_event")
        wait = None if timeout is None else seconds(timeout)
        found, outcome = self._journal_outcome(step_id, "event")  # {"payload": ...} or {"timeout": true}
        if found:
            status, payload = ("EVENT", outcome["payload"]) if "payload" in outcome else ("TIMEOUT", None)
        else:
            status, payload = await self.run.wait_event(step_id, key, wait)
        if status == "EVENT":
            return await self._recorded(step_id, payload)
        if status == "TIMEOUT":
            raise WaitTimeout(f"event {key!r} was not emitted within {timeout} (step {step_id!r})", key=key)
        raise Suspended("WAITING")

    async def recv(self, topic: str, timeout: float | timedelta | None = None,
                   step_id: str | None = None) -> Any:
        """Receive the oldest message of `topic` sent to this run (``pgqrs.recv``; sent with ``pgqrs.send``,
        `store.send`, `ctx.send` or `pgqrs send`), waiting at most `timeout` (seconds or timedelta; None: no
        timeout), as step `step_id` (default "recv", "recv#2", ...). The message is consumed by this step and
        recorded as its value: a replay returns the same message, and no other step ever gets it. With no
        message yet the run is WAITING (kind message), its lease released, and the handler unwinds
        (Suspended) until a send wakes it or the timeout passes, when the replay raises WaitTimeout (recorded:
        a replay raises it again; the handler may catch it). A recorded outcome the journal holds is
        answered from it, without a round trip. Raises InvalidArgument (22023: a topic not of
        1-255 characters, a timeout not within 0-365 days), StepKindConflict (QR010: the id is another kind
        of step, or a recv of another topic), DuplicateStepId, ReplayDrift and the lease errors."""
        step_id = await self._claim(step_id, "recv")
        wait = None if timeout is None else seconds(timeout)
        # {"topic": t, "message": m} or {"topic": t, "timeout": true}; another topic: the engine raises QR010
        found, outcome = self._journal_outcome(step_id, "message")
        if found and outcome.get("topic") == topic:
            status, message = ("MESSAGE", outcome["message"]) if "message" in outcome else ("TIMEOUT", None)
        else:
            status, message = await self.run.recv(step_id, topic, wait)
        if status == "MESSAGE":
            return await self._recorded(step_id, message)
        if status == "TIMEOUT":
            raise WaitTimeout(f"no message on topic {topic!r} within {timeout} (step {step_id!r})", key=topic)
        raise Suspended("WAITING")

    async def _recorded(self, step_id: str, value: Any) -> Any:
        """A value recorded from outside (update_step); one Python cannot read fails the run for good."""
        if isinstance(value, UnreadableJson):
            await self.run.fail(error_json(value.error(f"the stored value of step {step_id!r}")))
            raise Suspended("ERROR")
        return value
