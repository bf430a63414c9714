"""The primitives where the two flavours differ: how they run things concurrently, wait, cancel and sleep.

The async modules that have a sync twin take these from here; scripts/gen_sync.py makes their twins import
the same names from pgqrs/sync/_compat.py, the hand-written counterpart on threads. Everything that differs
between the flavours lives in these two small modules, so that the worker loop, the result listener and the
step runner are written once. Where a thread cannot do what a task does (be cancelled), the sync side says
what stands in for it.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import signal
import threading
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterable
from contextlib import AbstractContextManager
from typing import Any

import psycopg

Task = asyncio.Task[None]
Event = asyncio.Event
CancelledError = asyncio.CancelledError
sleep = asyncio.sleep


def spawn(fn: Callable[..., Coroutine[Any, Any, None]], *args: Any, name: str,
          done: Callable[[Task], None] | None = None) -> Task:
    """Run `fn(*args)` concurrently (a task); `done(task)` is called once it has ended."""
    task = asyncio.create_task(fn(*args), name=name)
    if done is not None:
        task.add_done_callback(done)
    return task


def current_flow() -> object | None:
    """What runs the calling code concurrently with others: its task (None outside one). Replay drift checks
    the step order only for the steps a handler's own flow asks for (pgqrs/_replay_order.py)."""
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running event loop
        return None


def cancel(task: Task) -> bool:
    """Stop the task at its next await; False when it had already ended."""
    return task.cancel()


async def cancel_all(tasks: Iterable[Task]) -> None:
    """Cancel the tasks and wait until they have ended."""
    pending = list(tasks)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


async def wait_tasks(tasks: Iterable[Task], timeout: float) -> set[Task]:
    """Wait up to `timeout` seconds for the tasks to end; the ones still running."""
    running = set(tasks)
    if not running:
        return running
    _done, pending = await asyncio.wait(running, timeout=timeout)
    return pending


async def wait_event(event: Event, timeout: float | None) -> bool:
    """Wait until the event is set (True) or `timeout` seconds have passed (False)."""
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        return False
    return True


def notifications(conn: psycopg.AsyncConnection[Any], closing: Event) -> AsyncGenerator[psycopg.Notify, None]:
    """The notifications of a LISTENing connection, until the task is cancelled."""
    return conn.notifies()


# The callbacks of the consumers polling on each event loop: one handler per signal calls them all, so that
# one process serving several queues or databases (a consumer each, gathered on one loop) stops all of them.
_SIGNAL_CALLBACKS: dict[asyncio.AbstractEventLoop, list[Callable[[], None]]] = {}


def on_signals(callback: Callable[[], None]) -> Callable[[], None]:
    """Call `callback` on SIGTERM and SIGINT, with those of the other consumers on this loop; returns what
    removes it (and the handlers, with the loop's last one). Outside the main thread there is nothing to
    install: the embedding program stops the worker with stop()."""
    loop = asyncio.get_running_loop()
    callbacks = _SIGNAL_CALLBACKS.setdefault(loop, [])
    callbacks.append(callback)
    if len(callbacks) == 1:
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, _call_all, callbacks)
            except (NotImplementedError, RuntimeError, ValueError):
                continue

    def restore() -> None:
        callbacks.remove(callback)
        if not callbacks:
            _SIGNAL_CALLBACKS.pop(loop, None)
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)  # False where none was installed

    return restore


def _call_all(callbacks: list[Callable[[], None]]) -> None:
    for callback in list(callbacks):
        callback()


async def call_body(fn: Callable[[], Any], guard: Callable[[], AbstractContextManager[None]]) -> Any:
    """Run a step body: coroutine functions on the loop, anything else in a thread (heartbeats go on);
    a returned awaitable is awaited.

    Each plain body gets a daemon thread of its own, entered through `guard()` (WorkflowContext._body):
    - not a pool: a body queued behind busy threads could start long after the lease was checked, when a
      freeze (SIGSTOP, a paused VM) has let it expire and another worker has run the step; the guard checks
      the lease again at the moment the body really starts;
    - a daemon: a worker process that exits after a graceful shutdown gave up on a body does not wait for it
      (interpreter exit joins a pool's threads), so the run's next worker never overlaps it.
    """
    if inspect.iscoroutinefunction(fn):
        return await fn()
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()  # as asyncio.to_thread does

    def settle(result: Any, error: BaseException | None) -> None:  # on the loop
        if done.cancelled():  # the run's task was cancelled (lease lost, shutdown): nobody waits
            return
        if error is None:
            done.set_result(result)
        else:
            done.set_exception(error)

    def in_thread() -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            with guard():
                result = context.run(fn)
        except StopIteration as exc:  # a future refuses it (as a task does, it becomes a RuntimeError)
            error = RuntimeError(f"step body raised StopIteration: {exc!r}")
        except BaseException as exc:
            error = exc
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:  # the loop is closed: the worker is gone
            pass

    threading.Thread(target=in_thread, name="pgqrs-step-body", daemon=True).start()
    result = await done
    if inspect.isawaitable(result):
        result = await result
    return result
