"""The inputs of the fuzz tests (tests/test_fuzz_*.py): hostile values by kind (names, JSON, durations /
times / sizes, ids / tokens) and the world they are called in: every public function of schema pgqrs,
discovered from the catalog (so a new function is fuzzed without editing the tests), with a workflow, worker,
runs and leases to aim at.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from hypothesis import note
from hypothesis import strategies as st
from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg.types.string import TextLoader

from fuzz_checks import Conn, Shadow, allowed, consistency_problems

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
hostile_ids = st.one_of(
    st.none(),
    st.lists(st.integers(-(2**63), 2**63 - 1), max_size=4),
    st.sampled_from(["{bad}", "{}", "{NULL}", "{1,NULL}", "{{1},{2}}", "not an array", "{1.5}"]),
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
        "bigint[]": "ids",
        "boolean": "bool",
        "text[]": "names",
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
        "p_from_step": st.sampled_from([None, "a", "b", "c", "d"]),
        "p_idempotency_key": st.sampled_from([None, "key-1", "key-2"]),
        "p_status": st.sampled_from(["RUNNING", "SUCCESS", "ERROR", "PAUSED"]),
        "p_input": json_values.map(Jsonb),  # any JSON value since schema version 7
        "p_inputs": st.lists(json_values, min_size=1, max_size=3).map(Jsonb),
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
        "p_until": st.sampled_from([datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)]),
        "p_key": st.sampled_from(["k1", "k2"]),
        "p_payload": json_values.map(Jsonb),
        "p_topic": st.sampled_from(["t1", "t2"]),
        "p_message": json_values.map(Jsonb),
        "p_cron": st.sampled_from(["* * * * *", "*/15 9-17 * * MON-FRI", "30 2 29 2 *"]),
        "p_timezone": st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]),
        "p_catch_up": st.sampled_from(["latest", "all"]),
        "p_enabled": st.booleans(),
        "p_after": st.sampled_from([datetime(2026, 3, 8, 6, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC)]),
        "p_children": st.lists(st.sampled_from(world.runs), min_size=1, max_size=3),
        "p_max_concurrency": st.sampled_from([None, 1, 2, 5]),
        "p_max_concurrency_per_key": st.sampled_from([None, 1, 3]),
        "p_rate_limit": st.sampled_from([None, Jsonb({"limit": 5, "period": "1 minute"})]),
        "p_priority": st.integers(-100, 100),
        "p_concurrency_key": st.sampled_from([None, "k1", "k2"]),
        "p_older_than": st.sampled_from([timedelta(days=1), timedelta(microseconds=1)]),
        "p_statuses": st.sampled_from([None, ["SUCCESS"], ["ERROR", "CANCELLED"]]),
        "p_limit": st.sampled_from([1, 10, 10000]),
        "p_dry_run": st.booleans(),
        "p_retention": st.sampled_from([None, timedelta(days=7)]),
        "p_width": st.sampled_from([None, 0, 2, 1000000]),
        "p_version": st.sampled_from([None, "v1", "2024-06-01"]),
        "p_trace_context": st.sampled_from(
            [None, Jsonb({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})]
        ),
        "p_steps": st.one_of(
            st.sampled_from([None, Jsonb([])]),
            st.sampled_from(world.tokens).map(
                lambda t: Jsonb([{"lease_token": str(t), "step_id": "a", "running_for": 1.5}])
            ),
        ),
    }
    assert param in by_name, f"tests/fuzz_world.py: give parameter {param} ({typ}) of {fn} a valid value"
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
    if kind == "ids":
        return st.one_of(hostile_ids, st.lists(st.sampled_from(world.runs), max_size=3))
    if kind == "names":
        return st.one_of(st.none(), st.lists(st.one_of(st.none(), hostile_text), max_size=3))
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
