"""pgqrs 0.15's way in: `pgqrs.Config(dsn, schema=None, max_connections=None)`,
`await pgqrs.connect_with(config)`, `pgqrs.admin(store)` with install(), verify(), create_workflow(name,
input) (a run driven by hand) and release_worker_messages(worker_id). docs/migrating-from-pgqrs.md says what
differs."""

from __future__ import annotations

import asyncio
from typing import Any

from .. import _sql
from ..builders import run as run_builder
from ..install import check_version, install
from ..run import Run
from ..store import Store, connect
from .errors import ConfigError

# The engine lives in this schema, always: its functions name it, and its roles are granted on it.
SCHEMA = "pgqrs"
DEFAULT_MAX_CONNECTIONS = 10


def checked_schema(schema: str | None) -> str:
    """The schema a Config may name: None or "pgqrs" (the engine's only home). Raises ConfigError."""
    if schema is None or schema == SCHEMA:
        return SCHEMA
    raise ConfigError(f"pgqrs lives in schema {SCHEMA!r}; it cannot be installed into schema {schema!r}",
                      hint="Drop schema= (or pass schema='pgqrs'); give each environment its own database.")


class Config:
    """A connection's settings, as pgqrs 0.15 spelled them. Honoured: `dsn`, `schema` (None or "pgqrs" only:
    any other raises ConfigError, never ignored) and `max_connections` (the pool's size). The queue tunables
    of 0.15 (lock time, batch size, read count, heartbeat interval, payload limits) are kept as attributes
    but change nothing: the engine's own settings apply (docs/migrating-from-pgqrs.md)."""

    def __init__(self, dsn: str, schema: str | None = None, max_connections: int | None = None) -> None:
        self.dsn = dsn
        self._schema = checked_schema(schema)
        self.max_connections = max_connections or DEFAULT_MAX_CONNECTIONS
        self.connection_timeout_seconds = 30
        self.default_lock_time_seconds = 30
        self.default_max_batch_size = 100
        self.max_read_ct = 5
        self.heartbeat_interval_seconds = 10

    @staticmethod
    def from_dsn(dsn: str) -> Config:
        """A Config of `dsn` with the defaults."""
        return Config(dsn)

    @property
    def schema(self) -> str:
        """The engine's schema: "pgqrs"."""
        return self._schema

    @schema.setter
    def schema(self, value: str) -> None:
        """Name the engine's schema: "pgqrs" only (ConfigError otherwise)."""
        self._schema = checked_schema(value)


async def connect_with(config: Config) -> Store:
    """A Store for `config` (pgqrs.connect with its DSN and a pool of max_connections). Raises psycopg's
    error for a database it cannot reach."""
    return await connect(config.dsn, max_size=config.max_connections)


class Admin:
    """`pgqrs.admin(store)`: installing, checking, and the runs and workers an operator steps in for."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def install(self) -> None:
        """Install or upgrade the schema (pgqrs.install, in a thread: it is synchronous); idempotent."""
        await asyncio.to_thread(install, self.store.dsn)

    async def verify(self) -> None:
        """Check that the database holds the schema version this package needs: calls
        ``pgqrs.schema_version``. Raises SchemaMismatch otherwise."""
        check_version(int((await self.store.call(_sql.SCHEMA_VERSION, ()))[0][0]))

    async def create_workflow(self, name: str, arg: Any) -> Run:
        """Create workflow `name` (idempotent) and start a run of it with input `arg` (any JSON value): calls
        ``pgqrs.create_workflow`` and ``pgqrs.trigger`` (Store.create_workflow, Store.trigger, with their
        errors). Returns the run, not leased yet: `await run.start()` or a decorated workflow leases it."""
        await self.store.create_workflow(name)
        handle = await self.store.trigger(name, arg)
        return await run_builder().message(handle).store(self.store).execute()

    async def release_worker_messages(self, worker_id: int) -> int:
        """End now every lease the worker holds (a worker known to be gone), so its runs are delivered again
        at once: calls ``pgqrs.release_worker_leases``; returns how many. Raises UnknownWorker (QR008)."""
        return int((await self.store.call(_sql.RELEASE_WORKER_LEASES, (worker_id,)))[0][0])


def admin(store: Store) -> Admin:
    """`pgqrs.admin(store)`: an Admin of the store."""
    return Admin(store)
