"""Child workflows (issue 15): start_child, wait_child, gather, with real worker processes
(tests/worker_proc.py, its "children" plan) where a crash or the wake-up is the point, in-process for the
handler's view, and the bad input.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

import pgqrs
import pgqrs.sync as pgqrs_sync
from test_cli import ok_json
from test_cli import pgqrs as cli
from test_wait_replay import by_delivery, log_engine_calls
from test_worker import Workers, executions, run_row, status, trigger, wait_for, wait_status
from test_worker import workers as workers  # the fixture: real worker processes
from test_worker_in_process import InProcess


def children_of(conn: psycopg.Connection[Any], run_id: int) -> list[tuple[Any, ...]]:
    return conn.execute(
        "select run_id, status, input ->> 'i' from pgqrs.runs where parent_run_id = %s order by run_id",
        (run_id,),
    ).fetchall()


def test_a_parent_gathers_its_children_and_waits_without_a_lease(
    workers: Workers, conn: psycopg.Connection[Any]
) -> None:
    parent = trigger(
        conn, {"plan": [["step", "a"], ["children", 4, {"steps": ["c"], "sleep": {"c": 0.5}}], ["step", "b"]]}
    )
    workers.start("w1", "--visibility", "5", "--concurrency", "2")
    wait_status(conn, parent, "WAITING")
    kind, pending = conn.execute(
        "select kind, pending from pgqrs.waiting_runs where run_id = %s", (parent,)
    ).fetchone()  # type: ignore[misc]
    assert kind == "children" and 1 <= pending <= 4
    assert conn.execute(
        "select lease_token from pgqrs.messages where message_id = %s", (parent,)
    ).fetchone() == (None,), "a parent waiting for its children holds no lease"
    wait_status(conn, parent, "SUCCESS")
    kids = children_of(conn, parent)
    assert [(s, i) for _r, s, i in kids] == [("SUCCESS", str(i)) for i in range(4)], "4 children, each once"
    output = run_row(conn, parent)[2]["steps"]
    assert [o["steps"]["c"]["step"] for o in output["children"]] == ["c"] * 4
    assert [o["pid"] for o in output["children"]] == [run_row(conn, r)[2]["pid"] for r, _s, _i in kids]
    assert [s for s, _p, _d in executions(conn, parent)] == ["a", "b"], "the parent's steps ran once each"
    kinds = conn.execute(
        "select kind, count(*) from pgqrs.steps where run_id = %s group by kind order by kind", (parent,)
    ).fetchall()
    assert kinds == [("child", 4), ("children", 1), (None, 2)]

    dsn = conn.info.dsn
    shown = ok_json("run", str(parent), dsn=dsn)
    assert [(c["run_id"], c["step_id"]) for c in shown["children"]] == [
        (r, "start_child" if i == "0" else f"start_child#{int(i) + 1}") for r, _s, i in kids
    ]
    assert shown["run"]["parent_run_id"] is None
    child = ok_json("run", str(kids[0][0]), dsn=dsn)
    assert child["run"]["parent_run_id"] == parent and child["children"] == []
    text = cli("run", str(parent), dsn=dsn)
    assert text.returncode == 0 and "child run" in text.stdout and "start_child#4" in text.stdout


def test_a_failed_child_raises_child_failed_in_the_parent(
    workers: Workers, conn: psycopg.Connection[Any]
) -> None:
    parent = trigger(conn, {"plan": [["children", 2, {"steps": ["c"], "raise": {"c": "bad file"}}]]})
    conn.execute("select pgqrs.create_workflow('probe', '{\"max_attempts\": 1}')")
    workers.start("w1", "--visibility", "5", "--concurrency", "3")
    wait_status(conn, parent, "SUCCESS")
    kids = children_of(conn, parent)
    assert [s for _r, s, _i in kids] == ["ERROR", "ERROR"]
    assert run_row(conn, parent)[2]["steps"]["children"] == [
        {"failed": "ERROR", "run_id": r} for r, _s, _i in kids
    ]


def test_sigkill_during_a_fan_in_starts_no_child_twice(
    workers: Workers, conn: psycopg.Connection[Any]
) -> None:
    parent = trigger(conn, {"plan": [["step", "a"], ["children", 6, {"steps": ["c"], "sleep": {"c": 1}}]]})
    first, _ = workers.start("w1", "--visibility", "3", "--concurrency", "2")
    wait_status(conn, parent, "WAITING")
    wait_for("a child running", lambda: any(s == "RUNNING" for _r, s, _i in children_of(conn, parent)))
    first.send_signal(signal.SIGKILL)
    assert first.wait(10) == -signal.SIGKILL
    second, _ = workers.start("w2", "--visibility", "3", "--concurrency", "3")
    wait_status(conn, parent, "SUCCESS", timeout=60)
    kids = children_of(conn, parent)
    assert [i for _r, _s, i in kids] == [str(i) for i in range(6)], "six children, none started twice"
    assert {s for _r, s, _i in kids} == {"SUCCESS"}
    assert len(run_row(conn, parent)[2]["steps"]["children"]) == 6
    assert [s for s, _p, _d in executions(conn, parent)] == ["a"]
    assert second.poll() is None


def test_cancelling_a_parent_cancels_its_unfinished_children(
    workers: Workers, conn: psycopg.Connection[Any]
) -> None:
    parent = trigger(conn, {"plan": [["children", 3, {"plan": [["event", "never", None]]}]]})
    workers.start("w1", "--visibility", "5", "--concurrency", "4")
    wait_for("3 children waiting", lambda: [s for _r, s, _i in children_of(conn, parent)] == ["WAITING"] * 3)
    wait_status(conn, parent, "WAITING")
    assert conn.execute("select pgqrs.cancel_run(%s, 'order withdrawn')", (parent,)).fetchone() == (
        "CANCELLED",
    )
    assert status(conn, parent) == "CANCELLED"
    for child, child_status, _i in children_of(conn, parent):
        assert child_status == "CANCELLED"
        assert run_row(conn, child)[3]["reason"] == f"parent run {parent} was cancelled"
    assert conn.execute("select count(*) from pgqrs.waiting_runs").fetchone() == (0,)


def test_a_cancelled_child_wakes_its_parent_with_child_failed(
    workers: Workers, conn: psycopg.Connection[Any]
) -> None:
    parent = trigger(conn, {"plan": [["children", 2, {"plan": [["event", "child-ok", None]]}]]})
    workers.start("w1", "--visibility", "5", "--concurrency", "3")
    wait_for("2 children waiting", lambda: [s for _r, s, _i in children_of(conn, parent)] == ["WAITING"] * 2)
    first, second = (r for r, _s, _i in children_of(conn, parent))
    conn.execute("select pgqrs.cancel_run(%s)", (first,))
    assert status(conn, parent) == "WAITING", "one child is still running"
    conn.execute("select pgqrs.emit_event('child-ok', '1')")
    wait_status(conn, parent, "SUCCESS")
    assert run_row(conn, parent)[2]["steps"]["children"] == [
        {"failed": "CANCELLED", "run_id": first},
        {"steps": {"event:child-ok": 1}, "pid": run_row(conn, second)[2]["pid"]},
    ]


# ---- in-process: the handler's view, the sync twin, bad input ----------------------------------------------


def test_wait_child_returns_the_output_and_a_replay_does_not_start_another(db: str) -> None:
    calls: list[str] = []

    async def family(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> Any:
        if params.get("child"):
            return {"doubled": params["n"] * 2}
        h = await ctx.start_child("family", {"child": True, "n": 21})
        calls.append("started")
        assert isinstance(h, pgqrs.ChildHandle) and h.workflow == "family"
        return await ctx.wait_child(h)

    async def main() -> Any:
        async with InProcess(db) as env:
            await env.store.create_workflow("family")
            handle = await pgqrs.workflow("family").trigger({}).execute(env.store)
            (info,) = await env.drain("family", family, [handle.run_id])
            return info, handle.run_id

    info, run_id = asyncio.run(main())
    assert info.status == "SUCCESS" and info.output() == {"doubled": 42}
    assert info.parent_run_id is None
    assert calls == ["started", "started"], "the replay after the wake-up went past start_child again"
    with psycopg.connect(db) as conn:
        (child,) = conn.execute(
            "select run_id from pgqrs.runs where parent_run_id = %s", (run_id,)
        ).fetchall()

    async def child_info() -> pgqrs.RunInfo:
        async with await pgqrs.connect(db) as store:
            return await pgqrs.run().status(child[0]).store(store).get()

    assert asyncio.run(child_info()).parent_run_id == run_id


@pytest.mark.parametrize(
    ("call", "code"),
    [
        ("select pgqrs.start_child(%(run)s, 's', %(token)s, 'nope')", "QR001"),
        ("select pgqrs.start_child(%(run)s, '', %(token)s, 'kid')", "22023"),
        # an input over pgqrs.max_input_bytes (any JSON value is an input since schema 7)
        ("select pgqrs.start_child(%(run)s, 's', %(token)s, 'kid',"
         " jsonb_build_object('b', repeat('x', 1100000)))", "22023"),
        ("select pgqrs.start_child(%(run)s, 's', gen_random_uuid(), 'kid')", "QR004"),
        ("select pgqrs.start_child(%(run)s, 'done', %(token)s, 'kid')", "QR010"),
        ("select * from pgqrs.wait_children(%(run)s, 'w', %(token)s, array[%(run)s])", "QR011"),
        ("select * from pgqrs.wait_children(%(run)s, 'w', %(token)s, array[]::bigint[])", "22023"),
        ("select * from pgqrs.wait_children(%(run)s, 'w', %(token)s, array[null]::bigint[])", "22023"),
        ("select * from pgqrs.wait_children(%(run)s, 'w', %(token)s, array[[1], [2]])", "22023"),
        ("select * from pgqrs.wait_children(%(run)s, 'done', %(token)s, array[%(run)s])", "QR010"),
        ("select * from pgqrs.wait_children(%(run)s, 'w', gen_random_uuid(), array[%(run)s])", "QR004"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    conn: psycopg.Connection[Any], call: str, code: str
) -> None:
    conn.execute("select pgqrs.create_workflow('kid')")
    worker = conn.execute("select pgqrs.register_worker('kw', 'h', 1, 'kid')").fetchone()[0]  # type: ignore[index]
    conn.execute("select pgqrs.trigger('kid')")
    run, token = conn.execute(
        "select run_id, lease_token from pgqrs.dequeue('kid', %s)", (worker,)
    ).fetchone()  # type: ignore[misc]
    conn.execute("select pgqrs.complete_step(%s, 'done', %s, '1')", (run, token))
    before = conn.execute(
        "select (select count(*) from pgqrs.runs), (select count(*) from pgqrs.steps)"
    ).fetchone()
    with pytest.raises(psycopg.Error) as info:
        conn.execute(call, {"run": run, "token": token})
    assert info.value.sqlstate == code
    assert (
        conn.execute(
            "select (select count(*) from pgqrs.runs), (select count(*) from pgqrs.steps)"
        ).fetchone()
        == before
    )
    assert conn.execute("select status from pgqrs.runs where run_id = %s", (run,)).fetchone() == ("RUNNING",)


def test_the_sync_flavour_fans_out_and_in(db: str) -> None:
    """pgqrs.sync: a plain handler starts children and gathers them; a failed one is a ChildFailed."""

    def family(ctx: Any, params: dict[str, Any]) -> Any:
        if "n" in params:
            if params["n"] == 3:
                raise ValueError("three is bad")
            return ctx.step("square", lambda: params["n"] ** 2)
        handles = [ctx.start_child("sfam", {"n": n}) for n in range(1, 5)]
        outcomes = ctx.gather(*handles, return_exceptions=True)
        return [o.status if isinstance(o, pgqrs_sync.ChildFailed) else o for o in outcomes]

    with pgqrs_sync.connect(db) as store:
        store.create_workflow("sfam", {"max_attempts": 1})
        worker = pgqrs_sync.consumer("sfam", None, "sfam").handler(family).concurrency(3).create(store)
        thread = threading.Thread(target=worker.poll_forever, daemon=True)
        thread.start()
        try:
            handle = pgqrs_sync.workflow("sfam").trigger({}).execute(store)
            assert pgqrs_sync.run().status(handle).store(store).result(timeout=60) == [1, 4, "ERROR", 16]
        finally:
            worker.stop()
            thread.join(timeout=60)


# ---- races: no wake-up lost ------------------------------------------------------------------------------


def family_leases(
    conn: psycopg.Connection[Any], n: int, kids: int
) -> list[tuple[int, Any, list[tuple[int, Any]]]]:
    """n parents of workflow 'pa', leased, each with `kids` children of 'ki' started and leased."""
    conn.execute("select pgqrs.create_workflow('pa')")
    conn.execute("select pgqrs.create_workflow('ki')")
    pw = conn.execute("select pgqrs.register_worker('pw', 'h', 1, 'pa')").fetchone()[0]  # type: ignore[index]
    kw = conn.execute("select pgqrs.register_worker('kw', 'h', 1, 'ki')").fetchone()[0]  # type: ignore[index]
    conn.execute("select pgqrs.trigger_batch('pa', %s)", (psycopg.types.json.Jsonb([{}] * n),))
    parents = conn.execute(
        "select run_id, lease_token from pgqrs.dequeue('pa', %s, %s, '1 hour') order by run_id", (pw, n)
    ).fetchall()
    for run_id, token in parents:
        for k in range(kids):
            conn.execute("select pgqrs.start_child(%s, %s, %s, 'ki')", (run_id, f"k{k}", token))
    leased = dict.fromkeys((r for r, _t in parents), None)
    out: dict[int, list[tuple[int, Any]]] = {r: [] for r in leased}
    for child, token, parent in conn.execute(
        "select d.run_id, d.lease_token, r.parent_run_id from pgqrs.dequeue('ki', %s, %s, '1 hour') as d"
        " join pgqrs.runs as r using (run_id) order by d.run_id",
        (kw, n * kids),
    ).fetchall():
        out[parent].append((child, token))
    return [(r, t, out[r]) for r, t in parents]


def run_together(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls at once (one thread each, released by one barrier); their results."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def go(i: int) -> None:
        barrier.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=go, args=(i,)) for i in range(1, len(calls))]
    for t in threads:
        t.start()
    go(0)
    for t in threads:
        t.join()
    return results


def test_a_child_finishing_while_its_parent_begins_to_wait_is_never_lost(
    db: str, conn: psycopg.Connection[Any]
) -> None:
    """Without the children lock the wait could count a child unfinished that committed its finish just
    after, having found no wait to count down: the parent would wait forever."""
    families = family_leases(conn, 100, 1)
    with (
        psycopg.connect(db, autocommit=True) as parent_conn,
        psycopg.connect(db, autocommit=True) as child_conn,
    ):
        for parent, token, [(child, child_token)] in families:
            waited, _done = run_together(
                lambda p=parent, t=token, c=child: parent_conn.execute(
                    "select status from pgqrs.wait_children(%s, 'w', %s, array[%s]::bigint[])", (p, t, c)
                ).fetchone(),
                lambda c=child, t=child_token: child_conn.execute(
                    "select pgqrs.complete_run(%s, %s, '1')", (c, t)
                ).fetchone(),
            )
            assert (waited, status(conn, parent)) in [(("DONE",), "RUNNING"), (("WAITING",), "QUEUED")], (
                parent
            )
    assert conn.execute("select count(*) from pgqrs.waits").fetchone() == (0,)


def test_the_last_two_children_finishing_at_once_wake_their_parent(
    db: str, conn: psycopg.Connection[Any]
) -> None:
    families = family_leases(conn, 100, 2)
    with psycopg.connect(db, autocommit=True) as a, psycopg.connect(db, autocommit=True) as b:
        for parent, token, kids in families:
            ids = [c for c, _t in kids]
            conn.execute("select * from pgqrs.wait_children(%s, 'w', %s, %s::bigint[])", (parent, token, ids))
            (first, second) = kids
            run_together(
                lambda k=first: a.execute("select pgqrs.complete_run(%s, %s, '1')", k).fetchone(),
                lambda k=second: b.execute("select pgqrs.fail_run(%s, %s, '{}')", k).fetchone(),
            )
            assert status(conn, parent) == "QUEUED", parent
    assert conn.execute("select count(*) from pgqrs.waits").fetchone() == (0,)


def test_a_replay_answers_started_children_and_a_recorded_fan_in_from_the_journal(db: str) -> None:
    """After the wake-up the parent replays every start_child and its gather: each recorded step answers from
    the journal dequeue handed out, so a fan-out of n children costs no n round trips again per delivery."""
    log: list[Any] = []

    async def fan(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> Any:
        if "n" in params:
            return params["n"] * 10
        log.append(("delivery", ctx.attempt))
        handles = [await ctx.start_child("fan", {"n": n}) for n in range(5)]
        total = sum(await ctx.gather(*handles))
        await ctx.sleep(0.2)  # one more delivery: the gather is recorded SUCCESS in its journal
        return total

    async def scenario() -> Any:
        async with InProcess(db) as env:
            await env.store.create_workflow("fan")
            handle = await pgqrs.workflow("fan").trigger({}).execute(env.store)
            log_engine_calls(env.store, log)
            (info,) = await env.drain("fan", fan, [handle.run_id])
            return info

    info = asyncio.run(scenario())
    assert info.status == "SUCCESS" and info.output() == 100
    calls = by_delivery(log)
    assert [c[0] for c in calls[0]] == ["start_child"] * 5 + ["wait_children"], calls[0]
    assert [c[0] for c in calls[1]] == ["wait_children", "sleep_step"], "the starts come from the journal"
    assert [c[0] for c in calls[2]] == ["sleep_step"], "the gather comes from the journal too"
