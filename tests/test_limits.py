"""Flow control (issue 16): concurrency limits, per-key limits, rate limits and priorities, with real worker
processes racing for one limited workflow, and through the Python API.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

import pgqrs
from test_cli import assert_one_line_error, ok_json
from test_cli import pgqrs as cli
from test_worker import Workers, run_row, trigger, wait_for
from test_worker import workers as workers  # the fixture: real worker processes

ACTIVE = "create table if not exists active_bodies (id bigserial primary key, key text)"


def outputs(conn: psycopg.Connection[Any], runs: list[int]) -> list[dict[str, Any]]:
    wait_for(
        f"{len(runs)} runs to succeed",
        lambda: conn.execute(
            "select count(*) = %s from pgqrs.runs where run_id = any(%s) and status = 'SUCCESS'",
            (len(runs), runs),
        ).fetchone()[0],  # type: ignore[index]
        timeout=90,
    )
    return [run_row(conn, r)[2]["steps"]["active"] for r in runs]


def test_eight_workers_never_run_more_than_the_limit(workers: Workers, conn: psycopg.Connection[Any]) -> None:
    conn.execute(ACTIVE)
    conn.execute("select pgqrs.set_workflow_limits('probe', p_max_concurrency => 3)")
    runs = [trigger(conn, {"plan": [["active", 0.3]]}) for _ in range(30)]
    for n in range(8):
        workers.start(f"w{n}", "--visibility", "10", "--concurrency", "2")
    peaks = [o["all"] for o in outputs(conn, runs)]
    assert max(peaks) == 3, peaks  # 16 slots among the workers: only the limit holds them back


def keyed(conn: psycopg.Connection[Any], key: str) -> int:
    """A probe run under concurrency key `key`, whose body counts the bodies of its key running with it."""
    params = psycopg.types.json.Jsonb({"key": key, "plan": [["active", 0.3]]})
    row = conn.execute(
        "select run_id from pgqrs.trigger('probe', %s, p_concurrency_key => %s)", (params, key)
    )
    return int(row.fetchone()[0])  # type: ignore[index]


def test_runs_of_one_key_are_serialised_and_other_keys_flow_past(
    workers: Workers, conn: psycopg.Connection[Any]
) -> None:
    conn.execute(ACTIVE)
    conn.execute("select pgqrs.set_workflow_limits('probe', p_max_concurrency_per_key => 1)")
    busy = [keyed(conn, "customer-42") for _ in range(6)]  # queued first: a backlog at the head of the queue
    others = [keyed(conn, f"c{i}") for i in range(4)]
    for n in range(4):
        workers.start(f"w{n}", "--visibility", "10", "--concurrency", "2")
    assert max(o["key"] for o in outputs(conn, busy)) == 1, "one run of customer-42 at a time"
    outputs(conn, others)
    last_other, last_busy = conn.execute(
        "select (select max(finished_at) from pgqrs.runs where run_id = any(%s)),"
        " (select max(finished_at) from pgqrs.runs where run_id = any(%s))",
        (others, busy),
    ).fetchone()  # type: ignore[misc]
    assert last_other < last_busy, "the other keys did not wait behind customer-42's backlog"


def test_limits_through_the_python_api(db: str) -> None:
    async def main() -> tuple[Any, Any, Any]:
        async with await pgqrs.connect(db) as store:
            created = (
                await pgqrs.workflow("api")
                .store(store)
                .max_concurrency(2)
                .max_concurrency_per_key(1)
                .rate_limit(100, 60)
                .create()
            )
            again = await store.create_workflow("api")  # a worker starting up keeps the limits
            await pgqrs.workflow("api").trigger({}).priority(7).concurrency_key("k").execute(store)
            cleared = await store.set_workflow_limits("api", max_concurrency=5)
            return created, again, cleared

    created, again, cleared = asyncio.run(main())
    assert (created.max_concurrency, created.max_concurrency_per_key, created.rate_limit) == (
        2,
        1,
        {"limit": 100, "period": "00:01:00"},
    )
    assert (again.max_concurrency, again.rate_limit) == (2, {"limit": 100, "period": "00:01:00"})
    assert (cleared.max_concurrency, cleared.max_concurrency_per_key, cleared.rate_limit) == (5, None, None)
    with psycopg.connect(db) as conn:
        assert conn.execute("select priority, concurrency_key from pgqrs.messages").fetchone() == (7, "k")


@pytest.mark.parametrize(
    ("call", "code", "message"),
    [
        (
            "select pgqrs.create_workflow('x', p_max_concurrency => 0)",
            "22023",
            "max_concurrency must be 1-1000000",
        ),
        (
            "select pgqrs.create_workflow('x', p_max_concurrency_per_key => -1)",
            "22023",
            "max_concurrency_per_key",
        ),
        ("select pgqrs.create_workflow('x', p_rate_limit => '{\"limit\": 5}')", "22023", "a rate limit is"),
        ("select pgqrs.create_workflow('x', p_rate_limit => '[1]')", "22023", "a rate limit is"),
        (
            'select pgqrs.create_workflow(\'x\', p_rate_limit => \'{"limit": 1.5, "period": "1 minute"}\')',
            "22023",
            "whole number",
        ),
        (
            'select pgqrs.create_workflow(\'x\', p_rate_limit => \'{"limit": 5, "period": "soon"}\')',
            "22023",
            "period must be an interval",
        ),
        (
            'select pgqrs.create_workflow(\'x\', p_rate_limit => \'{"limit": 5, "period": "2 days"}\')',
            "22023",
            "period must be an interval",
        ),
        ("select pgqrs.set_workflow_limits('nope', 1)", "QR001", "unknown workflow"),
        ("select pgqrs.trigger('lim', '{}', p_priority => 101)", "22023", "priority must be -100 to 100"),
        ("select pgqrs.trigger('lim', '{}', p_priority => null)", "22023", "priority"),
        ("select pgqrs.trigger('lim', '{}', p_concurrency_key => '')", "22023", "concurrency key"),
    ],
)
def test_bad_limits_are_refused_and_change_nothing(
    conn: psycopg.Connection[Any], call: str, code: str, message: str
) -> None:
    conn.execute("select pgqrs.create_workflow('lim', p_max_concurrency => 4)")
    state = (
        "select (select json_agg(w order by workflow_id) from pgqrs.workflows as w),"
        " (select count(*) from pgqrs.runs)"
    )
    before = conn.execute(state).fetchone()
    with pytest.raises(psycopg.Error) as info:
        conn.execute(call)
    assert info.value.sqlstate == code and message in str(info.value), info.value
    assert conn.execute(state).fetchone() == before


def test_a_rate_limited_dequeue_tells_the_workers_when_the_next_slot_opens(
    conn: psycopg.Connection[Any],
) -> None:
    """No busy polling: the dequeue that leaves work behind for the rate limit notifies the queue's listeners
    for the time the oldest delivery leaves the window, as a retry does for its retry_at. (The first version
    looked that time up past the end of the window's log on the first dequeue, and notified "now": every
    listening worker would have dequeued again at once, and again, until the window opened.)"""
    conn.execute(
        'select pgqrs.create_workflow(\'rl\', p_rate_limit => \'{"limit": 2, "period": "1 minute"}\')'
    )
    worker = conn.execute("select pgqrs.register_worker('rlw', 'h', 1, 'rl')").fetchone()[0]  # type: ignore[index]
    conn.execute("select pgqrs.trigger_batch('rl', %s)", (psycopg.types.json.Jsonb([{}] * 5),))
    conn.execute("listen " + conn.execute("select pgqrs.queue_channel('rl')").fetchone()[0])  # type: ignore[index]
    list(conn.notifies(timeout=0.2))  # the triggers' own notifications
    first = conn.execute("select pgqrs.now()").fetchone()[0]  # type: ignore[index]
    slot = first.timestamp() + 60
    for taken in (2, 0):
        assert len(conn.execute("select * from pgqrs.dequeue('rl', %s, 5)", (worker,)).fetchall()) == taken
        payloads = [n.payload for n in conn.notifies(timeout=0.5)]
        assert payloads and all(p and abs(float(p) - slot) < 1 for p in payloads), (taken, payloads, slot)
    stats = conn.execute(
        "select ready, leased, limited, limited_by from pgqrs.queue_stats where queue = 'rl'"
    )
    assert stats.fetchone() == (3, 2, 3, "rate_limit")


def test_the_cli_sets_limits_triggers_with_a_priority_and_shows_what_a_limit_holds_back(
    conn: psycopg.Connection[Any],
) -> None:
    dsn = conn.info.dsn
    conn.execute("select pgqrs.create_workflow('cli_lim')")
    shown = ok_json("limits", "cli_lim", "--max-concurrency", "1", "--rate-limit", "100/1 minute", dsn=dsn)
    assert (shown["max_concurrency"], shown["rate_limit"]) == (1, {"limit": 100, "period": "00:01:00"})
    for n in range(3):
        ok_json(
            "trigger", "cli_lim", f'{{"n": {n}}}', "--priority", str(n), "--concurrency-key", "k", dsn=dsn
        )
    assert conn.execute(
        "select array_agg(priority order by message_id), min(concurrency_key) from pgqrs.messages"
    ).fetchone() == ([0, 1, 2], "k")
    worker = conn.execute("select pgqrs.register_worker('cw', 'h', 1, 'cli_lim')").fetchone()[0]  # type: ignore[index]
    (got,) = conn.execute("select input from pgqrs.dequeue('cli_lim', %s, 3)", (worker,)).fetchall()
    assert got == ({"n": 2},), "the highest priority, and only one: max_concurrency 1"
    stats = {q["queue"]: q for q in ok_json("stats", dsn=dsn)["queues"]}
    assert (stats["cli_lim"]["limited"], stats["cli_lim"]["limited_by"]) == (2, "max_concurrency")
    text = cli("stats", dsn=dsn)
    assert text.returncode == 0 and "max_concurrency" in text.stdout
    assert cli("limits", "cli_lim", dsn=dsn).stdout.strip() == "cli_lim: no limits"
    assert_one_line_error(cli("limits", "cli_lim", "--rate-limit", "lots", dsn=dsn), 2, "LIMIT/PERIOD")
    assert_one_line_error(cli("limits", "cli_lim", "--rate-limit", "5/2 days", dsn=dsn), 2, "period")
    assert_one_line_error(cli("limits", "nope", "--max-concurrency", "2", dsn=dsn), 1, "unknown workflow")
    assert_one_line_error(cli("trigger", "cli_lim", "--priority", "500", dsn=dsn), 2, "priority")
