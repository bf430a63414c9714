"""Replay drift (issue 20): a run recorded by one version of a handler and replayed by another.

Each scenario runs version 1 in a real worker until the run waits for an event (steps a and b recorded,
then the wait), emits the event, and lets version 2 replay it. A version that asks for the recorded steps in
another order (a step renamed, removed, reordered, or added before recorded ones) gets ReplayDrift: the run
ends ERROR with kind replay_drift, no step body of version 2 runs and nothing is recorded under its step ids,
and retry_run with version 1 finishes the run from its journal. Compatible versions (steps appended, loops,
steps run side by side in tasks or threads) are not flagged. The rule is in pgqrs/_replay_order.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import pgqrs
import pgqrs.sync as pgqrs_sync
from pgqrs._replay_order import ReplayOrder, side_by_side
from test_worker_in_process import InProcess

WAIT = "WAIT"  # in a list of step names: the wait for the event "go:<run id>"


def handler_of(names: list[str], bodies: list[str]) -> Callable[..., Any]:
    """An async handler that asks for the steps `names` in that order (WAIT: the event wait); each body
    appends its name to `bodies` and returns "<name>!"."""

    async def handler(ctx: pgqrs.WorkflowContext, params: Any) -> list[Any]:
        out = []
        for name in names:
            if name == WAIT:
                await ctx.wait_for_event(f"go:{ctx.run_id}")
            else:
                out.append(await ctx.step(name, lambda name=name: bodies.append(name) or f"{name}!"))
        return out

    return handler


async def serve_until(env: InProcess, queue: str, handler: Any, run_id: int, statuses: set[str]) -> Any:
    """Serve `queue` with `handler` in a worker of this process until run `run_id` has one of `statuses`."""
    worker = await pgqrs.consumer(f"{queue}-w", None, queue).handler(handler).create(env.store)
    task = asyncio.create_task(worker.poll_forever())
    try:
        for _ in range(400):
            info = await pgqrs.run().status(run_id).store(env.store).get()
            if info.status in statuses:
                return info
            await asyncio.sleep(0.05)
        raise AssertionError(f"run {run_id} is {info.status}, not one of {statuses}")
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)


async def recorded(env: InProcess, run_id: int) -> list[str]:
    """The step ids of the run in recorded order (pgqrs.run_steps)."""
    return [s.step_id for s in await env.store.steps(run_id)]


def replay(db: str, queue: str, v1: Any, v2: Any, fixed: Any | None = None) -> dict[str, Any]:
    """v1 until the run waits, the event, v2 until the run ends; then, when v2 failed and `fixed` is given,
    retry_run and `fixed` until it ends. What happened, for the test to check."""
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        async with InProcess(db) as env:
            await env.store.create_workflow(queue, {"max_attempts": 1})
            run_id = (await pgqrs.workflow(queue).trigger({}).execute(env.store)).id
            await serve_until(env, queue, v1, run_id, {"WAITING"})
            seen["v1_steps"] = await recorded(env, run_id)
            await env.store.emit_event(f"go:{run_id}", {})
            seen["v2"] = await serve_until(env, queue, v2, run_id, {"SUCCESS", "ERROR"})
            seen["v2_steps"] = await recorded(env, run_id)
            if fixed is not None and seen["v2"].status == "ERROR":
                await env.store.retry_run(run_id)
                seen["fixed"] = await serve_until(env, queue, fixed, run_id, {"SUCCESS", "ERROR"})

    asyncio.run(scenario())
    return seen


V1 = ["a", "b", WAIT, "c"]
DRIFTS = {  # version 2: (its steps, the expected and the requested step of the drift)
    "renamed": (["a", "b2", WAIT, "c"], "b", "b2"),
    "removed": (["a", WAIT, "c"], "b", "wait_for_event"),
    "reordered": (["b", "a", WAIT, "c"], "a", "b"),
    "inserted before": (["new", "a", "b", WAIT, "c"], "a", "new"),
    "removed at the end": (["a", "b"], "wait_for_event", None),  # seen when the handler returns
}


@pytest.mark.parametrize("change", list(DRIFTS))
def test_a_changed_step_order_is_replay_drift_and_retry_run_after_the_fix_finishes(db: str,
                                                                                     change: str) -> None:
    """Before, a replay of changed code ran new bodies against the old journal and recorded their results
    (or ended SUCCESS with a journal it never asked for): now it stops before any body runs."""
    names, expected, requested = DRIFTS[change]
    bodies: list[str] = []
    v1 = handler_of(V1, bodies)
    seen = replay(db, "drift_" + change.replace(" ", "_"), v1, handler_of(names, bodies), fixed=v1)
    assert seen["v1_steps"] == ["a", "b", "wait_for_event"] and bodies[:2] == ["a", "b"]
    v2 = seen["v2"]
    assert v2.status == "ERROR", v2
    assert {k: v2.error[k] for k in ("kind", "type", "expected", "requested")} == {
        "kind": "replay_drift", "type": "ReplayDrift", "expected": expected, "requested": requested}
    assert repr(expected) in v2.error["message"]
    assert seen["v2_steps"] == ["a", "b", "wait_for_event"], "nothing is recorded under a step of version 2"
    assert bodies[:3] == ["a", "b", "c"] and len(bodies) == 3, "no body of version 2 ran; c ran once, fixed"
    assert seen["fixed"].status == "SUCCESS", seen["fixed"].error
    assert seen["fixed"].output() == ["a!", "b!", "c!"]


def test_a_fix_of_a_failed_step_under_another_id_is_no_drift(db: str) -> None:
    """Only steps recorded SUCCESS hold a replay to their order: a step that failed returned nothing to the
    code after it, so a fix deployed while the run failed there may replace it (retry_run, then SUCCESS)."""

    def broken() -> None:
        raise ValueError("bug")

    def version(second: str, body: Callable[[], Any]) -> Any:
        async def handler(ctx: pgqrs.WorkflowContext, params: Any) -> list[Any]:
            return [await ctx.step("a", lambda: "a!"), await ctx.step(second, body)]

        return handler

    async def scenario() -> None:
        async with InProcess(db) as env:
            await env.store.create_workflow("drift_fix", {"max_attempts": 1})
            run_id = (await pgqrs.workflow("drift_fix").trigger({}).execute(env.store)).id
            failed = await serve_until(env, "drift_fix", version("b", broken), run_id, {"ERROR"})
            assert failed.error["type"] == "ValueError"
            await env.store.retry_run(run_id)
            fixed = await serve_until(env, "drift_fix", version("b_fixed", lambda: "b!"), run_id,
                                      {"SUCCESS", "ERROR"})
            assert fixed.status == "SUCCESS", fixed.error
            assert fixed.output() == ["a!", "b!"]

    asyncio.run(scenario())


def test_a_handler_that_catches_replay_drift_still_ends_with_it(db: str) -> None:
    """ReplayDrift is an exception a handler may catch; the run still ends ERROR replay_drift and the steps
    asked for after it raise it again, so nothing gets recorded under the drifted code."""
    bodies: list[str] = []
    caught: list[Any] = []

    async def v2(ctx: pgqrs.WorkflowContext, params: Any) -> str:
        try:
            await ctx.step("b2", lambda: bodies.append("b2"))
        except pgqrs.ReplayDrift as exc:
            caught.append((exc.expected, exc.requested))
        try:
            await ctx.step("other", lambda: bodies.append("other"))
        except pgqrs.ReplayDrift as exc:
            caught.append((exc.expected, exc.requested))
        return "swallowed"

    seen = replay(db, "drift_caught", handler_of(V1, bodies), v2)
    assert caught == [("a", "b2"), ("a", "b2")]
    assert seen["v2"].status == "ERROR" and seen["v2"].error["kind"] == "replay_drift"
    assert seen["v2_steps"] == ["a", "b", "wait_for_event"] and bodies == ["a", "b"]


def test_steps_appended_after_the_recorded_ones_are_no_drift_and_cost_no_round_trip(db: str) -> None:
    """New steps after the last recorded one are a compatible change; a replay in order never reads the
    recorded times (pgqrs.run_steps): the check is a lookup per step."""
    bodies: list[str] = []
    spans_read: list[int] = []
    real = pgqrs.Run.step_spans

    async def counted(self: pgqrs.Run) -> Any:
        spans_read.append(self.run_id)
        return await real(self)

    pgqrs.Run.step_spans = counted  # type: ignore[method-assign]
    try:
        seen = replay(db, "drift_append", handler_of(V1, bodies), handler_of([*V1, "d", "e"], bodies))
    finally:
        pgqrs.Run.step_spans = real  # type: ignore[method-assign]
    assert seen["v2"].status == "SUCCESS", seen["v2"].error
    assert seen["v2"].output() == ["a!", "b!", "c!", "d!", "e!"]
    assert spans_read == []


def test_loops_whose_step_ids_repeat_in_order_are_no_drift(db: str) -> None:
    """A loop's @step ids (item, item#2, ...) and its numbered ids come back in the same order on replay;
    more iterations after the recorded steps are appended steps."""
    bodies: list[str] = []

    @pgqrs.step
    def item(i: int) -> int:
        bodies.append(f"item{i}")
        return i * i

    def looping(before: int, after: int) -> Any:
        async def handler(ctx: pgqrs.WorkflowContext, params: Any) -> list[Any]:
            out = [await item(i) for i in range(before)]
            out += [await ctx.step(f"n-{i}", lambda i=i: i) for i in range(before)]
            await ctx.wait_for_event(f"go:{ctx.run_id}")
            out += [await item(i) for i in range(after)]
            return out

        return handler

    seen = replay(db, "drift_loop", looping(3, 0), looping(3, 2))
    assert seen["v1_steps"] == ["item", "item#2", "item#3", "n-0", "n-1", "n-2", "wait_for_event"]
    assert seen["v2"].status == "SUCCESS", seen["v2"].error
    assert seen["v2"].output() == [0, 1, 4, 0, 1, 2, 0, 1]
    assert bodies == ["item0", "item1", "item2", "item0", "item1"]


def gathered(bodies: list[str]) -> Any:
    """asyncio.gather of a slow and a fast step: recorded fast first, asked for slow first on replay."""

    async def handler(ctx: pgqrs.WorkflowContext, params: Any) -> list[Any]:
        async def slow() -> str:
            await asyncio.sleep(0.3)
            bodies.append("slow")
            return "slow!"

        out = list(await asyncio.gather(ctx.step("slow", slow), ctx.step("fast", lambda: "fast!")))
        await ctx.wait_for_event(f"go:{ctx.run_id}")
        return [*out, await ctx.step("c", lambda: "c!")]

    return handler


def test_steps_gathered_side_by_side_are_no_drift(db: str) -> None:
    """Steps of asyncio.gather end in any order: only the handler's own task is held to the recorded order."""
    bodies: list[str] = []
    seen = replay(db, "drift_gather", gathered(bodies), gathered(bodies))
    assert seen["v1_steps"] == ["fast", "slow", "wait_for_event"]  # the replay asks for slow first
    assert seen["v2"].status == "SUCCESS", seen["v2"].error
    assert seen["v2"].output() == ["slow!", "fast!", "c!"] and bodies == ["slow"]


def test_a_gathered_step_asked_for_before_a_recorded_one_is_no_drift(db: str) -> None:
    """The first delivery records "fast" alone (nothing overlaps it), then "slow" fails; the replay asks for
    "slow" before "fast". Both are asked for from gather's tasks, not the handler's own: no drift. (Held to
    the order, this replay would be flagged: the recorded spans do not overlap.)"""
    tries: list[int] = []

    def flaky() -> str:
        tries.append(1)
        if len(tries) == 1:
            raise pgqrs.TransientError("once", retry_after=0)
        return "slow!"

    async def handler(ctx: pgqrs.WorkflowContext, params: Any) -> list[Any]:
        async def side(step_id: str, fn: Callable[[], Any], late_on_attempt: int) -> Any:
            if ctx.attempt == late_on_attempt:  # timing differs between deliveries (say, a slow network)
                await asyncio.sleep(0.2)
            return await ctx.step(step_id, fn)

        # the first delivery records fast first; the replay asks for slow first, fast 0.2 s later
        return list(await asyncio.gather(side("slow", flaky, 1), side("fast", lambda: "fast!", 2)))

    async def scenario() -> None:
        async with InProcess(db) as env:
            await env.store.create_workflow("drift_gather_new")
            run_id = (await pgqrs.workflow("drift_gather_new").trigger({}).execute(env.store)).id
            info = await serve_until(env, "drift_gather_new", handler, run_id, {"SUCCESS", "ERROR"})
            assert info.status == "SUCCESS", info.error
            assert info.output() == ["slow!", "fast!"] and info.attempt == 2
            assert await recorded(env, run_id) == ["fast", "slow"]

    asyncio.run(scenario())


@pytest.mark.parametrize("overlap", [True, False])
def test_a_step_in_a_task_beside_the_handlers_own_steps_is_no_drift(db: str, overlap: bool) -> None:
    """A task started beside the handler's own step records first (it is quicker), but the replay asks for
    the handler's step first. That is no drift whether the two ran side by side (overlapping recorded times)
    or the task's step happened to finish before the handler asked for its own (a busy machine schedules it
    so): the passed-by step is then asked for by the other task. (Before, the second case was flagged.)"""

    async def handler(ctx: pgqrs.WorkflowContext, params: Any) -> list[Any]:
        async def beside_step() -> Any:
            if ctx.attempt > 1:  # timing differs between deliveries
                await asyncio.sleep(0.2)
            return await ctx.step("beside", lambda: "beside!")

        beside = asyncio.create_task(beside_step())
        if ctx.attempt == 1 and not overlap:
            await beside  # the task's step ends before the handler asks for its own
        own = await ctx.step("own", lambda: time.sleep(0.3) or "own!")
        await ctx.wait_for_event(f"go:{ctx.run_id}")
        return [own, await beside, await ctx.step("c", lambda: "c!")]

    seen = replay(db, f"drift_beside_{overlap}", handler, handler)
    assert seen["v1_steps"] == ["beside", "own", "wait_for_event"]
    assert seen["v2"].status == "SUCCESS", seen["v2"].error
    assert seen["v2"].output() == ["own!", "beside!", "c!"]


# ---- pgqrs.sync: steps in threads ------------------------------------------------------------------------


def sync_replay(db: str, queue: str, v1: Any, v2: Any) -> dict[str, Any]:
    """replay() with pgqrs.sync workers in threads."""
    seen: dict[str, Any] = {}

    def serve(store: Any, handler: Any, run_id: int, statuses: set[str]) -> Any:
        worker = pgqrs_sync.consumer(f"{queue}-w", None, queue).handler(handler).create(store)
        thread = threading.Thread(target=worker.poll_forever, daemon=True)
        thread.start()
        try:
            for _ in range(400):
                info = pgqrs_sync.run().status(run_id).store(store).get()
                if info.status in statuses:
                    return info
                time.sleep(0.05)
            raise AssertionError(f"run {run_id} is {info.status}")
        finally:
            worker.stop()
            thread.join(timeout=30)

    with pgqrs_sync.connect(db) as store:
        store.create_workflow(queue, {"max_attempts": 1})
        run_id = pgqrs_sync.workflow(queue).trigger({}).execute(store).id
        serve(store, v1, run_id, {"WAITING"})
        seen["v1_steps"] = [s.step_id for s in store.steps(run_id)]
        store.emit_event(f"go:{run_id}", {})
        seen["v2"] = serve(store, v2, run_id, {"SUCCESS", "ERROR"})
        seen["v2_steps"] = [s.step_id for s in store.steps(run_id)]
    return seen


def sync_threads(names: tuple[str, str]) -> Any:
    """A pgqrs.sync handler: a slow and a fast step in a thread pool, then the wait and step c."""

    def handler(ctx: Any, params: Any) -> list[Any]:
        slow, fast = names
        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(ctx.step, slow, lambda: time.sleep(0.3) or f"{slow}!"),
                       pool.submit(ctx.step, fast, lambda: f"{fast}!")]
            out = [f.result() for f in futures]
        ctx.wait_for_event(f"go:{ctx.run_id}")
        return [*out, ctx.step("c", lambda: "c!")]

    return handler


def test_sync_steps_in_threads_side_by_side_are_no_drift(db: str) -> None:
    seen = sync_replay(db, "drift_threads", sync_threads(("slow", "fast")), sync_threads(("slow", "fast")))
    assert seen["v1_steps"] == ["fast", "slow", "wait_for_event"]
    assert seen["v2"].status == "SUCCESS", seen["v2"].error
    assert seen["v2"].output() == ["slow!", "fast!", "c!"]


def test_sync_a_renamed_step_is_replay_drift(db: str) -> None:
    """pgqrs.sync: the handler's own thread renames a step recorded before the wait."""

    def v2(ctx: Any, params: Any) -> list[Any]:
        ctx.step("a", lambda: "a!")
        ctx.step("b2", lambda: "b2!")
        return []

    def v1(ctx: Any, params: Any) -> list[Any]:
        ctx.step("a", lambda: "a!")
        ctx.step("b", lambda: "b!")
        ctx.wait_for_event(f"go:{ctx.run_id}")
        return []

    seen = sync_replay(db, "drift_sync", v1, v2)
    assert seen["v2"].status == "ERROR"
    assert (seen["v2"].error["kind"], seen["v2"].error["expected"], seen["v2"].error["requested"]) == (
        "replay_drift", "b", "b2")
    assert seen["v2_steps"] == ["a", "b", "wait_for_event"]


# ---- the rule itself -------------------------------------------------------------------------------------


def test_the_order_check_passes_by_steps_of_other_flows_and_steps_run_side_by_side() -> None:
    journal: dict[str, Any] = {sid: {"status": "SUCCESS", "order": n}
                               for n, sid in enumerate(["a", "b", "c", "d"], start=10)}
    journal["$handler"] = {"status": "ERROR", "order": 12}  # a handler's own failure (TransientError)
    journal["failed"] = {"status": "ERROR", "order": 11}  # no value: the code may go another way from it
    order = ReplayOrder(journal)
    assert order.ask("a", True) is None
    assert order.ask("c", True) is None  # b passed by: another flow may ask for it later
    assert order.ask("new", True) == ("b", "c")  # a new step while b is still passed by
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    at = [t0 + timedelta(seconds=s) for s in range(10)]
    order.exempt([("a", at[0], at[1]), ("b", at[2], at[4]), ("c", at[3], at[5]), ("d", at[6], at[7])])
    assert order.ask("b", True) is None  # b and c overlapped: either order
    assert order.ask("new", True) == ("d", "new")  # a new step before a recorded one
    assert order.ask("d", False) is None and order.ask("new2", True) is None
    assert order.unasked() == []  # "failed" is not held to
    assert ReplayOrder({"a": {"status": "SUCCESS"}}).ask("z", True) is None  # an engine without orders


def test_a_step_passed_by_is_drift_only_when_the_handlers_own_flow_asks_for_it_later() -> None:
    """The handler asks for "own" while "beside" (recorded first, by a task beside it) is not asked for yet:
    no drift, whatever the timing, once the other task asks for it; the handler asking for it itself after
    passing it by is a reordered step."""
    journal = {sid: {"status": "SUCCESS", "order": n} for n, sid in enumerate(["beside", "own", "wait", "c"])}
    side = ReplayOrder(journal)
    assert side.ask("own", True) is None and side.ask("wait", True) is None
    assert side.ask("beside", False) is None and side.ask("c", True) is None and side.unasked() == []
    reordered = ReplayOrder(journal)
    assert reordered.ask("own", True) is None
    assert reordered.ask("beside", True) == ("beside", "own")
    removed = ReplayOrder(journal)
    assert removed.ask("own", True) is None and removed.ask("wait", True) is None
    assert removed.ask("new", True) == ("beside", "own"), "the first step passed by, and what passed it"


def test_side_by_side_is_overlap_of_recorded_spans_or_no_start() -> None:
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    at = [t0 + timedelta(seconds=s) for s in range(10)]
    spans = [("seq1", at[0], at[1]), ("seq2", at[1], at[2]),  # one after the other: touching is no overlap
             ("long", at[3], at[8]), ("inside", at[4], at[5]), ("later", at[6], at[6]),  # a point inside long
             ("outside", None, at[9]), ("last", at[8], None)]
    assert side_by_side(spans) == {"long", "inside", "later", "outside"}
