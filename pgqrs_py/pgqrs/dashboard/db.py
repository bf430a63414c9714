"""The dashboard's connections: a small pool whose every connection takes the least-privileged pgqrs role the
mode needs (SET ROLE), read-only transactions in read-only mode, and the actions the role may take."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from .. import _sql
from .._json import ADAPTERS
from .._sql import dashboard as dash_sql
from ..errors import mapped_errors
from .safety import ACTION_ROLES, READ_ONLY_ROLES, DashboardConfig

Row = dict[str, Any]
# action -> (the engine function it calls, as has_function_privilege names it; its statement in pgqrs._sql)
ACTIONS: dict[str, tuple[str, str]] = {
    "retry": ("pgqrs.retry_run(bigint)", _sql.RETRY_RUN),
    "resume": ("pgqrs.resume_run(bigint)", _sql.RESUME_RUN),
    "cancel": ("pgqrs.cancel_run(bigint, text)", _sql.CANCEL_RUN),
    "fork": ("pgqrs.fork_run(bigint, text)", _sql.FORK_RUN),
    "update-step": ("pgqrs.update_step(bigint, text, text, jsonb)", _sql.UPDATE_STEP),
}


class NoRole(Exception):
    """The login may take none of the pgqrs roles the dashboard's mode needs."""


class Database:
    """The pool, the role its connections take and the actions that role may take."""

    def __init__(self, config: DashboardConfig) -> None:
        self.config = config
        self.role: str | None = None
        self.allowed: set[str] = set()
        options = "-c default_transaction_read_only=on" if config.read_only else ""
        self.pool = AsyncConnectionPool(
            config.dsn, min_size=1, max_size=4, open=False, configure=self._configure,
            kwargs={"autocommit": True, "row_factory": dict_row, "options": options, "context": ADAPTERS})

    async def open(self) -> None:
        """Choose the role, open the pool and find the actions the role may take. Raises NoRole."""
        async with await psycopg.AsyncConnection.connect(self.config.dsn, autocommit=True) as conn:
            self.role = await _choose_role(conn, ACTION_ROLES if self.config.actions_enabled
                                           else READ_ONLY_ROLES)
        await self.pool.open(wait=True, timeout=30)
        if self.config.actions_enabled:
            for action, (function, _) in ACTIONS.items():
                row = await self.one(dash_sql.CAN_EXECUTE, (function,))
                if row["allowed"]:
                    self.allowed.add(action)

    async def close(self) -> None:
        """Close the pool."""
        await self.pool.close()

    async def _configure(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(dash_sql.SET_ROLE.format(role=self.role).encode())

    async def rows(self, sql: str, params: Any = None) -> list[Row]:
        """Run one statement of `pgqrs._sql`; its rows. Engine SQLSTATEs come as pgqrs.errors classes."""
        async with self.pool.connection() as conn:
            with mapped_errors():
                cursor = await conn.execute(sql.encode(), params)
                return await cursor.fetchall()

    async def one(self, sql: str, params: Any = None) -> Row:
        """The first row of a statement that returns one."""
        return (await self.rows(sql, params))[0]


async def _choose_role(conn: psycopg.AsyncConnection[Any], roles: tuple[str, ...]) -> str:
    for role in roles:
        cursor = await conn.execute(dash_sql.HAS_ROLE.encode(), {"role": role})
        row = await cursor.fetchone()
        if row and row[0]:
            return role
    raise NoRole(f"the login may take none of the roles {', '.join(roles)}: grant it one "
                 "(docs/security.md); the dashboard never runs with more than these")
