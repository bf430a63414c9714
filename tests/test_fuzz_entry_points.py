"""Hostile input against every public SQL function and the Python entry points (issue 8), with hypothesis.

Properties (bounded: MAX_EXAMPLES each, tests/fuzz_checks.py):

- hostile values for one kind of parameter at a time (names, JSON, durations / times / sizes, ids / tokens)
  in calls to every public function of schema pgqrs, discovered from the catalog (tests/fuzz_world.py), so a
  new function is fuzzed without editing this file;
- the Python entry points (`pgqrs.connect`, `Store` methods, `workflow().trigger`, `run().status`, consumers).

Every call either succeeds or fails with a SQLSTATE in ALLOWED_SQLSTATES, and after every example the
database passes `consistency_problems` (no message without its run, no finished run with a live message or
lease, attempts within policy, messages and archive disjoint, ...) and no step SUCCESS seen so far changed.
The stateful machine is tests/test_fuzz_machine.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import given, note
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

import pgqrs
from conftest import drop_db, fresh_db
from fuzz_checks import FUZZ, allowed, consistency_problems
from fuzz_world import (
    ODD_NUMBERS,
    World,
    build_world,
    calls,
    describe,
    hostile_text,
    json_values,
    kind_of,
    one,
    run_calls,
)

pytestmark = pytest.mark.timeout(600)


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
        "lease_run",
        "release_worker_leases",
    }
    assert expected <= names
    # every function with parameters takes part in at least one property
    for fn in world.functions:
        assert not fn.params or any(kind_of(p, t) != "other" for p, t in fn.params), fn


def test_nul_in_text_is_refused_before_it_reaches_the_server(world: World) -> None:
    with pytest.raises(psycopg.DataError, match="NUL"):
        world.conn.execute("select * from pgqrs.run_status(%s::bigint)", ("1\x00",))


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


def test_every_documented_engine_code_is_an_allowed_outcome(db: str) -> None:
    """Regression: hypothesis drew `wait_children(run, 'w', token, [run])`, which raises QR011 (the run is not
    a child of the waiting run: documented, docs/errors.md), and the fuzz called it a bug because its list of
    codes was written by hand before QR011 existed. The codes now come from pgqrs.errors.REGISTRY."""
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("select pgqrs.create_workflow('kid')")
        worker = one(conn, "select pgqrs.register_worker('kw', 'h', 1, 'kid')")[0]
        conn.execute("select pgqrs.trigger('kid')")
        run, token = conn.execute(
            "select run_id, lease_token from pgqrs.dequeue('kid', %s)", (worker,)
        ).fetchone()
        with pytest.raises(psycopg.Error) as info:
            conn.execute(
                "select * from pgqrs.wait_children(%s, 'w', %s, array[%s::bigint])", (run, token, run)
            )
    assert allowed(info.value, "wait_children") == "QR011"
