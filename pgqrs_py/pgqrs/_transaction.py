"""Transactional steps (`ctx.transaction_step`): the body's writes and the step's record in one transaction.

The body gets a connection of the store's pool inside a transaction; before the COMMIT the same connection
records the step with ``pgqrs.complete_step`` under the run's lease. So the application's rows and the step's
result commit together or not at all: a crash before the COMMIT applies neither (PostgreSQL rolls back a
transaction whose client is gone), a lease lost meanwhile makes complete_step raise LeaseLost (QR004) and the
body's writes roll back with it, and a replay finds the step recorded and does not run the body again.

Locks. complete_step locks the run's message row (FOR UPDATE) as the transaction's last statement, after every
lock the body took, and the COMMIT follows at once: holding that row, the transaction waits for nothing. The
worker's other calls on the run (a step run side by side, complete_run) lock that row and the run's own rows,
never the application's, so they can wait for this transaction but it never waits for them while holding the
row: no cycle. The heartbeat locks message rows with SKIP LOCKED: it passes this one by (held = NULL, the
lease is extended by the next beat) instead of waiting. A dequeue also skips it, so a worker that takes over
an expired lease sees either this step committed or nothing of it.

A second connection per run in flight: the run's own connection must stay outside the transaction (the
worker's calls for steps run side by side, and for the failure of this one, go there); the worker grows its
pool for it (consumer.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import psycopg

from . import _sql
from ._json import dumps
from .errors import LeaseLost, NotSerializable, RunCancelled, StepConflict, TransientError
from .outcomes import BodyNotStarted, Suspended, error_json
from .store import call_on
from .workflow import WorkflowContext


class AlreadyRecorded(Exception):
    """complete_step found this step recorded with the same value (from outside, by ``pgqrs.update_step``):
    the body's writes roll back, the step has happened already."""


async def transaction_step(ctx: WorkflowContext, step_id: str, fn: Callable[..., Any],
                           retry_policy: dict[str, Any] | None) -> Any:
    """WorkflowContext.transaction_step (which documents it)."""
    found, value = await ctx._replayed(step_id)
    if found:
        return value
    run = ctx.run
    started = time.monotonic()
    run.steps_in_flight[step_id] = started  # reported by the worker's heartbeat while it runs
    try:
        try:
            text = await in_transaction(ctx, step_id, fn, started)
        finally:
            run.steps_in_flight.pop(step_id, None)
    except (BodyNotStarted, NotSerializable, LeaseLost, RunCancelled):
        raise  # rolled back; as ctx.step: nothing was recorded, the worker or the handler decides
    except AlreadyRecorded as same:
        return json.loads(str(same))
    except StepConflict:  # recorded from outside with another value meanwhile: rolled back, the record wins
        return await ctx._recorded(step_id, (await run.acquire_step(step_id)).value)
    except TransientError as exc:
        failure: Exception = exc
        transient, retry_after = True, exc.retry_after
    except Exception as exc:
        # The body's (or its COMMIT's) database trouble is transient, as in ctx.step; anything else is final.
        failure, transient, retry_after = exc, isinstance(exc, psycopg.OperationalError), None
    else:
        return json.loads(text)
    policy = retry_policy if transient else None
    try:  # after the rollback, on the run's own connection
        status = await run.fail_step(step_id, error_json(failure), transient=transient,
                                     retry_after=retry_after, retry_policy=policy,
                                     duration=time.monotonic() - started)
    except StepConflict:  # a COMMIT whose answer was lost went through after all: the step is recorded
        return await ctx._recorded(step_id, (await run.acquire_step(step_id)).value)
    raise Suspended(status)


async def in_transaction(ctx: WorkflowContext, step_id: str, fn: Callable[..., Any], started: float) -> str:
    """Run `fn(conn)` and ``pgqrs.complete_step`` in one transaction on a pooled connection; the value's JSON
    text.
    Any exception rolls the transaction back (psycopg's transaction block) and propagates."""
    run = ctx.run
    async with run.store.pool.connection() as conn, conn.transaction():
        with ctx._body(step_id):  # refuses to start when the lease ran out or the worker gave the run up
            result = await fn(conn)
        text = dumps(result, f"the result of step {step_id!r}")
        params = (run.run_id, step_id, run.lease_token, text, time.monotonic() - started)
        if not (await call_on(conn, _sql.COMPLETE_STEP, params))[0][0]:
            raise AlreadyRecorded(text)
    return text

