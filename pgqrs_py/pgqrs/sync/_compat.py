"""The sync counterpart of pgqrs/_acompat.py (hand-written; the generated modules import it): the same names
on threads. A task is a daemon thread, so a worker process that exits never waits for one.

A thread cannot be cancelled. What stands in for it: a run given up (lease lost, engine call hung, graceful
stop timed out) has its lease deadline cleared and its WorkflowContext abandoned, so its thread starts no
further step body, and the engine refuses its writes (fencing); a background thread watches an Event.
"""

from __future__ import annotations

import asyncio
import inspect
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Generator, Iterable
from contextlib import AbstractContextManager
from typing import Any

import psycopg

Task = threading.Thread
Event = threading.Event
sleep = time.sleep


class CancelledError(BaseException):
    """Stands for the cancellation of a task: a thread is never cancelled, so this is never raised."""


def spawn(fn: Callable[..., None], *args: Any, name: str, done: Callable[[Task], None] | None = None) -> Task:
    """Run `fn(*args)` in a daemon thread; `done(thread)` is called in that thread once `fn` has returned."""

    def main() -> None:
        try:
            fn(*args)
        finally:
            if done is not None:
                done(thread)

    thread = threading.Thread(target=main, name=name, daemon=True)
    thread.start()
    return thread


def current_flow() -> object | None:
    """What runs the calling code concurrently with others: its thread. Replay drift checks the step order
    only for the steps a handler's own flow asks for (pgqrs/_replay_order.py)."""
    return threading.get_ident()


def cancel(task: Task) -> bool:
    """A thread cannot be stopped: whether it still runs (the caller has seen to it that it starts no
    further step body)."""
    return task.is_alive()


def cancel_all(tasks: Iterable[Task]) -> None:
    """Nothing to do: threads end by themselves (see the module's docstring); wait_tasks waits for them."""


def wait_tasks(tasks: Iterable[Task], timeout: float) -> set[Task]:
    """Wait up to `timeout` seconds in all for the threads to end (never for the calling one); the ones still
    running."""
    deadline = time.monotonic() + timeout
    running = set()
    for thread in tasks:
        if thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            running.add(thread)
    return running


def wait_event(event: Event, timeout: float | None) -> bool:
    """Wait until the event is set (True) or `timeout` seconds have passed (False)."""
    return event.wait(timeout)


def notifications(conn: psycopg.Connection[Any], closing: Event) -> Generator[psycopg.Notify, None, None]:
    """The notifications of a LISTENing connection, until `closing` is set (seen within a second)."""
    while not closing.is_set():
        yield from conn.notifies(timeout=1.0)


def on_signals(callback: Callable[[], None]) -> Callable[[], None]:
    """Call `callback` on SIGTERM and SIGINT; returns what puts the previous handlers back. Only the main
    thread can install handlers: elsewhere the embedding program stops the worker with stop()."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous: dict[int, Any] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        old = signal.signal(sig, lambda _signum, _frame: callback())
        previous[sig] = old if old is not None else signal.SIG_DFL

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def call_body(fn: Callable[[], Any], guard: Callable[[], AbstractContextManager[None]]) -> Any:
    """Run a step body in the calling thread (the run's own: a sync worker's heartbeats have their own
    thread), inside `guard()` (it refuses a body whose lease is gone; see pgqrs/_acompat.py); an awaitable it
    returns (an `async def` body) is run to completion on a private event loop."""
    with guard():
        result = fn()
        if inspect.isawaitable(result):
            result = asyncio.run(_wait(result))
        return result


async def _wait(awaitable: Awaitable[Any]) -> Any:
    return await awaitable
