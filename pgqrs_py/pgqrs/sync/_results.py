"""The sync result listener: the part of `pgqrs.sync`'s ResultListener whose concurrency model differs
(hand-written; scripts/gen_sync.py generates the rest from pgqrs/results.py and makes this class its base).
The listener is a daemon thread; waiters are threads blocked on their own `threading.Event`."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from ..results import WAIT_SLICE

if TYPE_CHECKING:
    from .results import Waiter


class ResultListenerThread:
    """`_start`, `wait` and `close` of the sync ResultListener."""

    if TYPE_CHECKING:  # provided by the generated ResultListener
        _task: threading.Thread | None

        def _listen(self) -> None: ...
        def _close_waiters(self) -> None: ...

    def _start(self) -> threading.Thread:
        thread = threading.Thread(target=self._listen, name="pgqrs-results", daemon=True)
        thread.start()
        return thread

    def wait(self, waiter: Waiter, timeout: float | None) -> bool:
        """Wait until the waiter is finished; False after `timeout` seconds."""
        return waiter.done.wait(timeout)

    def close(self) -> None:
        """Stop the listener: it sees the flag within WAIT_SLICE and closes its connection (a listener asleep
        between reconnects holds none and ends when it wakes); waiters still waiting get an error."""
        self._close_waiters()
        thread, self._task = self._task, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2 * WAIT_SLICE)
