"""The engine as a hypothesis state machine (issue 8): calls to the public functions in random order with
mostly valid, sometimes bogus arguments, moving the clock, checking fencing, the step SUCCESS shadow map and
terminal states after every call, and the consistency check (tests/fuzz_checks.py) at the end.
"""

from __future__ import annotations

import itertools
import os
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import event, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, multiple, rule
from psycopg.types.json import Jsonb

from conftest import drop_db, fresh_db
from fuzz_checks import FUZZ, MAX_EXAMPLES, Conn, Shadow, allowed, consistency_problems
from fuzz_world import describe, json_objects, one

pytestmark = pytest.mark.timeout(600)

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
