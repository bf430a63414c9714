"""dequeue has one picking statement (pgqrs._ready_messages) and one lease-taking statement for every batch
size, each planned once per session (its planner settings in sql/queue/dequeue.sql, which hold for the
functions it calls). A plan made without knowing the batch size is costed as if `limit p_batch_size` kept 10%
of the queue; left to the estimates it reads whole tables: a hash join over every message on a deep
queue (~4 ms a dequeue at 40,000 queued, against ~0.2 ms), sequential scans of messages and runs on a young
table that has not been analyzed yet (~0.5 ms at 2,000). Every row must be reached through an index. The plans
are read with auto_explain, from inside dequeue."""

from __future__ import annotations

import re

import psycopg
import pytest
from psycopg.types.json import Jsonb

Conn = psycopg.Connection[tuple[object, ...]]


def dequeue_plans(conn: Conn, worker: int, batch: int) -> tuple[str, str]:
    """The plans of dequeue's picking and lease-taking statements."""
    notices: list[str] = []
    conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
    rows = conn.execute(
        "select run_id from pgqrs.dequeue('plan', %s, %s, interval '1 hour')", (worker, batch)
    ).fetchall()
    assert len(rows) == batch
    picks = [n for n in notices if "with recursive levels" in n]
    leases = [n for n in notices if "Update on messages" in n]
    assert len(picks) == 1 and len(leases) == 1, notices
    return picks[0], leases[0]


@pytest.mark.parametrize("batch", [1, 10])
@pytest.mark.parametrize(("queued", "analyzed"), [(2_000, False), (20_000, True)], ids=["young", "deep"])
def test_dequeue_reaches_every_row_through_an_index(
    conn: Conn, queued: int, analyzed: bool, batch: int
) -> None:
    conn.execute("alter table pgqrs.messages set (autovacuum_enabled = off)")  # "young" stays unanalyzed
    # (runs is partitioned: the setting is its partitions')
    leaves = "select relid::text from pg_partition_tree('pgqrs.runs') where isleaf"
    for (part,) in conn.execute(leaves).fetchall():
        conn.execute(f"alter table {part} set (autovacuum_enabled = off)")
    conn.execute("select pgqrs.create_workflow('plan')")
    worker = conn.execute("select pgqrs.register_worker('w_plan', 'h', 1, 'plan')").fetchone()
    assert worker is not None
    for _ in range(queued // 2_000):
        conn.execute("select count(*) from pgqrs.trigger_batch('plan', %s)", (Jsonb([{}] * 2_000),))
    if analyzed:
        conn.execute("analyze pgqrs.messages")
        conn.execute("analyze pgqrs.runs")
    conn.execute("load 'auto_explain'")
    for setting, value in (
        ("log_min_duration", "0"),
        ("log_nested_statements", "on"),
        ("log_level", "notice"),
        ("log_format", "text"),
    ):
        conn.execute("select set_config(%s, %s, false)", (f"auto_explain.{setting}", value))

    pick, plan = dequeue_plans(conn, int(worker[0]), batch)
    assert "Index Scan using messages_ready_idx" in pick, pick
    assert "Seq Scan" not in pick and "Bitmap" not in pick and "Sort" not in pick, pick
    # (runs is partitioned: the primary key of each partition, runs_from_<id>_pkey and runs_default_pkey)
    assert "Index Scan using messages_pkey" in plan, plan
    assert re.search(r"Index Scan using runs_\w+_pkey", plan), plan
    assert "Seq Scan" not in plan and "Bitmap" not in plan, plan
