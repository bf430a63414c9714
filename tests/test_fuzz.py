"""Hostile input against every public SQL function and the Python entry points (issue 8), with hypothesis.

Properties (bounded: MAX_EXAMPLES each, the whole file in about a minute):

- hostile values for one kind of parameter at a time (names, JSON, durations / times / sizes, ids / tokens)
  in calls to every public function of schema pgqrs, discovered from the catalog, so a new function is fuzzed
  without editing this file;
- a stateful machine that calls the functions in random order with mostly valid, sometimes bogus arguments,
  moving the clock, and checks fencing, the step SUCCESS shadow map and terminal states after every call;
- the Python entry points (`pgqrs.connect`, `Store` methods, `workflow().trigger`, `run().status`, consumers).

Every call either succeeds or fails with a SQLSTATE in ALLOWED_SQLSTATES, and after every example the
database passes `consistency_problems` (no message without its run, no finished run with a live message or
lease, attempts within policy, messages and archive disjoint, ...) and no step SUCCESS seen so far changed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, multiple, rule
from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg.types.string import TextLoader

import pgqrs
from conftest import drop_db, fresh_db

pytestmark = pytest.mark.timeout(600)

MAX_EXAMPLES = int(os.environ.get("PGQRS_FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("CI", "").lower() not in ("", "0", "false", "no"),  # reproducible in CI
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)

# --- what may come back -----------------------------------------------------------------------------------

ENGINE_SQLSTATES = {
    "QR001": "unknown workflow / queue",
    "QR002": "unknown run / message",
    "QR003": "invalid state for the call",
    "QR004": "lease not held",
    "QR005": "step SUCCESS would change",
    "QR006": "idempotency key reused with other input",
    "QR007": "attempts exhausted",
    "QR008": "unknown worker",
    "QR009": "the run was cancelled",
    "22023": "invalid_parameter_value: a malformed argument (the engine's own checks)",
}
# PostgreSQL's own codes for malformed *literal input*: raised while PostgreSQL converts a parameter to the
# declared type (or does arithmetic the input makes impossible), before or instead of any pgqrs logic. pgqrs
# passes them through unchanged (docs/errors.md). Each one is listed with the input that produces it here.
POSTGRES_INPUT_SQLSTATES = {
    "22P02": "invalid_text_representation: text that is not JSON, a uuid, an integer or a boolean",
    "22P05": "untranslatable_character: \\u0000 in JSON text (jsonb cannot store NUL)",
    "22003": "numeric_value_out_of_range: an integer beyond the parameter's type (batch size 2^40)",
    "22007": "invalid_datetime_format: malformed timestamp or interval text ('garbage', 'infinity' interval)",
    "22008": "datetime_field_overflow: a timestamp or interval outside PostgreSQL's range (year 294277)",
    "22015": "interval_field_overflow: an interval field beyond int32 ('99999999999 days')",
    "54001": "statement_too_complex: 'stack depth limit exceeded' parsing JSON nested ~100k deep",
}
ALLOWED_SQLSTATES = set(ENGINE_SQLSTATES) | set(POSTGRES_INPUT_SQLSTATES)
# Not allowed, on purpose: 42883 (a call the package builds with the wrong types), 23xxx (a constraint the
# engine should have checked first), P0002/P0003 (SELECT INTO STRICT surprises), 22012, XX000, 42501 (the
# fuzzing runs as a superuser; privileges are tests/test_security.py's).

Conn = psycopg.Connection[tuple[Any, ...]]


def allowed(exc: psycopg.Error, context: str) -> str:
    """The SQLSTATE of `exc`, after asserting it is allowed. psycopg refuses text with NUL client-side.

    PostgreSQL's input codes count only where PostgreSQL converts the call's own arguments (binding a
    parameter, or the caller's expression such as `%s * interval '1 second'`). Raised from inside a pgqrs
    function they mean the engine accepted an input and then choked on it: a bug, whatever the code."""
    if exc.sqlstate is None and isinstance(exc, psycopg.DataError) and "NUL" in str(exc):
        return "NUL"
    assert exc.sqlstate in ALLOWED_SQLSTATES, (
        f"{context}: unexpected {exc.sqlstate} {type(exc).__name__}: {exc}"
    )
    if exc.sqlstate in POSTGRES_INPUT_SQLSTATES:
        where = exc.diag.context or ""
        assert not re.search(r"(PL/pgSQL|SQL) function ", where), (
            f"{context}: {exc.sqlstate} raised inside the engine, not while reading the arguments: "
            f"{exc.diag.message_primary} / {where}"
        )
    return str(exc.sqlstate)


# --- the consistency check --------------------------------------------------------------------------------

CONSISTENCY_SQL = """
with r as (
    select r.*, w.name as workflow, q.queue_id as run_queue_id
    from pgqrs.runs as r join pgqrs.workflows as w using (workflow_id)
    join pgqrs.queues as q using (workflow_id)
    where w.name like %(prefix)s
)
select 'message without its run: ' || m.message_id from pgqrs.messages as m
where not exists (select from pgqrs.runs as x where x.run_id = m.message_id)
union all
select 'archived message without its run: ' || a.message_id from pgqrs.messages_archive as a
where not exists (select from pgqrs.runs as x where x.run_id = a.message_id)
union all
select 'message both live and archived: ' || m.message_id
from pgqrs.messages as m join pgqrs.messages_archive as a using (message_id)
union all
select format('finished run %%s (%%s) has a live message (lease %%s)', r.run_id, r.status, m.lease_token)
from r join pgqrs.messages as m on m.message_id = r.run_id where r.status in ('SUCCESS', 'ERROR', 'CANCELLED')
union all
select format('finished run %%s (%%s) is not archived', r.run_id, r.status) from r
where r.status in ('SUCCESS', 'ERROR')
  and not exists (select from pgqrs.messages_archive as a where a.message_id = r.run_id)
union all
select format('run %%s is %%s but archived as %%s', r.run_id, r.status, a.outcome)
from r join pgqrs.messages_archive as a on a.message_id = r.run_id
where (r.status = 'SUCCESS') <> (a.outcome = 'SUCCESS') or (r.status = 'ERROR') <> (a.outcome = 'DEAD_LETTER')
union all
select format('live run %%s (%%s) has no message', r.run_id, r.status) from r
where r.status in ('QUEUED', 'RUNNING', 'PAUSED')
  and not exists (select from pgqrs.messages as m where m.message_id = r.run_id)
union all
select format('run %%s is %%s with lease token %%s', r.run_id, r.status, m.lease_token)
from r join pgqrs.messages as m on m.message_id = r.run_id
where (r.status = 'RUNNING') <> (m.lease_token is not null)
union all
select format('message %%s is in queue %%s, its run''s queue is %%s', r.run_id, m.queue_id, r.run_queue_id)
from r join pgqrs.messages as m on m.message_id = r.run_id where m.queue_id <> r.run_queue_id
union all
select format('run %%s: attempt %%s but %%s deliveries', r.run_id, r.attempt, d.read_count)
from r join (
    select message_id, read_count from pgqrs.messages
    union all select message_id, read_count from pgqrs.messages_archive
) as d on d.message_id = r.run_id
where r.attempt <> d.read_count
union all
select format('run %%s (%%s): finished_at %%s', r.run_id, r.status, r.finished_at) from r
where (r.status in ('SUCCESS', 'ERROR', 'CANCELLED')) <> (r.finished_at is not null)
union all
select format('run %%s: SUCCESS without output / ERROR without error', r.run_id) from r
where (r.status = 'SUCCESS' and r.output is null) or (r.status = 'ERROR' and r.error is null)
union all
select format('step %%s/%%s: %%s with value %%s, attempt %%s, retry_at %%s, paused_until %%s',
              s.run_id, s.step_id, s.status, s.value, s.attempt, s.retry_at, s.paused_until)
from r join pgqrs.steps as s using (run_id)
where (s.status = 'SUCCESS' and s.value is null) or s.attempt < 0
   or (s.retry_at is not null and s.status <> 'ERROR')
   or (s.paused_until is not null and s.status <> 'PAUSED')
"""

RETRIES_SQL = """
select s.run_id, s.step_id, s.attempt, w.name, (w.retry_policy ->> 'max_attempts')::numeric
from pgqrs.steps as s join pgqrs.runs as r using (run_id) join pgqrs.workflows as w using (workflow_id)
where w.name like %(prefix)s and s.status = 'ERROR' and s.retry_at is not null
  and r.status in ('QUEUED', 'RUNNING', 'PAUSED')
"""

SUCCESS_SQL = """
select s.run_id, s.step_id, s.value from pgqrs.steps as s join pgqrs.runs as r using (run_id)
join pgqrs.workflows as w using (workflow_id) where w.name like %(prefix)s and s.status = 'SUCCESS'
"""


@dataclass
class Shadow:
    """What the fuzzer has seen: step successes (never to change) and the largest max_attempts any policy
    for a workflow or a (run, step) had (create_workflow may lower a policy later; attempts made under the
    old one stay legal)."""

    success: dict[tuple[int, str], Any] = field(default_factory=dict)
    wf_max: dict[str, float] = field(default_factory=dict)
    step_max: dict[tuple[int, str], float] = field(default_factory=dict)
    succeeded_runs: set[int] = field(default_factory=set)

    def note_policy(self, key: Any, policy: Any, table: dict[Any, float]) -> None:
        if isinstance(policy, dict) and isinstance(policy.get("max_attempts"), int | float):
            table[key] = max(table.get(key, 0), float(policy["max_attempts"]))


def consistency_problems(conn: Conn, shadow: Shadow, prefix: str = "%") -> list[str]:
    problems = [r[0] for r in conn.execute(CONSISTENCY_SQL, {"prefix": prefix})]
    for run_id, step_id, attempt, wf, wf_max in conn.execute(RETRIES_SQL, {"prefix": prefix}):
        limit = max(float(wf_max), shadow.wf_max.get(wf, 0), shadow.step_max.get((run_id, step_id), 0))
        if attempt >= limit:
            problems.append(
                f"step {run_id}/{step_id} has a retry scheduled after attempt {attempt} of {limit}"
            )
    now = {(r, s): v for r, s, v in conn.execute(SUCCESS_SQL, {"prefix": prefix})}
    for key, value in shadow.success.items():
        if key in now and now[key] != value:
            problems.append(f"step {key} SUCCESS changed from {value!r} to {now[key]!r}")
        elif key not in now:
            row = conn.execute(
                "select status from pgqrs.steps where run_id = %s and step_id = %s", key
            ).fetchone()
            problems.append(f"step {key} was SUCCESS {value!r}, now {row}")
    shadow.success.update(now)
    if shadow.succeeded_runs:
        for run_id, status in conn.execute(
            "select run_id, status from pgqrs.runs where run_id = any(%s)", (sorted(shadow.succeeded_runs),)
        ):
            if status != "SUCCESS":
                problems.append(f"run {run_id} was SUCCESS, now {status}")
    shadow.succeeded_runs.update(
        r[0]
        for r in conn.execute(
            "select r.run_id from pgqrs.runs as r join pgqrs.workflows as w using (workflow_id)"
            " where w.name like %(prefix)s and r.status = 'SUCCESS'",
            {"prefix": prefix},
        )
    )
    return problems


# --- strategies -------------------------------------------------------------------------------------------

HOSTILE_TEXT = [
    "",
    " ",
    "'",
    "''",
    '"',
    "a'b",
    "x; drop table pgqrs.runs; --",
    "'); delete from pgqrs.runs; --",
    "$$",
    "$1",
    "%s",
    "%I",
    "%L",
    "\\",
    "\\'",
    "NULL",
    "null",
    "pgqrs.runs",
    "secret.t",
    "\n",
    "\t",
    "\r\n",
    "\u202e",
    "\ufeff",
    "e\u0301",
    "ä",
    "名前",
    "🙂",
    "a" * 128,
    "a" * 129,
    "a" * 255,
    "a" * 256,
    "A.b:c-d_e",
    "-leading",
    ".dot",
    "_under",
    "..",
    "a b",
    "wf\u0000x",
    "SUCCESS",
    "success",
    "CANCELLED",
    "Success ",
    " RUNNING",
]
no_nul_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=300)
hostile_text = st.one_of(
    st.sampled_from(HOSTILE_TEXT),
    st.text(max_size=300),
    st.text(st.sampled_from("abcXYZ019_.:-'\";$%\\ "), min_size=1, max_size=140),
    st.builds(lambda c, n: c * n, st.sampled_from(["a", "é", "🙂", "'", ";"]), st.integers(9_000, 11_000)),
)
ODD_NUMBERS = [
    1e308,
    -1e308,
    1.7976931348623157e308,
    -0.0,
    0.0,
    5e-324,
    2**53 + 1,
    2**63,
    -(2**63) - 1,
    10**40,
    0.1,
    3.0,
    1e-7,
]
json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**200), 2**200),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(ODD_NUMBERS),
    st.text(max_size=40),
)
json_values = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=20), inner, max_size=5),
    max_leaves=25,
)
json_objects = st.dictionaries(st.text(max_size=20), json_values, max_size=6)


def nested_json_text(depth: int, kind: str) -> str:
    return ("[" * depth + "]" * depth) if kind == "list" else ('{"k":' * depth + "1" + "}" * depth)


RAW_JSON_TEXT = [
    "",
    "{",
    "}",
    "{'a': 1}",
    "[1,]",
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999999",
    '"\\u0000"',
    '{"a":"\\ud800"}',
    "undefined",
    '{"a": 1} {"b": 2}',
    "\ufeff{}",
    "nul",
    "0x10",
    "01",
]
hostile_json = st.one_of(
    json_values.map(Jsonb),
    st.sampled_from(RAW_JSON_TEXT),
    st.builds(
        nested_json_text, st.sampled_from([10, 1_000, 10_000, 300_000]), st.sampled_from(["list", "obj"])
    ),
    st.one_of(st.integers(1, 1_200_000), st.sampled_from([1_048_560, 1_048_566, 1_048_600])).map(
        lambda n: Jsonb({"blob": "x" * n})
    ),
    st.lists(json_objects, min_size=0, max_size=3).map(Jsonb),
    st.just(Jsonb([{}] * 10_001)),
    st.sampled_from(ODD_NUMBERS).map(lambda n: Jsonb({"max_attempts": n, "n": n})),
    st.fixed_dictionaries(
        {},
        optional={
            "max_attempts": st.one_of(
                st.integers(-5, 1005), st.sampled_from([1.0, 3.0, 2.5, 1e308, -0.0, "3", None])
            ),
            "backoff": st.sampled_from(["fixed", "exponential", "linear", "", None, 1]),
            "base_seconds": st.one_of(st.floats(-1, 90_000), st.sampled_from([0, 86400, 1e308, "1"])),
            "max_seconds": st.one_of(st.floats(-1, 3_000_000), st.sampled_from([0, 2_592_000, 1e308])),
            "jitter": st.one_of(st.floats(-1, 2), st.sampled_from([0, 1, True])),
            "surprise": st.just(1),
        },
    ).map(Jsonb),
)
hostile_interval = st.one_of(
    st.none(),
    st.timedeltas(),  # the whole Python range: +-999999999 days
    st.sampled_from(
        [
            timedelta(0),
            timedelta(microseconds=1),
            timedelta(seconds=-1),
            timedelta(days=1),
            timedelta(days=1, microseconds=1),
            timedelta(days=365),
            timedelta(days=366),
            timedelta(days=30),
            timedelta(days=30, seconds=1),
            timedelta(days=-1),
        ]
    ),
    st.sampled_from(
        [
            "infinity",
            "-infinity",
            "garbage",
            "1 fortnight",
            "99999999999 days",
            "178000000 years",
            "-178000000 years",
            "P1Y2M",
            "1e308 seconds",
            "@ 1 minute ago",
            "",
            "1 second; drop",
        ]
    ),
)
hostile_time = st.one_of(
    st.none(),
    st.datetimes(timezones=st.just(UTC)),
    st.sampled_from(
        [
            "infinity",
            "-infinity",
            "epoch",
            "294277-01-01 00:00+00",
            "4714-11-24 00:00+00 BC",
            "garbage",
            "",
            "2030-02-30",
            "allballs",
        ]
    ),
)
hostile_int = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 1, 1000, 1001, 2**31 - 1, 2**31, -(2**31) - 1, 2**63 - 1, 2**63, 65535, 65536]),
    st.sampled_from(["1.5", "ten", "", "1e3", " 7 "]),
    st.none(),
)
hostile_uuid = st.one_of(st.none(), st.uuids(), st.sampled_from(["not-a-uuid", "", "0" * 32, "{}", "'"]))
hostile_uuids = st.one_of(
    st.none(),
    st.lists(st.uuids(), max_size=4),
    st.sampled_from(["{bad}", "{}", "{NULL}", "not an array"]),
)
hostile_bool = st.one_of(st.none(), st.booleans(), st.sampled_from(["maybe", "", "yes", "2"]))


# --- the world the property tests call into ---------------------------------------------------------------


@dataclass
class Fn:
    name: str
    params: list[tuple[str, str]]  # (name, declared type)


def public_functions(conn: Conn) -> list[Fn]:
    rows = conn.execute(
        """
        select p.oid, p.proname::text, a.name, format_type(a.type, null)
        from pg_proc as p
        left join lateral unnest(p.proargnames, coalesce(p.proallargtypes, p.proargtypes::oid[]),
                                 coalesce(p.proargmodes, array_fill('i'::"char", array[p.pronargs])))
            with ordinality as a (name, type, mode, n) on true
        where p.pronamespace = 'pgqrs'::regnamespace and p.proname !~ '^_'
          and coalesce(a.mode, 'i') in ('i', 'b')
        order by 2, 1, a.n
        """
    ).fetchall()
    fns: dict[int, Fn] = {}
    for oid, name, arg, typ in rows:
        fn = fns.setdefault(oid, Fn(name, []))
        if arg is not None:
            fn.params.append((arg, typ))
    return list(fns.values())


@dataclass
class World:
    """Runs in every state, made once; every property example runs in a transaction that is rolled back."""

    conn: Conn
    functions: list[Fn]
    workflows: list[str]
    worker: int
    runs: list[int]
    tokens: list[uuid.UUID]
    shadow: Shadow = field(default_factory=Shadow)


def one(conn: Conn, query: str, params: Any = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row


def build_world(dsn: str) -> World:
    conn: Conn = psycopg.connect(dsn, autocommit=True)
    # JSON results stay text: a value nested deeper than Python's recursion limit is valid jsonb (PostgreSQL
    # accepts thousands of levels) that json.loads cannot read back; outcome codes are what is checked here
    conn.adapters.register_loader("jsonb", TextLoader)
    conn.adapters.register_loader("json", TextLoader)
    conn.execute("select pgqrs.create_workflow('fz')")
    conn.execute("select pgqrs.create_workflow('fz_one', '{\"max_attempts\": 1}')")
    worker = int(one(conn, "select pgqrs.register_worker('fz_w', 'h', 1, 'fz')")[0])
    runs, tokens = [], []

    def leased(payload: dict[str, Any]) -> tuple[int, uuid.UUID]:
        conn.execute("select pgqrs.trigger('fz', %s)", (Jsonb(payload),))
        run, token = one(
            conn, "select run_id, lease_token from pgqrs.dequeue('fz', %s, 1, '1 day')", (worker,)
        )
        runs.append(run)
        tokens.append(token)
        return run, token

    run, token = leased({"k": "running"})  # RUNNING, a SUCCESS step and a RUNNING one
    conn.execute("select pgqrs.acquire_step(%s, 'a', %s)", (run, token))
    conn.execute("select pgqrs.complete_step(%s, 'a', %s, '{\"v\": 1}')", (run, token))
    conn.execute("select pgqrs.acquire_step(%s, 'b', %s)", (run, token))
    leased({"k": "running2"})  # RUNNING, no steps
    run, token = leased({"k": "paused"})
    conn.execute("select pgqrs.pause_step(%s, 'c', %s, '1 day')", (run, token))
    run, token = leased({"k": "success"})
    conn.execute("select pgqrs.complete_step(%s, 'a', %s, '2')", (run, token))
    conn.execute("select pgqrs.complete_run(%s, %s, '{}')", (run, token))
    run, token = leased({"k": "error"})
    conn.execute("select pgqrs.fail_step(%s, 'a', %s, '{}', false)", (run, token))
    run, token = leased({"k": "retrying"})
    conn.execute("select pgqrs.fail_step(%s, 'a', %s, '{}', true, '1 hour')", (run, token))
    conn.execute("select pgqrs.trigger('fz', '{\"k\": \"queued\"}', 'key-1')")
    runs.append(int(one(conn, "select max(run_id) from pgqrs.runs")[0]))
    world = World(conn, public_functions(conn), ["fz", "fz_one"], worker, runs, tokens)
    world.shadow.wf_max["fz"] = 3
    assert consistency_problems(conn, world.shadow) == []
    return world


@pytest.fixture(scope="module")
def fuzz_dsn(pg_dsn: str) -> Iterator[str]:
    name = f"fuzz_{os.getpid()}"
    yield fresh_db(name, pg_dsn)
    if not os.environ.get("PGQRS_KEEP_DBS"):
        drop_db(name, pg_dsn)


@pytest.fixture(scope="module")
def world(fuzz_dsn: str) -> Iterator[World]:
    w = build_world(fuzz_dsn)
    yield w
    w.conn.close()


# The kind of each parameter, by declared type (and name, for text): which hostile strategy it takes.
def kind_of(param: str, typ: str) -> str:
    if typ == "text":
        return "name"
    return {
        "jsonb": "json",
        "interval": "duration",
        "timestamp with time zone": "time",
        "integer": "size",
        "bigint": "id",
        "uuid": "token",
        "uuid[]": "token",
        "boolean": "bool",
    }.get(typ, "other")


def valid_value(param: str, typ: str, fn: str, world: World) -> st.SearchStrategy[Any]:
    """Mostly-valid values, so that a call gets past the checks of the parameters not being fuzzed."""
    wf = st.sampled_from(world.workflows)
    by_name: dict[str, st.SearchStrategy[Any]] = {
        "p_workflow": wf,
        "p_queue": wf,
        "p_name": wf if fn == "create_workflow" else st.sampled_from(["fz_w", "fz_w2"]),
        "p_hostname": st.just("h"),
        "p_step_id": st.sampled_from(["a", "b", "c", "d"]),
        "p_idempotency_key": st.sampled_from([None, "key-1", "key-2"]),
        "p_status": st.sampled_from(["RUNNING", "SUCCESS", "ERROR", "PAUSED"]),
        "p_input": json_objects.map(Jsonb),
        "p_inputs": st.lists(json_objects, min_size=1, max_size=3).map(Jsonb),
        "p_retry_policy": st.sampled_from([None, Jsonb({}), Jsonb({"max_attempts": 2, "backoff": "fixed"})]),
        "p_value": json_values.map(Jsonb),
        "p_error": json_values.map(Jsonb),
        "p_output": json_values.map(Jsonb),
        "p_delay": st.sampled_from([None, timedelta(0), timedelta(seconds=5)]),
        "p_run_at": st.none(),
        "p_retry_after": st.sampled_from([None, timedelta(0), timedelta(seconds=30)]),
        "p_timeout": st.sampled_from([None, timedelta(hours=1)]),
        "p_duration": st.sampled_from([None, timedelta(0), timedelta(seconds=2)]),
        "p_visibility": st.sampled_from([timedelta(seconds=30), timedelta(minutes=5)]),
        "p_current_time": st.none(),
        "p_batch_size": st.integers(1, 3),
        "p_port": st.just(8080),
        "p_run": st.sampled_from(world.runs),
        "p_message_id": st.sampled_from(world.runs),
        "p_worker": st.just(world.worker),
        "p_lease_token": st.sampled_from(world.tokens),
        "p_lease_tokens": st.lists(st.sampled_from(world.tokens), max_size=3),
        "p_transient": st.booleans(),
        "p_reason": st.sampled_from([None, "ops", "x" * 1000]),
        "p_steps": st.one_of(
            st.sampled_from([None, Jsonb([])]),
            st.sampled_from(world.tokens).map(
                lambda t: Jsonb([{"lease_token": str(t), "step_id": "a", "running_for": 1.5}])
            ),
        ),
    }
    assert param in by_name, f"tests/test_fuzz.py: give parameter {param} ({typ}) of {fn} a valid value"
    return by_name[param]


def hostile_value(param: str, typ: str, world: World) -> st.SearchStrategy[Any]:
    kind = kind_of(param, typ)
    if kind == "name":
        return hostile_text
    if kind == "json":
        return hostile_json
    if kind == "duration":
        return hostile_interval
    if kind == "time":
        return hostile_time
    if kind in ("size", "id"):
        return hostile_int if kind == "size" else st.one_of(hostile_int, st.sampled_from(world.runs))
    if kind == "token":
        if typ == "uuid[]":
            return st.one_of(hostile_uuids, st.lists(st.sampled_from(world.tokens), max_size=2))
        return st.one_of(hostile_uuid, st.sampled_from(world.tokens))
    if kind == "bool":
        return hostile_bool
    raise AssertionError(f"no hostile strategy for {param} {typ}")


def call_query(fn: Fn) -> sql.Composed:
    """`select * from pgqrs.fn(p_a => %s::type, ...)`: each value converted to its declared type, as psql
    would."""
    return sql.SQL("select * from {}({})").format(
        sql.Identifier("pgqrs", fn.name),
        sql.SQL(", ").join(
            sql.SQL("{} => {}::{}").format(sql.Identifier(p), sql.Placeholder(), sql.SQL(t))
            for p, t in fn.params
        ),
    )


@st.composite
def calls(draw: st.DrawFn, world: World, kinds: frozenset[str]) -> tuple[Fn, dict[str, Any]]:
    """A call to a public function whose parameters of the given kinds are hostile (others mostly valid)."""
    candidates = [f for f in world.functions if any(kind_of(p, t) in kinds for p, t in f.params)]
    fn = draw(st.sampled_from(candidates))
    args: dict[str, Any] = {}
    for p, t in fn.params:
        hostile = kind_of(p, t) in kinds and draw(st.integers(0, 3)) > 0 or draw(st.integers(0, 9)) == 0
        args[p] = draw(hostile_value(p, t, world) if hostile else valid_value(p, t, fn.name, world))
    return fn, args


def describe(value: Any) -> str:
    try:
        text = repr(value)
    except RecursionError:
        return f"<{type(value).__name__} nested too deeply to print>"
    return text if len(text) < 200 else f"{text[:120]}...({len(text)} chars)"


def run_calls(world: World, batch: list[tuple[Fn, dict[str, Any]]]) -> None:
    """Run the calls in one transaction that is rolled back at the end (the world stays as it was), each in a
    savepoint; check every outcome and the consistency of the database before the rollback."""
    conn = world.conn
    saved = (dict(world.shadow.success), set(world.shadow.succeeded_runs))
    with conn.transaction(force_rollback=True):
        for fn, args in batch:
            note(f"pgqrs.{fn.name}({', '.join(f'{k}={describe(v)}' for k, v in args.items())})")
            try:
                with conn.transaction():
                    rows = conn.execute(call_query(fn), [args[p] for p, _t in fn.params]).fetchall()
            except psycopg.Error as exc:
                note(f"  -> {allowed(exc, fn.name)}")
            else:
                note(f"  -> {describe(rows)}")
                if fn.name == "create_workflow" and isinstance(args.get("p_retry_policy"), Jsonb):
                    world.shadow.note_policy(args["p_name"], args["p_retry_policy"].obj, world.shadow.wf_max)
                if fn.name == "fail_step" and isinstance(args.get("p_retry_policy"), Jsonb):
                    world.shadow.note_policy(
                        (args["p_run"], args["p_step_id"]), args["p_retry_policy"].obj, world.shadow.step_max
                    )
        problems = consistency_problems(conn, world.shadow)
        assert problems == [], problems
    # the rollback undid this example's successes too (the policy maxima may stay: they only loosen)
    world.shadow.success, world.shadow.succeeded_runs = saved


# --- properties over every public function ----------------------------------------------------------------


@FUZZ
@given(data=st.data())
def test_hostile_names(world: World, data: st.DataObject) -> None:
    run_calls(world, data.draw(st.lists(calls(world, frozenset({"name"})), min_size=1, max_size=3)))


@FUZZ
@given(data=st.data())
def test_hostile_json(world: World, data: st.DataObject) -> None:
    run_calls(world, data.draw(st.lists(calls(world, frozenset({"json"})), min_size=1, max_size=3)))


@FUZZ
@given(data=st.data())
def test_hostile_durations_times_and_sizes(world: World, data: st.DataObject) -> None:
    kinds = frozenset({"duration", "time", "size", "bool"})
    run_calls(world, data.draw(st.lists(calls(world, kinds), min_size=1, max_size=3)))


@FUZZ
@given(data=st.data())
def test_bogus_ids_and_lease_tokens(world: World, data: st.DataObject) -> None:
    run_calls(world, data.draw(st.lists(calls(world, frozenset({"id", "token"})), min_size=1, max_size=4)))


policy_values = st.one_of(
    st.integers(-2, 1002),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(ODD_NUMBERS),
    st.sampled_from([1.0, 2.0, 3.0, 1000.0, 1e1, 2e0, 0.5, True, "3", None, [], {}]),
)
hostile_policies = st.fixed_dictionaries(
    {},
    optional={
        "max_attempts": policy_values,
        "base_seconds": policy_values,
        "max_seconds": policy_values,
        "jitter": policy_values,
        "backoff": st.sampled_from(["fixed", "exponential", "", None, 1]),
    },
)


@FUZZ
@given(
    policy=hostile_policies,
    step_policy=st.one_of(st.none(), hostile_policies),
    transient=st.booleans(),
    retry_after=st.sampled_from([None, timedelta(0)]),
)
def test_hostile_retry_policies(
    world: World,
    policy: dict[str, Any],
    step_policy: dict[str, Any] | None,
    transient: bool,
    retry_after: timedelta | None,
) -> None:
    """A retry policy is accepted whole or refused with 22023; once accepted, a worker's whole cycle under it
    (fail, retry, acquire again, until it gives up) works: no error from inside the engine later."""
    conn = world.conn
    saved = (dict(world.shadow.success), set(world.shadow.succeeded_runs))
    with conn.transaction(force_rollback=True):
        note(f"policy={policy!r} step_policy={step_policy!r}")
        try:
            with conn.transaction():
                conn.execute("select pgqrs.create_workflow('fz_policy', %s)", (Jsonb(policy),))
        except psycopg.Error as exc:
            assert allowed(exc, "create_workflow") == "22023"
            return
        world.shadow.note_policy("fz_policy", policy, world.shadow.wf_max)
        worker = one(conn, "select pgqrs.register_worker('fz_pw', 'h', 1, 'fz_policy')")[0]
        run = one(conn, "select run_id from pgqrs.trigger('fz_policy', '{}')")[0]
        for _ in range(12):  # at most 1000 attempts are allowed, but a handful shows the cycle
            rows = conn.execute(
                "select lease_token from pgqrs.dequeue('fz_policy', %s, 1, '1 hour')", (worker,)
            ).fetchall()
            if not rows:
                conn.execute(
                    "update pgqrs.messages set visible_at = pgqrs.now() where message_id = %s", (run,)
                )
                continue
            token = rows[0][0]
            try:
                with conn.transaction():
                    status = one(
                        conn, "select status from pgqrs.acquire_step(%s, 'a', %s, 'infinity')", (run, token)
                    )[0]
            except psycopg.Error as exc:
                assert allowed(exc, "acquire_step") == "QR007"
                conn.execute("select pgqrs.fail_run(%s, %s, '{}')", (run, token))
                break
            assert status == "EXECUTE"
            try:
                with conn.transaction():
                    outcome = one(
                        conn,
                        "select run_status from pgqrs.fail_step(%s, 'a', %s, '{}', %s, %s, %s)",
                        (
                            run,
                            token,
                            transient,
                            retry_after,
                            Jsonb(step_policy) if step_policy is not None else None,
                        ),
                    )[0]
            except psycopg.Error as exc:
                assert step_policy is not None and allowed(exc, "fail_step") == "22023"
                break
            if step_policy is not None:
                world.shadow.note_policy((run, "a"), step_policy, world.shadow.step_max)
            if outcome == "ERROR":
                break
        problems = consistency_problems(conn, world.shadow)
        assert problems == [], problems
    world.shadow.success, world.shadow.succeeded_runs = saved


def test_every_public_function_is_fuzzed(world: World) -> None:
    names = {f.name for f in world.functions}
    expected = {
        "create_workflow",
        "trigger",
        "trigger_batch",
        "register_worker",
        "dequeue",
        "heartbeat",
        "acquire_step",
        "complete_step",
        "fail_step",
        "pause_step",
        "update_step",
        "resume_run",
        "complete_run",
        "fail_run",
        "release_run",
        "retry_run",
        "archive",
        "run_status",
        "run_steps",
        "queue_channel",
        "stop_worker",
    }
    assert expected <= names
    # every function with parameters takes part in at least one property
    for fn in world.functions:
        assert not fn.params or any(kind_of(p, t) != "other" for p, t in fn.params), fn


def test_nul_in_text_is_refused_before_it_reaches_the_server(world: World) -> None:
    with pytest.raises(psycopg.DataError, match="NUL"):
        world.conn.execute("select * from pgqrs.run_status(%s::bigint)", ("1\x00",))


# --- the stateful machine ---------------------------------------------------------------------------------

_machines = itertools.count(1)
MACHINE: dict[str, Any] = {}  # the connection the machines share (set by the test below)

step_ids = st.sampled_from(["a", "b", "c"])
small_json = st.one_of(st.integers(-3, 3), st.sampled_from([None, "x", {"k": [1, 2]}, 1e308, -0.0, 2**70]))
bogus_runs = st.sampled_from([0, -1, 2**63 - 1, 999_999_999])
bogus_tokens = st.uuids()
policies = st.sampled_from(
    [
        None,
        {"max_attempts": 1},
        {"max_attempts": 2.0},
        {"max_attempts": 2, "backoff": "fixed", "base_seconds": 10, "max_seconds": 10},
        {"max_attempts": 3, "base_seconds": 0, "max_seconds": 0},
        {"max_attempts": 4, "jitter": 1},
    ]
)
CLOCK_STEPS = [1, 29, 31, 61, 3_601, 86_401, 2 * 86_400 + 1]


class EngineMachine(RuleBasedStateMachine):
    """Random orders of calls on one prefix's workflows, with a moving clock. After each call: fencing
    (a write succeeds only under the current lease, and a held lease is never refused as lost), a step
    SUCCESS never executed again nor changed, finished runs stay finished, and the consistency check."""

    runs = Bundle("runs")
    leases = Bundle("leases")
    workers = Bundle("workers")

    def __init__(self) -> None:
        super().__init__()
        self.conn: Conn = MACHINE["conn"]
        self.shadow = Shadow()
        self.prefix = f"m{next(_machines)}_"
        self.clock = datetime(2030, 1, 1, tzinfo=UTC)
        self.set_clock()
        self.wfs = [self.prefix + "a", self.prefix + "b"]

    # helpers
    def set_clock(self) -> None:
        self.conn.execute("select set_config('pgqrs.now', %s, false)", (self.clock.isoformat(),))

    def call(self, query: str, params: tuple[Any, ...]) -> tuple[list[tuple[Any, ...]] | None, str | None]:
        note(f"{query} {describe(params)}")
        fn = m[1] if (m := re.search(r"pgqrs\.(\w+)\(", query)) else query
        try:
            rows = self.conn.execute(query, params).fetchall()
        except psycopg.Error as exc:
            code = allowed(exc, query)
            note(f"  -> {code} {exc.diag.message_primary}")
            self.outcome(f"{fn} -> {code}")
            return None, code
        note(f"  -> {describe(rows)}")
        first = rows[0][0] if rows and rows[0] and isinstance(rows[0][0], str | bool) else "ok"
        self.outcome(f"{fn} -> {first}")
        return rows, None

    def outcome(self, what: str) -> None:
        event(what)
        MACHINE["outcomes"][what] += 1

    def lease_held(self, run: int, token: Any) -> bool:
        row = self.conn.execute(
            "select m.lease_token = %s and m.visible_at > pgqrs.now() from pgqrs.messages as m"
            " where m.message_id = %s",
            (token, run),
        ).fetchone()
        return bool(row and row[0])

    def fenced(self, run: int, token: Any, query: str, params: tuple[Any, ...]) -> tuple[Any, str | None]:
        """A worker write: it may succeed only under the current lease; a held lease is never 'lost'."""
        held = self.lease_held(run, token)
        rows, code = self.call(query, params)
        if code is None:
            assert held, f"{query} succeeded without holding the lease of run {run}"
        elif code == "QR004":
            assert not held, f"{query} refused a held lease of run {run}"
        elif not held:
            assert code in ("QR002", "QR003", "22023"), f"{query} without the lease raised {code}"
        return rows, code

    def step_success(self, run: int, step: str) -> Any:
        row = self.conn.execute(
            "select value from pgqrs.steps where run_id = %s and step_id = %s and status = 'SUCCESS'",
            (run, step),
        ).fetchone()
        return row

    # operations, each with its oracle; the rules below combine them
    def acquire(self, run: int, token: Any, step: str, current: int | None) -> str | None:
        when = self.clock + timedelta(seconds=current) if current else None
        before = self.conn.execute(
            "select s.status, s.attempt, greatest((w.retry_policy ->> 'max_attempts')::numeric,"
            " s.max_attempts) from pgqrs.steps as s join pgqrs.runs as r using (run_id)"
            " join pgqrs.workflows as w using (workflow_id) where s.run_id = %s and s.step_id = %s",
            (run, step),
        ).fetchone()
        rows, code = self.fenced(
            run,
            token,
            "select status, value from pgqrs.acquire_step(%s, %s, %s, %s)",
            (run, step, token, when),
        )
        if not rows:
            return None
        status, value = rows[0]
        recorded = self.step_success(run, step)
        if status == "EXECUTE":
            assert (run, step) not in self.shadow.success, f"step {run}/{step} succeeded, executes again"
            if before and before[0] == "ERROR":
                assert before[1] < before[2], f"step {run}/{step} executes after {before[1]} of {before[2]}"
        elif status == "SKIPPED":
            assert recorded is not None and recorded[0] == value
        return str(status)

    def complete_step_(self, run: int, token: Any, step: str, value: Any) -> None:
        prior = self.step_success(run, step)
        rows, code = self.fenced(
            run, token, "select pgqrs.complete_step(%s, %s, %s, %s)", (run, step, token, Jsonb(value))
        )
        if rows is not None:
            assert rows[0][0] == (prior is None), "complete_step: true iff the success is new"
        if code == "QR005":
            assert prior is not None

    def fail_step_(
        self, run: int, token: Any, step: str, transient: bool, retry_after: Any, policy: Any
    ) -> None:
        prior = self.step_success(run, step)
        rows, code = self.fenced(
            run,
            token,
            "select run_status from pgqrs.fail_step(%s, %s, %s, '{\"e\": 1}', %s, %s, %s)",
            (run, step, token, transient, retry_after, Jsonb(policy) if policy else None),
        )
        if code is None:
            assert prior is None, "fail_step after success"
            if policy:
                self.shadow.note_policy((run, step), policy, self.shadow.step_max)
        elif code == "QR005":
            assert prior is not None

    def run_op(self, run: int, token: Any, op: str, value: Any, step: str = "p") -> None:
        if op == "complete_run":
            self.fenced(run, token, "select pgqrs.complete_run(%s, %s, %s)", (run, token, Jsonb(value)))
        elif op == "fail_run":
            self.fenced(run, token, 'select pgqrs.fail_run(%s, %s, \'{"e": "run"}\')', (run, token))
        elif op == "release_run":
            self.fenced(run, token, "select pgqrs.release_run(%s, %s)", (run, token))
        elif op == "pause":
            self.fenced(
                run,
                token,
                "select status from pgqrs.pause_step(%s, %s, %s, %s)",
                (run, step, token, value if isinstance(value, timedelta) else None),
            )
        # "crash": nothing, the lease runs out

    # rules
    @initialize(target=workers, policy=policies, policy_b=policies)
    def define(self, policy: Any, policy_b: Any) -> Any:
        for wf, p in zip(self.wfs, (policy, policy_b), strict=True):
            self.call("select workflow_id from pgqrs.create_workflow(%s, %s)", (wf, Jsonb(p) if p else None))
            self.shadow.note_policy(wf, p or {"max_attempts": 3}, self.shadow.wf_max)
        rows, _ = self.call("select pgqrs.register_worker(%s, 'h', 1, %s)", (self.prefix + "w", self.wfs[0]))
        assert rows is not None
        return rows[0][0]

    @rule(wf=st.integers(0, 1), policy=policies)
    def redefine(self, wf: int, policy: Any) -> None:
        rows, code = self.call(
            "select workflow_id from pgqrs.create_workflow(%s, %s)",
            (self.wfs[wf], Jsonb(policy) if policy else None),
        )
        if code is None and policy:
            self.shadow.note_policy(self.wfs[wf], policy, self.shadow.wf_max)

    @rule(target=workers, wf=st.integers(0, 1), name=st.sampled_from(["w", "w2"]))
    def register(self, wf: int, name: str) -> Any:
        rows, _ = self.call(
            "select pgqrs.register_worker(%s, 'h', 1, %s)", (self.prefix + name, self.wfs[wf])
        )
        return rows[0][0] if rows else multiple()

    @rule(
        target=runs,
        wf=st.integers(0, 1),
        payload=json_objects,
        key=st.sampled_from([None, None, "k1", "k2"]),
        delay=st.sampled_from([None, None, timedelta(0), timedelta(seconds=30), timedelta(seconds=-1)]),
        n=st.sampled_from([0, 1, 1, 1, 3]),
    )
    def trigger(self, wf: int, payload: Any, key: Any, delay: Any, n: int) -> Any:
        if n == 1:
            rows, _ = self.call(
                "select run_id from pgqrs.trigger(p_workflow => %s, p_input => %s, p_idempotency_key => %s,"
                " p_delay => %s::interval)",
                (self.wfs[wf], Jsonb(payload), key, delay),
            )
        else:
            rows, _ = self.call(
                "select run_id from pgqrs.trigger_batch(%s, %s)",
                (self.wfs[wf], Jsonb([{"i": i} for i in range(n)])),
            )
        return multiple(*(r[0] for r in rows or []))

    @rule(
        target=leases,
        worker=workers,
        wf=st.sampled_from([0, 0, 1]),
        batch=st.sampled_from([1, 1, 1, 2, 0]),
        visibility=st.sampled_from([timedelta(seconds=30), timedelta(seconds=30), timedelta(hours=2)]),
        script=st.lists(
            st.tuples(
                st.sampled_from(
                    [
                        "step_ok",
                        "step_ok",
                        "step_fail",
                        "step_fail_permanent",
                        "step_only_acquire",
                        "complete_run",
                        "fail_run",
                        "release_run",
                        "pause",
                        "crash",
                    ]
                ),
                step_ids,
                small_json,
                policies,
                st.sampled_from([None, timedelta(0), timedelta(seconds=20)]),
            ),
            max_size=5,
        ),
    )
    def work(self, worker: int, wf: int, batch: int, visibility: timedelta, script: list[Any]) -> Any:
        """One worker iteration: dequeue, then a script of step and run operations on each leased run."""
        rows, _ = self.call(
            "select run_id, lease_token, steps from pgqrs.dequeue(%s, %s, %s, %s)",
            (self.wfs[wf], worker, batch, visibility),
        )
        for run, token, steps in rows or []:
            assert self.lease_held(run, token)
            for step, entry in steps.items():  # the journal a worker replays from
                if entry["status"] == "SUCCESS":
                    assert self.shadow.success.get((run, step), entry["value"]) == entry["value"]
            for op, step, value, policy, retry_after in script:
                if op.startswith("step_"):
                    status = self.acquire(run, token, step, None)
                    if status != "EXECUTE" or op == "step_only_acquire":
                        continue
                    if op == "step_ok":
                        self.complete_step_(run, token, step, value)
                    else:
                        self.fail_step_(run, token, step, op == "step_fail", retry_after, policy)
                else:
                    self.run_op(run, token, op, timedelta(seconds=60) if op == "pause" else value, step)
        return multiple(*((r[0], r[1]) for r in rows or []))

    @rule(
        lease=leases,
        step=step_ids,
        op=st.sampled_from(["acquire", "complete", "fail", "fail_permanent"]),
        current=st.sampled_from([None, None, 3_600, 10 * 86_400]),
        value=small_json,
        policy=policies,
        retry_after=st.sampled_from([None, timedelta(0), timedelta(seconds=20)]),
    )
    def stale_or_late_step_write(
        self,
        lease: tuple[int, Any],
        step: str,
        op: str,
        current: int | None,
        value: Any,
        policy: Any,
        retry_after: Any,
    ) -> None:
        """A step call with a lease seen earlier: still held, expired, taken over or released."""
        run, token = lease
        if op == "acquire":
            self.acquire(run, token, step, current)
        elif op == "complete":
            self.complete_step_(run, token, step, value)
        else:
            self.fail_step_(run, token, step, op == "fail", retry_after, policy)

    @rule(
        lease=leases,
        op=st.sampled_from(["complete_run", "fail_run", "release_run", "pause", "heartbeat", "forged"]),
        value=small_json,
        worker=workers,
        timeout=st.sampled_from([None, timedelta(seconds=60), timedelta(days=1)]),
        step=step_ids,
    )
    def stale_or_late_run_write(
        self, lease: tuple[int, Any], op: str, value: Any, worker: int, timeout: Any, step: str
    ) -> None:
        run, token = lease
        if op == "heartbeat":
            held = self.lease_held(run, token)
            owner = one(
                self.conn,
                "select coalesce((select worker_id from pgqrs.messages where message_id = %s), -1)",
                (run,),
            )[0]
            rows, _ = self.call("select held from pgqrs.heartbeat(%s, array[%s]::uuid[])", (worker, token))
            if rows is not None:
                assert rows[0][0] == (held and owner == worker)
        elif op == "forged":
            forged = uuid.uuid4()
            _, code = self.fenced(run, forged, "select pgqrs.complete_step(%s, 'a', %s, '1')", (run, forged))
            assert code is not None, "a forged token was accepted"
        else:
            self.run_op(run, token, op, timeout if op == "pause" else value, step)

    @rule(
        run=st.one_of(runs, runs, bogus_runs),
        op=st.sampled_from(
            ["update_step", "update_step", "resume_run", "resume_run", "retry_run", "archive", "read"]
        ),
        step=step_ids,
        status=st.sampled_from(["SUCCESS", "SUCCESS", "ERROR", "PAUSED", "RUNNING", "DONE"]),
        value=small_json,
        worker=st.one_of(st.none(), workers, st.just(-5)),
    )
    def from_outside(self, run: int, op: str, step: str, status: str, value: Any, worker: Any) -> None:
        """Calls that need no lease: webhooks, operators, status readers."""
        if op == "update_step":
            prior = self.step_success(run, step)
            rows, code = self.call(
                "select status from pgqrs.update_step(%s, %s, %s, %s)", (run, step, status, Jsonb(value))
            )
            if code is None:
                assert prior is None or status == "SUCCESS", "update_step overwrote a SUCCESS"
            elif code == "QR005":
                assert prior is not None
        elif op == "resume_run":
            self.call("select pgqrs.resume_run(%s)", (run,))
        elif op == "retry_run":
            self.call("select pgqrs.retry_run(%s)", (run,))
        elif op == "archive":
            rows, code = self.call("select pgqrs.archive(%s, %s)", (run, worker))
            if code is None:
                status_now = one(self.conn, "select status from pgqrs.runs where run_id = %s", (run,))[0]
                assert status_now in ("SUCCESS", "ERROR"), f"archive of a {status_now} run succeeded"
        else:
            self.call("select status from pgqrs.run_status(%s)", (run,))
            self.call("select step_id from pgqrs.run_steps(%s)", (run,))

    @rule(worker=st.one_of(workers, workers, workers, st.just(-1)), stop=st.booleans())
    def worker_status(self, worker: int, stop: bool) -> None:
        if stop:
            self.call("select pgqrs.stop_worker(%s)", (worker,))
        else:
            self.call("select count(*) from pgqrs.worker_status where worker_id = %s", (worker,))

    @rule(seconds=st.sampled_from(CLOCK_STEPS))
    def advance_clock(self, seconds: int) -> None:
        self.clock += timedelta(seconds=seconds)
        self.set_clock()
        note(f"clock -> {self.clock.isoformat()}")

    def teardown(self) -> None:
        # the final whole-database check needs every machine's policy history (redefine may lower a policy)
        union: Shadow = MACHINE["shadow"]
        union.wf_max.update(self.shadow.wf_max)
        union.step_max.update(self.shadow.step_max)

    @invariant()
    def consistent(self) -> None:
        problems = consistency_problems(self.conn, self.shadow, self.prefix + "%")
        assert problems == [], problems


@pytest.fixture(scope="module")
def machine_dsn(pg_dsn: str) -> Iterator[str]:
    """The machines' own database: their clock and workflows stay out of the other properties' way."""
    name = f"fuzz_machine_{os.getpid()}"
    yield fresh_db(name, pg_dsn)
    if not os.environ.get("PGQRS_KEEP_DBS"):
        drop_db(name, pg_dsn)


def test_engine_state_machine(machine_dsn: str) -> None:
    with psycopg.connect(machine_dsn, autocommit=True) as conn:
        MACHINE.update(conn=conn, outcomes=Counter(), shadow=Shadow())
        try:
            runner = EngineMachine.TestCase
            runner.settings = settings(FUZZ, max_examples=MAX_EXAMPLES, stateful_step_count=50)
            runner().runTest()
            # and the whole database, all machines together
            assert consistency_problems(conn, MACHINE["shadow"]) == []
            print(
                "machine outcomes:", dict(sorted(MACHINE["outcomes"].items()))
            )  # pytest -s: what was covered
        finally:
            MACHINE.clear()


# --- the Python entry points ------------------------------------------------------------------------------


class Loop:
    """One event loop and one Store for all examples (async entry points, sync hypothesis)."""

    def __init__(self, dsn: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.store: pgqrs.Store = self.run(pgqrs.connect(dsn, max_size=2))

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.run(self.store.close())
        self.loop.close()


@pytest.fixture(scope="module")
def py(fuzz_dsn: str, world: World) -> Iterator[Loop]:
    loop = Loop(fuzz_dsn)
    yield loop
    loop.close()


def expect_documented(fn: Callable[[], Any], what: str) -> Any:
    """Call an entry point; it returns, or raises a PgqrsError, a psycopg error with an allowed SQLSTATE, or a
    plain TypeError / ValueError from the Python layer's own argument checks (not a subclass such as
    RecursionError's cousins, UnicodeEncodeError or JSONDecodeError)."""
    try:
        return fn()
    except pgqrs.PgqrsError:
        return None
    except psycopg.Error as exc:
        allowed(exc, what)
        return None
    except (TypeError, ValueError) as exc:
        # argument checks of the Python layer: a run id of the wrong type (as_id), a workflow without a name
        assert type(exc) in (TypeError, ValueError), f"{what}: {exc!r}"
        return None


def deep_list(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


python_values = st.one_of(
    json_values,
    st.sampled_from([float("nan"), float("inf"), -float("inf"), {1, 2}, object(), b"bytes", {("t",): 1}]),
    st.integers(10, 5_000).map(deep_list),
)
python_ids = st.one_of(
    st.integers(-(2**70), 2**70), st.sampled_from([0, -1, 2**63 - 1, "1", 1.5, None, True])
)
python_seconds = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**64), 2**64),
    st.timedeltas(),
    st.sampled_from([0, -1, 1e308, 0.0001]),
)


@FUZZ
@given(data=st.data())
def test_python_entry_points(py: Loop, world: World, data: st.DataObject) -> None:
    store = py.store
    draw = data.draw
    name = draw(st.one_of(hostile_text.filter(lambda s: "\x00" not in s), st.sampled_from(world.workflows)))
    value = draw(python_values)
    ident = draw(st.one_of(python_ids, st.sampled_from(world.runs)))
    choice = draw(st.integers(0, 9))
    note(f"choice={choice} name={describe(name)} value={describe(value)} id={ident!r}")
    if choice == 0:
        policy = value if isinstance(value, dict) else None
        if expect_documented(lambda: py.run(store.create_workflow(name, policy)), "create_workflow"):
            world.shadow.note_policy(name, policy, world.shadow.wf_max)
    elif choice == 1:
        expect_documented(
            lambda: py.run(pgqrs.workflow().name(name).store(store).create()), "workflow().create"
        )
    elif choice == 2:
        delay = draw(python_seconds)
        key = draw(st.one_of(st.none(), hostile_text.filter(lambda s: "\x00" not in s)))
        expect_documented(
            lambda: py.run(store.trigger(name, value, idempotency_key=key, delay=delay)), "store.trigger"
        )
    elif choice == 3:
        expect_documented(
            lambda: py.run(pgqrs.workflow(name).trigger(value).execute(store)), "workflow().trigger"
        )
    elif choice == 4:
        expect_documented(lambda: py.run(pgqrs.run().status(ident).store(store).get()), "run().status")
    elif choice == 5:
        status = draw(st.one_of(st.sampled_from(["SUCCESS", "ERROR", pgqrs.StepStatus.PAUSED]), hostile_text))
        step = draw(st.one_of(st.sampled_from(["a", "b"]), hostile_text.filter(lambda s: "\x00" not in s)))
        expect_documented(lambda: py.run(store.update_step(ident, step, status, value)), "store.update_step")
    elif choice == 6:
        expect_documented(lambda: py.run(store.resume_run(ident)), "store.resume_run")
        expect_documented(lambda: py.run(store.retry_run(ident)), "store.retry_run")
        expect_documented(lambda: py.run(store.steps(ident)), "store.steps")
    elif choice == 7:
        port = draw(python_ids)
        consumer = expect_documented(
            lambda: py.run(pgqrs.consumer(f"pyfz_{abs(hash(name)) % 5}", port, name).create(store)),
            "consumer().create",
        )
        if consumer is not None:
            batch = draw(python_ids)
            expect_documented(lambda: py.run(consumer.dequeue(batch_size=batch)), "consumer.dequeue")
            expect_documented(lambda: py.run(consumer.archive(ident)), "consumer.archive")
    elif choice == 8:
        expect_documented(
            lambda: py.run(pgqrs.run().status(ident).store(store).result(timeout=0.01)), "run().result"
        )
    else:
        dsn = draw(
            st.sampled_from(
                [
                    "",
                    "host=/nonexistent-pgqrs dbname=x connect_timeout=1",
                    "not a dsn",
                    "postgresql://",
                    "host='unterminated",
                    "dbname=pgqrs_no_such_db_fz",
                ]
            )
        )
        try:
            py.run(
                pgqrs.connect(
                    dsn if "dbname=" not in dsn or "/" in dsn else f"{world.conn.info.dsn} {dsn}", max_size=1
                )
            )
        except psycopg.Error:
            pass  # a bad DSN passes through as psycopg's own error (DESIGN §5)
    problems = consistency_problems(world.conn, world.shadow, "%")
    assert problems == [], problems


def test_fuzzed_json_round_trips(py: Loop, world: World) -> None:
    """Odd numbers and unicode keys come back as the same JSON values. jsonb keeps numbers as PostgreSQL
    numeric: the same number, not always the same spelling (1e308 reads back as the integer 10**308, -0.0 as
    0.0), so numbers are compared as decimals."""
    payload = {"ключ": 1e308, "neg": -0.0, "big": 2**70, "tiny": 5e-324, "nul": None, "🙂": ["é", {"": 0.1}]}
    handle = py.run(py.store.trigger("fz", payload))
    info = py.run(pgqrs.run().status(handle).store(py.store).get())

    def exact(value: Any) -> Any:
        return json.loads(json.dumps(value), parse_float=Decimal, parse_int=Decimal)

    assert exact(info.input) == exact(payload)


def test_python_values_json_cannot_hold_are_not_serialisable(py: Loop) -> None:
    """Found by test_python_entry_points: a value nested deeper than Python's recursion limit escaped as a raw
    RecursionError; it is NotSerializable like NaN or a set, and nothing is sent."""
    for value in (deep_list(5_000), {"x": float("nan")}, {"s": {1}}, {"o": object()}):
        with pytest.raises(pgqrs.NotSerializable):
            py.run(py.store.trigger("fz", value))
        with pytest.raises(pgqrs.NotSerializable):
            py.run(py.store.update_step(1, "a", "SUCCESS", value))


def test_python_integer_arguments_keep_their_sql_type(py: Loop, world: World) -> None:
    """Found by test_python_entry_points: psycopg sends a large Python int as int8 or numeric, which
    matched no pgqrs function (42883, undocumented). With explicit casts a huge id is an unknown run, and a
    value beyond the parameter's type is PostgreSQL's 22003."""
    store = py.store
    with pytest.raises(pgqrs.UnknownRun):
        py.run(pgqrs.run().status(2**62).store(store).get())
    with pytest.raises(psycopg.errors.NumericValueOutOfRange):
        py.run(pgqrs.run().status(2**70).store(store).get())
    with pytest.raises(psycopg.errors.NumericValueOutOfRange):
        py.run(pgqrs.consumer("pyfz_port", 2**40, "fz").create(store))
    consumer = py.run(pgqrs.consumer("pyfz_batch", 8080, "fz").create(store))
    with pytest.raises(psycopg.errors.NumericValueOutOfRange):
        py.run(consumer.dequeue(batch_size=2**40))
    with pytest.raises(pgqrs.InvalidArgument):
        py.run(consumer.dequeue(batch_size=2**20))
    with pytest.raises(pgqrs.UnknownRun):
        py.run(consumer.archive(2**62))


def test_integral_float_max_attempts_is_an_integer(world: World) -> None:
    """Found by test_hostile_retry_policies: {"max_attempts": 1.0} passed the policy check, and every later
    '1.0'::integer (fail_step, acquire_step) failed with 22P02 from inside the engine. The policy is now
    stored with an integer, and the readers also accept what schema version 1 may have stored."""
    conn = world.conn
    with conn.transaction(force_rollback=True):
        stored = one(
            conn, "select (pgqrs.create_workflow('fz_float', '{\"max_attempts\": 2.0}')).retry_policy"
        )[0]
        assert re.search(r'"max_attempts": 2[,}]', stored)
        # a policy stored by version 1, before the fix
        conn.execute(
            "update pgqrs.workflows set retry_policy = retry_policy || '{\"max_attempts\": 2.0}'"
            " where name = 'fz_float'"
        )
        worker = one(conn, "select pgqrs.register_worker('fz_fw', 'h', 1, 'fz_float')")[0]
        run = one(conn, "select run_id from pgqrs.trigger('fz_float', '{}')")[0]
        outcomes = []
        for _ in range(2):
            token = one(conn, "select lease_token from pgqrs.dequeue('fz_float', %s)", (worker,))[0]
            assert (
                one(conn, "select status from pgqrs.acquire_step(%s, 'a', %s, 'infinity')", (run, token))[0]
                == "EXECUTE"
            )
            outcomes.append(
                one(
                    conn,
                    "select run_status from pgqrs.fail_step(%s, 'a', %s, '{}', true, '0 s')",
                    (run, token),
                )[0]
            )
        assert outcomes == ["QUEUED", "ERROR"]
        # a per-call policy with an integral float
        run = one(conn, "select run_id from pgqrs.trigger('fz_float', '{}')")[0]
        token = one(conn, "select lease_token from pgqrs.dequeue('fz_float', %s)", (worker,))[0]
        assert (
            one(
                conn,
                "select run_status from pgqrs.fail_step(%s, 'b', %s, '{}', true, null,"
                " '{\"max_attempts\": 1.0}')",
                (run, token),
            )[0]
            == "ERROR"
        )


def test_pausing_a_step_that_waited_for_a_retry_clears_its_retry_time(world: World) -> None:
    """A step failed transiently (ERROR, retry_at), delivered again and paused without acquire_step first kept
    its stale retry_at while PAUSED (the consistency check's `retry_at only on ERROR`); now cleared."""
    conn = world.conn
    with conn.transaction(force_rollback=True):
        conn.execute("select pgqrs.create_workflow('fz_pause')")
        worker = one(conn, "select pgqrs.register_worker('fz_pw2', 'h', 1, 'fz_pause')")[0]
        run = one(conn, "select run_id from pgqrs.trigger('fz_pause', '{}')")[0]
        token = one(conn, "select lease_token from pgqrs.dequeue('fz_pause', %s)", (worker,))[0]
        conn.execute("select pgqrs.fail_step(%s, 'a', %s, '{}', true, '0 s')", (run, token))
        token = one(conn, "select lease_token from pgqrs.dequeue('fz_pause', %s)", (worker,))[0]
        assert (
            one(conn, "select status from pgqrs.pause_step(%s, 'a', %s, '1 h')", (run, token))[0] == "PAUSED"
        )
        assert one(conn, "select status, retry_at from pgqrs.steps where run_id = %s", (run,)) == (
            "PAUSED",
            None,
        )
        assert consistency_problems(conn, world.shadow) == []
