"""One path per Python call (issue 14, part 4): every way to start a run — Store.trigger, a TriggerBuilder on
a store or on the caller's connection, and `pgqrs trigger` — marshals its input the same way
(pgqrs.store.trigger_params), so they store the same run and refuse the same input."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import psycopg
import pytest

import pgqrs
from test_cli import pgqrs as run_cli

INPUT = {"bucket": "b", "n": 1, "when": "2030-01-01"}


def stored_inputs(db: str) -> list[Any]:
    with psycopg.connect(db, autocommit=True) as conn:
        return [r[0] for r in conn.execute("select input from pgqrs.runs order by run_id").fetchall()]


def test_every_trigger_path_stores_the_same_run(db: str) -> None:
    async def scenario() -> None:
        async with await pgqrs.connect(db) as store:
            await store.create_workflow("wf")
            await store.trigger("wf", INPUT)
            await pgqrs.workflow("wf").trigger(INPUT).execute(store)
            async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
                await pgqrs.workflow("wf").trigger(INPUT).execute(conn)

    asyncio.run(scenario())
    res = run_cli("trigger", "wf", json.dumps(INPUT), dsn=db)
    assert res.returncode == 0, res.stderr
    assert stored_inputs(db) == [INPUT] * 4


def test_every_trigger_path_refuses_what_jsonb_cannot_store_before_sending_it(db: str) -> None:
    bad = {"name": "a\u0000b"}

    async def scenario() -> list[str]:
        refused = []
        async with await pgqrs.connect(db) as store:
            await store.create_workflow("wf")
            async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
                for start in (lambda: store.trigger("wf", bad),
                              lambda: pgqrs.workflow("wf").trigger(bad).execute(store),
                              lambda: pgqrs.workflow("wf").trigger(bad).execute(conn)):
                    with pytest.raises(pgqrs.NotSerializable) as caught:
                        await start()
                    refused.append(str(caught.value))
        return refused

    assert all("U+0000" in message for message in asyncio.run(scenario()))
    res = run_cli("trigger", "wf", json.dumps(bad), dsn=db)
    assert res.returncode != 0 and "U+0000" in res.stderr, res.stderr
    assert stored_inputs(db) == []
