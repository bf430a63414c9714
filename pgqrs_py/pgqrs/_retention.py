"""Retention (sql/retention/purge.sql): `store.purge_runs` and `store.set_workflow_retention` (mixed into
Store), and what workers call on their own, `apply_retention` and `maintain_history`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from . import _sql
from .errors import InvalidArgument, seconds


def interval_text(name: str, value: float | timedelta | str) -> str:
    """A duration for an interval parameter: seconds, a timedelta, or PostgreSQL interval text ("7 days")."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | timedelta):
        raise InvalidArgument(f"{name} must be seconds, a timedelta or an interval text, got {value!r}")
    return f"{seconds(value)} seconds"


class RetentionCalls:
    """The retention calls of Store (it provides `call`)."""

    async def call(self, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """One engine call: Store.call, which replaces this."""
        raise NotImplementedError

    async def purge_runs(self, older_than: float | timedelta | str, statuses: Sequence[str] | None = None,
                         limit: int = 10000, *, dry_run: bool = False) -> int:
        """Remove up to `limit` (1-100000) runs finished more than `older_than` ago with one of `statuses`
        (SUCCESS, ERROR, CANCELLED; None: all three), oldest first, with their steps and archived messages:
        calls ``pgqrs.purge_runs``; returns how many (call it again until 0). Never a run that has not
        finished, a child whose parent has not, or a parent whose children are left. `dry_run`: count them
        all, remove nothing. Raises InvalidArgument (22023: a bad interval, status or limit)."""
        params = (interval_text("older_than", older_than), list(statuses) if statuses is not None else None,
                  limit, dry_run)
        return int((await self.call(_sql.PURGE_RUNS, params))[0][0])

    async def set_workflow_retention(self, workflow: str, retention: float | timedelta | str | None) -> None:
        """Keep the finished runs of `workflow` for `retention`, after which workers remove them; None keeps
        them for good: calls ``pgqrs.set_workflow_retention``. Raises UnknownWorkflow (QR001) and
        InvalidArgument (22023: not more than 0 and at most 100 years)."""
        keep = interval_text("retention", retention) if retention is not None else None
        await self.call(_sql.SET_WORKFLOW_RETENTION, (workflow, keep))

    async def apply_retention(self) -> int:
        """Apply the workflows' retention (workers do, every few seconds): calls ``pgqrs.apply_retention``,
        which purges each workflow at most once a minute across all callers; returns the runs removed."""
        return int((await self.call(_sql.APPLY_RETENTION, ()))[0][0])

    async def maintain_history(self, width: int | None = None) -> int:
        """Keep partitions of the history (runs, steps, archived messages) ready ahead of the run ids (workers
        do, with `apply_retention`): calls ``pgqrs.maintain_history``; returns the partitions made. `width`:
        run ids per new partition; None: about a day of runs, at least 1,000,000. Raises InvalidArgument
        (22023: a width not 1-10000000000)."""
        return int((await self.call(_sql.MAINTAIN_HISTORY, (width,)))[0][0])
