"""The pools of a store: the primary's, whose connections a restart or a failover may break (PoolCheck), and
a replica's.

Reads from a replica: `pgqrs.connect(dsn, read_dsn=...)` sends run reads (`get()`, `result()`) to a
standby, to keep polling off the primary (docs/reliability.md, "Read replicas").

The staleness rule: a read from the replica is used only when it is not older than what this store has seen
of that run. The store keeps the newest `updated_at` it has read of each run (the last SEEN_RUNS runs), and a
run it has just changed itself (resume, cancel, retry, update_step, send) is read from the primary once. The
primary is read instead when the replica does not know the run (a trigger it has not replayed yet), when its
row is older than the one seen, when the replica lags more than `max_staleness` seconds, or when it cannot be
reached. Writes never go to the replica.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from . import _sql
from ._conncheck import connection_lost
from ._sql import replica as replica_sql
from .errors import InvalidArgument, NotPrimary, UnknownRun, mapped_errors

AsyncConn = psycopg.AsyncConnection[TupleRow]

SEEN_RUNS = 10_000  # runs whose newest seen state a store remembers
# the engine calls that change a run given as their first parameter: that run is read from the primary next
RUN_WRITES = frozenset({_sql.RESUME_RUN, _sql.CANCEL_RUN, _sql.RETRY_RUN, _sql.UPDATE_STEP, _sql.SEND})
UPDATED_AT = 10  # the column of updated_at in a row of _sql.RUN_STATUS / _sql.FINISHED_RUNS


async def check_primary(conn: AsyncConn) -> None:
    """Raise NotPrimary when `conn` (opened with the write DSN) reached a server in recovery (a standby):
    every write would fail there, so the store refuses to open at all."""
    row = await (await conn.execute(replica_sql.IN_RECOVERY)).fetchone()
    if row is not None and row[0]:
        raise NotPrimary(
            "the DSN given for writes reached a standby (a server in recovery, read-only): "
            f"{conn.pgconn.host.decode(errors='replace')}",
            hint="give the primary, or list every server with target_session_attrs=read-write "
                 "(host=a,b ... target_session_attrs=read-write); a standby belongs in read_dsn")


class PoolCheck:
    """The pool's `check` at every checkout, without a round trip: a connection the server has closed (a
    restart, `pg_terminate_backend`) is discarded and replaced instead of failing the caller's statement. When
    one is found dead the pool checks its other idle ones at once (a restart kills them all)."""

    def __init__(self) -> None:
        self.pool: AsyncConnectionPool[AsyncConn] | None = None

    async def __call__(self, conn: AsyncConn) -> None:
        if not connection_lost(conn):
            return
        if self.pool is not None:
            await self.pool.check()
        raise psycopg.OperationalError("the server closed this pooled connection")


async def open_pool(dsn: str, min_size: int, max_size: int,
                    kwargs: dict[str, Any]) -> AsyncConnectionPool[AsyncConn]:
    """A pool of connections to `dsn`, open, that replaces a connection the server closed (PoolCheck)."""
    check = PoolCheck()
    pool: AsyncConnectionPool[AsyncConn] = AsyncConnectionPool(
        dsn, min_size=min_size, max_size=max_size, kwargs=kwargs, open=False, check=check
    )
    check.pool = pool
    await pool.open(wait=True)
    return pool


def checked_staleness(seconds: float) -> float:
    """`max_staleness` in seconds, 0 to 1 day; else InvalidArgument (a ValueError). Bools and NaN refused."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= 86400:
        raise InvalidArgument(f"max_staleness must be from 0 to 86400 seconds, got {seconds!r}")
    return float(seconds)


class ReplicaReads:
    """The read pool of a store and what it has seen of each run (see the module's docstring)."""

    def __init__(self, pool: AsyncConnectionPool[AsyncConn], max_staleness: float) -> None:
        self.pool = pool
        self.max_staleness = max_staleness
        self._seen: dict[int, Any] = {}  # run id -> the newest updated_at read of it
        self._primary_next: set[int] = set()  # runs this store changed: read the primary next

    async def close(self) -> None:
        """Close the read pool."""
        await self.pool.close()

    def before_call(self, query: str, params: tuple[Any, ...]) -> None:
        """Called before every engine call of the store: a run it changes is read from the primary next."""
        if query in RUN_WRITES:
            self._primary_next.add(int(params[0]))

    def saw(self, row: tuple[Any, ...]) -> None:
        """Remember a run's row as read (from either server): no older one is returned from now on."""
        run_id, updated_at = row[0], row[UPDATED_AT]
        self._primary_next.discard(run_id)
        known = self._seen.pop(run_id, None)  # re-inserted: the dict keeps the most recent runs last
        self._seen[run_id] = updated_at if known is None or updated_at > known else known
        if len(self._seen) > SEEN_RUNS:
            del self._seen[next(iter(self._seen))]

    def fresh(self, row: tuple[Any, ...], lag: float | None) -> bool:
        """Whether a replica's row may be returned: the replica is within max_staleness and the row is not
        older than the newest seen of its run."""
        if lag is None or lag > self.max_staleness or row[0] in self._primary_next:
            return False
        seen = self._seen.get(row[0])
        return seen is None or row[UPDATED_AT] >= seen

    async def run_status(self, run_id: int) -> tuple[Any, ...] | None:
        """The run's pgqrs.run_status row from the replica when it is fresh (`fresh`), else None: read the
        primary. A replica that cannot be reached or does not know the run also answers None."""
        if run_id in self._primary_next:
            return None
        try:
            with mapped_errors():
                async with self.pool.connection() as conn:
                    row = await (await conn.execute(replica_sql.REPLICA_RUN_STATUS, (run_id,))).fetchone()
        except (UnknownRun, psycopg.OperationalError):
            return None
        assert row is not None
        return row[:-1] if self.fresh(row[:-1], row[-1]) else None

    async def finished_runs(self, run_ids: list[int]) -> tuple[list[tuple[Any, ...]], bool]:
        """The finished runs among `run_ids` as the replica has them, fresh ones only (`fresh`), and whether
        the replica could answer at all (within max_staleness): if not, the caller asks the primary."""
        try:
            with mapped_errors():
                async with self.pool.connection() as conn:
                    cur = await conn.execute(replica_sql.REPLICA_FINISHED_RUNS, (run_ids,))
                    rows = await cur.fetchall()
        except (UnknownRun, psycopg.OperationalError):  # a run it has not replayed yet, or the replica away
            return [], False
        lag = rows[0][-1]  # the query returns at least one row
        if lag is None or lag > self.max_staleness:
            return [], False
        return [row[:-1] for row in rows if row[0] is not None and self.fresh(row[:-1], lag)], True
