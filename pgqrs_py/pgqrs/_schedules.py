"""A worker's share of the schedules (docs/schedules.md): every `interval` seconds one call of
pgqrs.fire_schedules starts the due ticks of every schedule, of any workflow. The engine makes each tick start
once however many workers call it, so every worker calls it and no extra daemon is needed."""

from __future__ import annotations

import logging

from ._acompat import Event, wait_event
from .store import Store

log = logging.getLogger("pgqrs.worker")

# How often a worker fires due schedules by default: a tick starts at most this late. Ticks are whole minutes,
# and an idle worker stays within about one statement a second (tests/test_worker.py).
FIRE_INTERVAL = 10.0


async def fire_loop(store: Store, closing: Event, interval: float) -> None:
    """Fire due schedules at once, then every `interval` seconds until `closing`; a failed call is logged and
    the next one comes on time (another worker may have fired the ticks meanwhile)."""
    while True:
        try:
            for started in await store.fire_schedules():
                log.info("schedule %s: tick %s started run %s", started.schedule, started.tick,
                         started.run_id)
        except Exception as exc:
            log.warning("firing schedules failed: %s", exc)
        try:  # at most once a minute per workflow across all workers (pgqrs.apply_retention)
            removed = await store.apply_retention()
            if removed:
                log.info("retention: removed %d finished runs", removed)
        except Exception as exc:
            log.warning("applying retention failed: %s", exc)
        try:  # partitions of the history ahead of the run ids: DDL only when one is due (about once a day)
            made = await store.maintain_history()
            if made:
                log.info("history: made %d partitions ahead", made)
        except Exception as exc:
            log.warning("maintaining the history's partitions failed: %s", exc)
        if await wait_event(closing, interval):
            return
