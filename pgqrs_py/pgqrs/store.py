"""The connection to a pgqrs database and the calls that need no lease (clients, webhooks, ops)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from . import _sql
from ._dsn import resolve_dsn
from ._json import ADAPTERS, dumps
from ._observer import NO_OBSERVER
from ._params import as_id, limits_params, trigger_params, update_step_params
from ._pgqrs015 import Store015
from ._pools import ReplicaReads, check_primary, checked_staleness, open_pool
from ._retention import RetentionCalls
from .errors import mapped_errors
from .records import Schedule, ScheduledRun, StepRecord, TriggerHandle, WorkflowDef
from .results import ResultListener
from .vocabulary import StepStatus

AsyncConn = psycopg.AsyncConnection[TupleRow]


async def call_on(conn: AsyncConn, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Run one engine call on the caller's connection (its transaction) and return its rows. Engine SQLSTATEs
    are raised as their pgqrs.errors class (mapped_errors); other database errors as psycopg's."""
    with mapped_errors():
        cur = await conn.execute(query, params)
        return await cur.fetchall()


def conn_kwargs() -> dict[str, Any]:
    """Every connection's options. Autocommit: one engine call = one transaction; prepare_threshold=0:
    prepared at once; ADAPTERS: stored JSON Python's json cannot read becomes an UnreadableJson marker."""
    return {"autocommit": True, "prepare_threshold": 0, "context": ADAPTERS}


class Store(RetentionCalls, Store015):
    """A pool of connections to one database. Make one with `await pgqrs.connect(dsn)`."""

    def __init__(self, dsn: str, pool: AsyncConnectionPool[AsyncConn],
                 replica: ReplicaReads | None = None) -> None:
        self.dsn = dsn
        self.pool = pool
        self.replica = replica  # the reads of `read_dsn` (pgqrs/_pools.py), if given
        self.results = ResultListener(dsn, replica)  # result() waiters; its connection opens at the first one
        self.observer = NO_OBSERVER  # what its workers report, for metrics (pgqrs/_observer.py)

    async def close(self) -> None:
        """Close the result listener (a `result()` still waiting raises PgqrsError) and the pools."""
        await self.results.close()
        await self.pool.close()
        if self.replica is not None:
            await self.replica.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def call(
        self, query: str, params: tuple[Any, ...], conn: AsyncConn | None = None
    ) -> list[tuple[Any, ...]]:
        """Run one engine call and return its rows, on `conn` (the caller's transaction) or a pooled one.
        Engine SQLSTATEs are raised as their pgqrs.errors class; other database errors as psycopg's."""
        if conn is not None:
            return await call_on(conn, query, params)
        if self.replica is not None:
            self.replica.before_call(query, params)
        with mapped_errors():
            async with self.pool.connection() as pooled:
                cur = await pooled.execute(query, params)
                return await cur.fetchall()

    async def now(self) -> datetime:
        """The database's time: calls ``pgqrs.now`` (the engine's clock)."""
        rows = await self.call(_sql.NOW, ())
        return rows[0][0]  # type: ignore[no-any-return]

    async def create_workflow(self, name: str, retry_policy: dict[str, Any] | None = None, *,
                              max_concurrency: int | None = None, max_concurrency_per_key: int | None = None,
                              rate_limit: dict[str, Any] | None = None) -> WorkflowDef:
        """Create the workflow `name` and its queue, or return the existing one: calls
        ``pgqrs.create_workflow``. A `retry_policy` (max_attempts, backoff, base_seconds, max_seconds,
        jitter) replaces the stored one, merged over the defaults; a limit given replaces the stored one:
        `max_concurrency` (runs holding a lease at once, across all workers), `max_concurrency_per_key` (per
        trigger `concurrency_key`), `rate_limit` ({"limit": n, "period": "1 minute" or seconds}: deliveries
        per period). None keeps what is stored (set_workflow_limits removes a limit). Raises InvalidArgument
        (22023: a bad name, policy or limit) and NotSerializable."""
        policy = dumps(retry_policy, "the retry policy") if retry_policy is not None else None
        limits = limits_params(max_concurrency, max_concurrency_per_key, rate_limit)
        row = (await self.call(_sql.CREATE_WORKFLOW, (name, policy, *limits)))[0]
        return WorkflowDef(*row)

    async def set_workflow_limits(self, name: str, *, max_concurrency: int | None = None,
                                  max_concurrency_per_key: int | None = None,
                                  rate_limit: dict[str, Any] | None = None) -> WorkflowDef:
        """Set the limits of workflow `name` exactly as given, None removing one (ops, on a live system):
        calls ``pgqrs.set_workflow_limits``, which wakes its workers. Raises UnknownWorkflow (QR001),
        InvalidArgument (22023: a limit not 1-1000000, a malformed rate limit) and NotSerializable."""
        limits = limits_params(max_concurrency, max_concurrency_per_key, rate_limit)
        return WorkflowDef(*(await self.call(_sql.SET_WORKFLOW_LIMITS, (name, *limits)))[0])

    async def trigger(
        self,
        workflow: str,
        params: Any = None,
        *,
        idempotency_key: str | None = None,
        delay: float | Any = None,
        run_at: datetime | None = None,
        priority: int = 0,
        concurrency_key: str | None = None,
        version: str | None = None,
        conn: AsyncConn | None = None,
    ) -> TriggerHandle:
        """Start a run of `workflow` with `params` (any JSON value or a dataclass; None for {}): calls
        ``pgqrs.trigger``. `delay` (seconds or a timedelta) or `run_at` (not both) start it later; a second
        trigger with the same `idempotency_key` and input returns the existing run (`.created` False).
        `priority` (-100..100, default 0): higher runs are delivered first. `concurrency_key`: the key the
        workflow's max_concurrency_per_key counts. `version`: the version of the workflow code the run must
        run on (default: the first versioned worker that takes it). `conn` joins its transaction. Raises
        UnknownWorkflow (QR001), IdempotencyConflict (QR006: the key's run has another input), InvalidArgument
        (22023: an input too big; a delay outside 0-365 days, a run_at more than 365 days ahead, or both; a
        key not of 1-255 characters; a priority out of range; a version not of 1-128 letters, digits and _ .
        : -) and NotSerializable."""
        marshalled = trigger_params(workflow, params, idempotency_key, delay, run_at, priority,
                                    concurrency_key, version)
        rows = await self.call(_sql.TRIGGER, marshalled, conn)
        return TriggerHandle(rows[0][0], rows[0][2], params, workflow)

    async def update_step(
        self, run_id: Any, step_id: str, status: str | StepStatus, value: Any = None
    ) -> StepRecord:
        """Record a step's result from outside a worker (a webhook): calls ``pgqrs.update_step``. Only the
        step is written: a PAUSED run stays paused until `resume_run`. A recorded SUCCESS is final: the
        same SUCCESS again is a no-op. Raises UnknownRun (QR002), InvalidState (QR003: the run is SUCCESS
        or CANCELLED), StepConflict (QR005: the step already succeeded), StepKindConflict (QR010: the step
        is a durable wait's or a child workflow's), InvalidArgument (22023: a bad step id or status),
        NotSerializable, and TypeError for something that is not a run id."""
        row = (await self.call(_sql.UPDATE_STEP, update_step_params(run_id, step_id, status, value)))[0]
        return StepRecord(*row)

    async def resume_run(self, run_id: Any) -> str:
        """PAUSED → QUEUED, visible now; a worker picks it up at once: calls ``pgqrs.resume_run``, returns
        "QUEUED". Raises UnknownRun (QR002) and InvalidState (QR003: the run is not PAUSED)."""
        return str((await self.call(_sql.RESUME_RUN, (as_id(run_id),)))[0][0])

    async def cancel_run(self, run_id: Any, reason: str | None = None) -> str:
        """Cancel a run that has not finished: calls ``pgqrs.cancel_run``, returns "CANCELLED". A worker
        running it stops at its next step or heartbeat, and `result()` raises RunCancelled. Raises
        UnknownRun (QR002), InvalidState (QR003: the run has finished) and InvalidArgument (22023: a reason
        over 1000 characters)."""
        return str((await self.call(_sql.CANCEL_RUN, (as_id(run_id), reason)))[0][0])

    async def emit_event(self, key: str, payload: Any = None, conn: AsyncConn | None = None) -> bool:
        """Emit event `key` with `payload` (as JSON): calls ``pgqrs.emit_event``. The first emit of a key
        wins and returns True: every run waiting for it (`ctx.wait_for_event`) gets the payload and is
        delivered again at once. A later emit changes nothing and returns False. `conn` joins its
        transaction. Raises InvalidArgument (22023: a key not of 1-255 characters, a payload over
        pgqrs.max_input_bytes) and NotSerializable."""
        text = dumps(payload, f"the payload of event {key!r}")
        return bool((await self.call(_sql.EMIT_EVENT, (key, text), conn))[0][0])

    async def send(self, run_id: Any, topic: str, message: Any = None, idempotency_key: str | None = None,
                   conn: AsyncConn | None = None) -> int:
        """Send `message` (as JSON) to run `run_id` on `topic`: calls ``pgqrs.send``; returns the message id.
        The run's `ctx.recv(topic)` steps take the messages of a topic in the order sent, each exactly once;
        a run waiting on the topic is delivered again at once. The same `idempotency_key` again returns the
        first message's id and sends nothing. `conn` joins its transaction. Raises UnknownRun (QR002),
        InvalidState (QR003: the run has finished), IdempotencyConflict (QR006: the key was used for another
        message), InvalidArgument (22023: a topic not of 1-255 characters, a message over
        pgqrs.max_input_bytes, an empty key), NotSerializable, and TypeError for something not a run id."""
        text = dumps(message, f"the message to run {run_id} on {topic!r}")
        return int((await self.call(_sql.SEND, (as_id(run_id), topic, text, idempotency_key), conn))[0][0])

    async def retry_run(self, run_id: Any) -> str:
        """ERROR → QUEUED from the last successful step (ops): calls ``pgqrs.retry_run``, returns "QUEUED".
        The steps that did not succeed are forgotten (their attempts start again); the successful ones
        replay. Raises UnknownRun (QR002) and InvalidState (QR003: the run is not ERROR)."""
        return str((await self.call(_sql.RETRY_RUN, (as_id(run_id),)))[0][0])

    async def fork_run(self, run_id: Any, from_step: str | None) -> TriggerHandle:
        """Run `run_id` again from step `from_step` after a fix (ops): calls ``pgqrs.fork_run``. A new run of
        the same workflow and input, queued now, replays the original's successful steps recorded before
        `from_step` and executes `from_step` and the rest; None copies no step (a plain re-run). The original
        is left as it was. Returns the new run's handle. Raises UnknownRun (QR002), InvalidArgument (22023:
        the run recorded no step `from_step`, or a malformed step id), and TypeError for something that is
        not a run id."""
        rows = await self.call(_sql.FORK_RUN, (as_id(run_id), from_step))
        return TriggerHandle(rows[0][0])

    async def set_run_version(self, run_id: Any, version: str | None) -> str | None:
        """Move a run to `version` of its workflow's code (None: unversioned), asserting that the code replays
        the steps it recorded (ops): calls ``pgqrs.set_run_version``; its next delivery goes to a worker of
        that version. Returns the version it had. Raises UnknownRun (QR002), InvalidState (QR003: SUCCESS or
        CANCELLED), InvalidArgument (22023: a malformed version), TypeError for something not a run id."""
        rows = await self.call(_sql.SET_RUN_VERSION, (as_id(run_id), version))
        return None if rows[0][0] is None else str(rows[0][0])

    async def steps(self, run_id: Any) -> list[StepRecord]:
        """The run's steps, first recorded first: calls ``pgqrs.run_steps``. Raises UnknownRun (QR002)."""
        rows = await self.call(_sql.RUN_STEPS, (as_id(run_id),))
        return [
            StepRecord(run_id=as_id(run_id), step_id=r[0], status=r[1], value=r[2], error=r[3], attempt=r[4])
            for r in rows
        ]

    async def create_schedule(self, name: str, workflow: str, cron: str, params: Any = None, *,
                              timezone: str = "UTC", catch_up: str = "latest") -> datetime:
        """Create or replace (by name) a schedule that starts runs of `workflow` with `params` at each tick of
        the 5-field `cron` expression in the IANA `timezone`: calls ``pgqrs.create_schedule``; returns the
        next fire time. `catch_up` says what starts for ticks missed while no worker ran: "latest" (the
        newest only) or "all" (each, at most 100). Every worker fires due schedules (docs/schedules.md).
        Raises UnknownWorkflow (QR001), InvalidArgument (22023: a bad cron expression, naming the field; an
        unknown time zone; a bad catch_up, name or input) and NotSerializable."""
        payload = dumps({} if params is None else params, f"the input of schedule {name!r}")
        rows = await self.call(_sql.CREATE_SCHEDULE, (name, workflow, cron, payload, timezone, catch_up))
        return rows[0][0]  # type: ignore[no-any-return]

    async def drop_schedule(self, name: str) -> bool:
        """Drop a schedule (runs it started stay): calls ``pgqrs.drop_schedule``; False when there was none.
        Raises InvalidArgument (22023: a bad name)."""
        return bool((await self.call(_sql.DROP_SCHEDULE, (name,)))[0][0])

    async def set_schedule_enabled(self, name: str, enabled: bool) -> bool:
        """Disable or enable a schedule: calls ``pgqrs.set_schedule_enabled``; False when there is none.
        Enabling counts the next fire from now. Raises InvalidArgument (22023: a bad name)."""
        return bool((await self.call(_sql.SET_SCHEDULE_ENABLED, (name, enabled)))[0][0])

    async def schedules(self) -> list[Schedule]:
        """Every schedule, by name, from the view ``pgqrs.schedules``. Raises nothing of its own."""
        return [Schedule(*row) for row in await self.call(_sql.SCHEDULES, ())]

    async def fire_schedules(self) -> list[ScheduledRun]:
        """Start the due ticks of every schedule, each exactly once whoever else calls it: calls
        ``pgqrs.fire_schedules``; returns the runs started. Workers do this on their own. Raises nothing."""
        return [ScheduledRun(*row) for row in await self.call(_sql.FIRE_SCHEDULES, ())]


async def connect(dsn: str | None = None, *, read_dsn: str | None = None, max_staleness: float = 5.0,
                  min_size: int = 1, max_size: int = 10) -> Store:
    """Open a pool to the database at `dsn`, by default the one `pgqrs.resolve_dsn` chooses ($PGQRS_DSN, the
    PG* variables, the embedded server of `pgqrs dev`). The schema must be installed (`pgqrs.install`).
    `read_dsn`: a replica for `get()` and `result()` reads, used while it lags at most `max_staleness`
    seconds and never older than what the store has seen (pgqrs/_pools.py).

    A database that cannot be reached raises psycopg's own error at once (not a pool timeout); NotPrimary
    when `dsn` reaches a standby; InvalidArgument for a max_staleness not of 0 to 86400 s. Calls no engine
    function."""
    max_staleness = checked_staleness(max_staleness)
    dsn = resolve_dsn(dsn)
    async with await psycopg.AsyncConnection.connect(dsn, **conn_kwargs()) as probe:
        await check_primary(probe)
    replica = None
    if read_dsn is not None:
        await (await psycopg.AsyncConnection.connect(read_dsn, **conn_kwargs())).close()
        replica = ReplicaReads(await open_pool(read_dsn, min_size, max_size, conn_kwargs()), max_staleness)
    return Store(dsn, await open_pool(dsn, min_size, max_size, conn_kwargs()), replica)
