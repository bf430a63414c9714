"""Failover to a standby (issue 22): real worker processes, a real crash of the primary, a real promotion.

A primary and a hot standby (scripts/ha.sh: streaming replication, synchronous or not). 4 worker processes
(tests/ha_worker.py, 4 runs in flight each) drain 1,000 runs while a client keeps triggering and result()
waiters wait; everyone uses the multi-host DSN `host=primary,standby ... target_session_attrs=read-write`. The
primary is crashed (pg_ctl stop -m immediate) a third of the way through, the standby promoted. Then:

- synchronous standby: every trigger that returned exists, every run ends SUCCESS with its output, no step
  ran again unless it was in flight at the crash, the workers and waiters carry on by themselves and are
  woken by NOTIFY again (LISTEN re-established: a new run finishes well within the workers' 30 s poll);
- asynchronous standby: the same, except for the loss window: what the standby had not replayed at the
  crash is gone (the triggers acknowledged in the last moments before it, see docs/reliability.md).

Each prints its figures (time from the crash to the first run finished on the new primary, ...): `pytest -s`.
Run by `make ha-test` (about a minute), which .ci/run runs on both PostgreSQL versions.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

import pgqrs
import pgqrs.sync as pgqrs_sync
from ha_pair import Pair
from worker_procs import WorkerProcs, wait_for

pytestmark = pytest.mark.ha

WORKER = Path(__file__).resolve().parent / "ha_worker.py"
RUNS = 1000
WORKERS = 4
CRASH_AFTER = 300  # runs finished before the standby falls behind and the primary crashes
STALL = 1.0  # seconds the standby's WAL receiver is frozen before the crash
VISIBILITY = 3.0  # the workers' lease (tests/ha_worker.py)
WAITED = range(RUNS - 150, RUNS)  # result() waiters for the last runs: still waiting at the crash
STEPS = ("a", "b", "c")


@pytest.fixture
def make_pair() -> Iterator[Any]:
    pairs: list[Pair] = []

    def start(synchronous: bool) -> Pair:
        pair = Pair(synchronous)
        pair.start()
        pairs.append(pair)
        with psycopg.connect(pair.host_dsn(pair.primary, "postgres"), autocommit=True) as conn:
            conn.execute(f"create database {pair.dsn().split('dbname=')[1].split()[0]}")
        pgqrs.install(pair.dsn())
        return pair

    yield start
    for pair in pairs:
        pair.stop()


class Triggerer(threading.Thread):
    """A client that keeps triggering runs ({"i": i}, idempotency key "t<i>") until stopped, through the
    crash: a trigger that fails is sent again with the same key, so it starts its run exactly once."""

    def __init__(self, dsn: str, first: int) -> None:
        super().__init__(daemon=True)
        self.dsn, self.next = dsn, first
        self.acked: list[tuple[int, int, float]] = []  # (run id, i, when the trigger returned)
        self.failed = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        with pgqrs_sync.connect(self.dsn) as store:
            while not self.stopping.is_set():
                try:
                    handle = store.trigger("ha", {"i": self.next}, idempotency_key=f"t{self.next}")
                except psycopg.OperationalError:
                    self.failed += 1
                    time.sleep(0.02)
                    continue
                self.acked.append((handle.id, self.next, time.time()))
                self.next += 1
                time.sleep(0.01)


@dataclass
class Drain:
    """What happened around the crash."""

    stalled_at: float  # the standby's WAL receiver frozen
    crashed_at: float  # the primary gone
    promoted_at: float
    first_finish_after: float  # seconds from the crash to the first run finished on the new primary
    replay_lag_bytes: int  # WAL the standby had not replayed at the crash
    acked: list[tuple[int, int, float]]
    trigger_failures: int
    results: dict[int, Any]
    runs: dict[int, tuple[str, Any, Any]]  # run id -> (status, input, output) on the new primary
    executions: dict[tuple[int, str], list[tuple[float, str]]] = field(default_factory=dict)
    resent: int = 0  # triggers of the loss window sent again after the failover, and created again


def drain_through_failover(pair: Pair, tmp_path: Path, promote_after: float = 0.0) -> Drain:
    """Drain with 4 workers, a triggering client and result() waiters; a third of the way through, the
    standby's WAL receiver freezes for STALL seconds (a standby behind, as over a slow network), the primary
    crashes, the standby is promoted. After it, the client sends the triggers it got an answer for since the
    freeze once more (same idempotency keys): those the new primary lacks start again."""
    dsn = pair.dsn()
    exec_dir = tmp_path / "executions"
    exec_dir.mkdir()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("select pgqrs.create_workflow('ha')")
        inputs = json.dumps([{"i": i} for i in range(RUNS)])
        first_ids = [r[0] for r in conn.execute("select run_id from pgqrs.trigger_batch('ha', %s)",
                                                (inputs,))]
    workers = WorkerProcs(WORKER, dsn, tmp_path)
    triggerer = Triggerer(dsn, RUNS)
    results: dict[int, Any] = {}
    receiver = None
    try:
        for n in range(WORKERS):
            workers.start(f"ha-{n}", str(exec_dir))
        triggerer.start()
        with pgqrs_sync.connect(dsn) as client, ThreadPoolExecutor(len(WAITED)) as pool:
            waits = {first_ids[i]: pool.submit(pgqrs_sync.run().status(first_ids[i]).store(client).result,
                                               timeout=120) for i in WAITED}
            old = pair.host_dsn(pair.primary)
            wait_for(f"{CRASH_AFTER} runs finished", lambda: finished(old) >= CRASH_AFTER, timeout=60)
            stalled_at = time.time()
            receiver = pair.stall_standby()
            time.sleep(STALL)
            lag = replay_lag(old)
            crashed_at = pair.crash()
            pair.resume_standby(receiver)
            time.sleep(promote_after)  # the time an operator or a failover manager takes
            pair.promote()
            promoted_at = time.time()
            new = pair.host_dsn(pair.standby)
            first = wait_for("a run finished on the new primary", lambda: first_finish(new, crashed_at),
                             timeout=60)
            time.sleep(1.0)  # the client goes on triggering on the new primary
            triggerer.stopping.set()
            triggerer.join(60)
            resent = resend(client, [(i, at) for _id, i, at in triggerer.acked if at >= stalled_at])
            for run_id, future in waits.items():
                results[run_id] = future.result(timeout=120)
            wait_for("every run finished", lambda: unfinished(new) == 0, timeout=120)
            # the workers and this client's result() listener went through the failover
            assert woken_by_notify(client), "a new run waited for a poll: LISTEN was not re-established"
    finally:
        triggerer.stopping.set()
        if receiver is not None:
            pair.resume_standby(receiver)
        workers.close()
    return Drain(stalled_at, crashed_at, promoted_at, first - crashed_at, lag, triggerer.acked,
                 triggerer.failed, results, all_runs(new), executions(exec_dir), resent)


def resend(store: Any, triggers: list[tuple[int, float]]) -> int:
    """Send these triggers again with their idempotency keys: the number the new primary did not have."""
    return sum(store.trigger("ha", {"i": i}, idempotency_key=f"t{i}").created for i, _at in triggers)


def count(dsn: str, query: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def finished(dsn: str) -> int:
    return count(dsn, "select count(*) from pgqrs.runs where status = 'SUCCESS'")


def unfinished(dsn: str) -> int:
    return count(dsn, "select count(*) from pgqrs.runs where status <> 'SUCCESS'")


def replay_lag(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("select pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint"
                           " from pg_stat_replication").fetchone()
        return int(row[0]) if row and row[0] is not None else -1


def first_finish(dsn: str, crashed_at: float) -> float | None:
    """The epoch time of the first run finished after the crash, on the new primary (None before)."""
    try:
        with psycopg.connect(dsn) as conn:
            row = conn.execute("select extract(epoch from min(finished_at))::float8 from pgqrs.runs"
                               " where finished_at > to_timestamp(%s)", (crashed_at,)).fetchone()
    except psycopg.OperationalError:
        return None
    return row[0] if row else None


def woken_by_notify(store: Any) -> bool:
    """Five runs in a row, each triggered and waited for (result()) on `store` after the failover, finish
    within 1.5 s: the idle workers poll every 30 s and the store's result() listener sweeps every 5 s, so only
    NOTIFY on the new primary (the workers' LISTEN and the listener's, both re-established) delivers them
    that fast."""
    for i in range(5):
        started = time.monotonic()
        handle = store.trigger("ha", {"i": 10**6 + i})
        assert pgqrs_sync.run().status(handle).store(store).result(timeout=60)["sq"] == (10**6 + i) ** 2
        if time.monotonic() - started > 1.5:
            return False
    return True


def all_runs(dsn: str) -> dict[int, tuple[str, Any, Any]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("select run_id, status, input, output from pgqrs.runs").fetchall()
    return {run_id: (status, inp, out) for run_id, status, inp, out in rows}


def executions(exec_dir: Path) -> dict[tuple[int, str], list[tuple[float, str]]]:
    """Every step execution the workers recorded (files RUN.STEP.PID.N): (run, step) -> [(start, name)]."""
    found: dict[tuple[int, str], list[tuple[float, str]]] = defaultdict(list)
    for path in exec_dir.iterdir():
        run_id, step_id, _pid, _n = path.name.split(".")
        found[(int(run_id), step_id)].append((float(path.read_text()), path.name))
    return {key: sorted(value) for key, value in found.items()}


def check_outputs(drain: Drain) -> None:
    """Every run on the new primary ended SUCCESS with the output of its own input; each recorded step value
    names an execution that happened; every result() returned its run's output."""
    for run_id, (status, inp, out) in drain.runs.items():
        assert status == "SUCCESS", (run_id, status)
        assert (out["i"], out["sq"]) == (inp["i"], inp["i"] ** 2), (run_id, inp, out)
        for step_id, name in zip(STEPS, out["execs"], strict=True):
            assert name in {n for _t, n in drain.executions[(run_id, step_id)]}, (run_id, step_id, name)
    for run_id, value in drain.results.items():
        assert (value["i"], value["sq"]) == (drain.runs[run_id][1]["i"], drain.runs[run_id][1]["i"] ** 2)


def check_repeats(drain: Drain, lead: float) -> list[tuple[int, str, list[tuple[float, str]]]]:
    """The steps executed more than once. The recorded execution of each step is the last one to start (a
    step whose success is on the new primary never ran again), and an earlier one started from `lead` seconds
    before the standby fell behind to one lease after the crash: the step was in flight then or at the crash
    (a step takes milliseconds), or, with an asynchronous standby, its success was recorded in the loss
    window. (A run delivered before the crash may start its next step body after it, on its unexpired lease,
    before its first call to the new primary: with an asynchronous standby that call may find the lease
    unknown there, and the step runs again on the next delivery.)"""
    found = []
    for run_id, (_status, _inp, out) in drain.runs.items():
        for step_id, recorded in zip(STEPS, out["execs"], strict=True):
            runs_of_step = drain.executions[(run_id, step_id)]
            assert runs_of_step[-1][1] == recorded, f"step {step_id} of run {run_id} ran after its success"
            if len(runs_of_step) > 1:
                found.append((run_id, step_id, runs_of_step))
                assert all(drain.stalled_at - lead <= start <= drain.crashed_at + VISIBILITY
                           for start, _name in runs_of_step[:-1]), (
                    f"step {step_id} of run {run_id} ran again but was not in flight at the crash: "
                    f"{runs_of_step}; the standby fell behind at {drain.stalled_at}, the crash at "
                    f"{drain.crashed_at}")
    return found


def report(title: str, drain: Drain, repeated: list[Any], extra: str = "") -> None:
    print(f"\n{title}: crash -> promoted {drain.promoted_at - drain.crashed_at:.2f} s, crash -> first run "
          f"finished on the new primary {drain.first_finish_after:.2f} s; {len(drain.runs)} runs, "
          f"{len(drain.acked)} triggers acknowledged ({drain.trigger_failures} failed and were sent again), "
          f"{len(drain.results)} result() waiters; {len(repeated)} steps ran twice; the standby "
          f"{drain.replay_lag_bytes} bytes behind at the crash{extra}")


def test_failover_to_a_synchronous_standby_loses_nothing(make_pair: Any, tmp_path: Path) -> None:
    pair = make_pair(synchronous=True)
    drain = drain_through_failover(pair, tmp_path)
    for run_id, i, _at in drain.acked:  # every trigger that returned exists, with its input, as it was
        assert drain.runs[run_id][1] == {"i": i}, (run_id, i)
    assert drain.resent == 0
    assert len(drain.runs) == RUNS + len(drain.acked) + 5  # and nothing else (the 5: woken_by_notify)
    check_outputs(drain)
    repeated = check_repeats(drain, lead=2.0)
    assert len(repeated) <= WORKERS * 4  # at most the step in flight of each run in flight
    report("synchronous standby", drain, repeated)


def test_failover_to_an_asynchronous_standby_loses_its_lag(make_pair: Any, tmp_path: Path) -> None:
    pair = make_pair(synchronous=False)
    drain = drain_through_failover(pair, tmp_path)
    lost = [(run_id, i, at) for run_id, i, at in drain.acked
            if drain.runs.get(run_id, (None, None))[1] != {"i": i}]
    assert lost, "the standby was behind at the crash: acknowledged triggers are lost"
    assert all(at >= drain.stalled_at for _id, _i, at in lost)  # only those of the loss window
    assert drain.resent == len(lost)  # sent again with their keys, each started once more
    inputs = [inp["i"] for _status, inp, _out in drain.runs.values()]
    assert sorted(inputs) == sorted({*inputs}), "a trigger started two runs"
    assert {i for _id, i, _at in drain.acked} <= {*inputs}
    check_outputs(drain)
    # an asynchronous standby also lags before the freeze (replay is one process): a few seconds at most here
    repeated = check_repeats(drain, lead=5.0)
    reused = [run_id for run_id, _i, _at in lost if run_id in drain.runs]
    report("asynchronous standby", drain, repeated,
           f"; {len(lost)} acknowledged triggers lost, {len(reused)} of their run ids given to other runs")
