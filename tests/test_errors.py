"""One list of error codes: docs/errors.md, the SQLSTATEs raised in sql/, and pgqrs.errors.REGISTRY agree.
Engine codes become their exception class; every other psycopg error passes through unchanged."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import psycopg
import pytest

import pgqrs
from pgqrs.errors import REGISTRY, PgqrsError

REPO = Path(__file__).resolve().parent.parent
ROW = re.compile(r"^\|\s*`(?P<code>[0-9A-Z]{5})`\s*\|\s*`(?P<cls>\w+)`\s*\|")
RAISED = re.compile(r"errcode\s*=\s*'(?P<code>[0-9A-Z]{5})'")


def documented() -> dict[str, str]:
    """code -> Python class name, from the table of docs/errors.md."""
    rows = {}
    for line in (REPO / "docs" / "errors.md").read_text().splitlines():
        m = ROW.match(line)
        if m:
            assert m["code"] not in rows, f"{m['code']} documented twice"
            rows[m["code"]] = m["cls"]
    return rows


def raised_in_sql() -> dict[str, list[str]]:
    """code -> the engine files that raise it (sql/**/*.sql, test fixtures excepted)."""
    codes: dict[str, list[str]] = {}
    for path in sorted((REPO / "sql").rglob("*.sql")):
        if "fixtures" in path.relative_to(REPO / "sql").parts:
            continue
        for m in RAISED.finditer(path.read_text()):
            codes.setdefault(m["code"], []).append(path.name)
    return codes


def test_docs_sql_and_registry_agree() -> None:
    docs = documented()
    sql = raised_in_sql()
    qr_docs = {c for c in docs if c.startswith("QR")}
    qr_sql = {c for c in sql if c.startswith("QR")}
    assert qr_docs, "no QR codes found in docs/errors.md"
    assert qr_sql - qr_docs == set(), "raised in sql/ but not documented"
    assert qr_docs - qr_sql == set(), "documented but raised nowhere in sql/ (stale)"
    assert set(REGISTRY) == set(docs), "docs/errors.md and pgqrs.errors.REGISTRY list different codes"
    for code, name in docs.items():
        cls = REGISTRY[code]
        assert cls.__name__ == name, f"{code}: docs say {name}, the registry maps {cls.__name__}"
        assert cls.sqlstate == code and issubclass(cls, PgqrsError)
        assert getattr(pgqrs, name) is cls, f"pgqrs.{name} is not exported"
        assert name in pgqrs.__all__
    # a non-QR code the engine raises is either documented (22023, mapped) or a PostgreSQL code passed through
    for code in set(sql) - set(docs):
        assert not code.startswith("QR")


def test_an_engine_error_becomes_its_class_with_the_psycopg_error_as_cause(db: str) -> None:
    async def scenario() -> None:
        async with await pgqrs.connect(db) as store:
            with pytest.raises(pgqrs.UnknownRun) as unknown:
                await store.resume_run(987654)
            assert unknown.value.sqlstate == "QR002" and "987654" in unknown.value.message
            assert isinstance(unknown.value.__cause__, psycopg.Error)
            assert unknown.value.__cause__.sqlstate == "QR002"

            with pytest.raises(pgqrs.UnknownWorkflow) as no_wf:
                await pgqrs.workflow("nope").trigger({}).execute(store)
            assert no_wf.value.hint and "create_workflow" in no_wf.value.hint

            with pytest.raises(pgqrs.InvalidArgument) as bad:
                await store.create_workflow("has spaces")
            assert isinstance(bad.value, ValueError)

            await store.create_workflow("w")
            run_id = await pgqrs.workflow("w").trigger({}).execute(store)
            with pytest.raises(pgqrs.InvalidState):
                await store.resume_run(run_id)  # QUEUED, not PAUSED

            # not an engine code: psycopg's own class, unchanged
            with pytest.raises(psycopg.errors.DivisionByZero):
                await store.call("select 1 / 0", ())
            with pytest.raises(psycopg.errors.InvalidTextRepresentation):  # 22P02: text that is not JSON
                await store.call("select pgqrs.trigger(p_workflow => 'w', p_input => %s::jsonb)", ("{nope",))

    asyncio.run(scenario())


def test_a_bad_dsn_raises_psycopgs_own_error_at_once(tmp_path: Path) -> None:
    bad = f"host={tmp_path} port=1 dbname=nowhere user=nobody connect_timeout=3"

    async def scenario() -> None:
        with pytest.raises(psycopg.OperationalError) as err:
            await pgqrs.connect(bad)
        assert not isinstance(err.value, PgqrsError)

    asyncio.run(asyncio.wait_for(scenario(), 20))  # not a 30 s pool timeout
    with pytest.raises(psycopg.OperationalError):
        pgqrs.install(bad)
    with pytest.raises(psycopg.ProgrammingError):  # not a DSN at all
        asyncio.run(pgqrs.connect("this is not = a = dsn"))


def test_a_lost_connection_passes_through_unchanged(db: str) -> None:
    async def scenario() -> None:
        async with await pgqrs.connect(db, max_size=1) as store:
            async with store.pool.connection() as conn:
                pid = conn.info.backend_pid
                async with await psycopg.AsyncConnection.connect(db, autocommit=True) as killer:
                    await killer.execute("select pg_terminate_backend(%s)", (pid,))
                with pytest.raises(psycopg.OperationalError) as lost:
                    await store.call("select 1", (), conn)
            assert not isinstance(lost.value, PgqrsError)

    asyncio.run(scenario())
