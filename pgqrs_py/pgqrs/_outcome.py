"""What a worker records when a run's handler returns or raises, and how it hands a run back."""

from __future__ import annotations

import logging
import time

import psycopg

from . import _sql
from ._acompat import CancelledError, sleep
from ._json import UnreadableJson, dumps, storable_text
from ._tracing import run_span
from .errors import LeaseLost, NotSerializable, PgqrsError, RunCancelled, TransientError, UnreadableValue
from .handler import WorkflowFunction, invoke
from .outcomes import Suspended, error_json
from .run import Message, Run
from .store import Store
from .workflow import WorkflowContext

log = logging.getLogger("pgqrs.worker")

HANDLER_STEP = "$handler"  # the step id under which a TransientError raised outside any step is retried


async def run_traced(workflow: str, handler: WorkflowFunction, run: Run, ctx: WorkflowContext) -> None:
    """run_handler inside a span of the run's execution, with its outcome (pgqrs/_tracing.py)."""
    with run_span(workflow, run.message) as outcome:
        try:
            await run_handler(handler, run, ctx)
        except Suspended as exc:
            outcome(exc.run_status)
            raise
        outcome(run.outcome or "")


async def run_handler(handler: WorkflowFunction, run: Run, ctx: WorkflowContext) -> None:
    """Call the handler and record its outcome: the run's output, its failure, or a retry of HANDLER_STEP.
    Suspended, LeaseLost, this run's RunCancelled and the worker's own interrupted calls propagate."""
    if isinstance(run.message.input, UnreadableJson) or isinstance(run.message.steps, UnreadableJson):
        error = await unreadable(run)
        log.warning("run %s failed: %s", run.run_id, error)
        await run.fail(error_json(error))
        return
    try:
        output = await invoke(handler, ctx, run.message.input)
        await ctx.replay_finished()  # before complete_run: a recorded step never asked for is drift too
    except RunCancelled as exc:
        if exc.run_id not in (None, run.run_id):  # another run's (its result() awaited): a handler error
            await run.fail(error_json(exc))
            return
        raise  # this run was cancelled: stop
    except (Suspended, LeaseLost, CancelledError):
        raise
    except Exception as exc:
        await handler_failed(run, ctx, exc)
        return
    try:
        payload = dumps(output, f"the output of run {run.run_id}")
    except NotSerializable as exc:
        await run.fail(error_json(exc))
        return
    await run.complete_json(payload)


async def handler_failed(run: Run, ctx: WorkflowContext, exc: Exception) -> None:
    """Record the failure of a handler that raised `exc`: ReplayDrift's when a step raised it (whatever the
    handler made of it), a retry of HANDLER_STEP for a transient error, else the run's failure. The worker's
    own interrupted call propagates."""
    if ctx.drift is not None:
        log.warning("run %s failed: %s", run.run_id, ctx.drift)
        await run.fail(ctx.drift.error())
    elif isinstance(exc, psycopg.OperationalError):
        if exc is run.failed_call:
            raise exc  # our own call was cut off: not the handler's failure (see hand_back_interrupted)
        await run.fail_step(HANDLER_STEP, error_json(exc), transient=True)  # the user's database trouble
    elif isinstance(exc, TransientError):
        await run.fail_step(HANDLER_STEP, error_json(exc), transient=True, retry_after=exc.retry_after)
    else:  # a handler error never stops the loop: the run fails permanently
        log.info("run %s failed: %r", run.run_id, exc)
        await run.fail(error_json(exc))


async def unreadable(run: Run) -> UnreadableValue:
    """What of a delivered run Python's json cannot read: its input, else the step whose stored value
    spoils the step journal (looked up step by step with ``pgqrs.run_steps``), else the journal as a whole."""
    if isinstance(run.message.input, UnreadableJson):
        return run.message.input.error(f"the input of run {run.run_id}")
    for step_id, _status, value, *_rest in await run.store.call(_sql.RUN_STEPS, (run.run_id,), run.conn):
        if isinstance(value, UnreadableJson):
            return value.error(f"the stored value of step {step_id!r}")
    journal = run.message.steps
    assert isinstance(journal, UnreadableJson)
    return journal.error(f"the step journal of run {run.run_id}")


async def hand_back_interrupted(store: Store, message: Message, own: bool, exc: Exception,
                                visibility: float) -> None:
    """One of the worker's own engine calls was cut off: the connection was lost (`own`: a restart, a
    terminated backend) or the call failed on a live one (a deadlock, a statement timeout). That is not
    the step's failure, so no step failure is recorded: the run goes back to the queue as soon as the
    database answers, from its last recorded step. A lost connection is the infrastructure's doing: the
    run is visible again at once. A call that failed on a live connection may fail the same way every
    time (a value too big for the statement timeout): it is handed back with its cause, which the engine
    counts and backs off, and ends the run after max_attempts such deliveries in a row
    (``pgqrs.release_run``).
    """
    cause = "a lost connection" if own else "an interrupted engine call"
    log.warning("run %s interrupted by %s (%s); handing it back", message.run_id, cause, exc)
    error = None if own else engine_error(exc)
    deadline = time.monotonic() + visibility  # past it the lease has expired anyway
    backoff = 0.05
    while True:
        try:
            await store.call(_sql.RELEASE_RUN, (message.run_id, message.lease_token, error))
            return
        except psycopg.OperationalError as again:
            if time.monotonic() + backoff >= deadline:
                log.info("could not hand back run %s (%s); its lease expires", message.run_id, again)
                return
            await sleep(backoff)
            backoff = min(backoff * 2, 1.0)
        except (psycopg.Error, PgqrsError) as gone:  # finished or taken over meanwhile: nothing to give
            log.info("run %s not handed back: %s", message.run_id, gone)
            return


async def hand_back(store: Store, message: Message) -> None:
    """Give a run this worker stops working on back to the queue (pgqrs.release_run): visible at once."""
    try:
        await store.call(_sql.RELEASE_RUN, (message.run_id, message.lease_token, None))
    except (psycopg.Error, PgqrsError) as exc:  # finished, taken over, or the database is away
        log.info("could not hand back run %s (%s); its lease will expire", message.run_id, exc)


def engine_error(exc: Exception) -> str:
    """The cause of a failed engine call, as the JSON error pgqrs.release_run keeps (always storable)."""
    cause = {"type": type(exc).__name__, "sqlstate": getattr(exc, "sqlstate", None),
             "message": storable_text(str(exc)[:2000])}
    return dumps(cause, "the error of an engine call")
