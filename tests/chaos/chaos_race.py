"""The lease race scenario of the chaos suite: the SQL API on two connections, no worker processes.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "pgqrs_py"))
sys.path.insert(0, str(HERE))

from chaos_cluster import Cluster, log  # noqa: E402
from chaos_results import Check, Result  # noqa: E402


def race_scenario(cluster: Cluster, rounds: int = 60) -> Result:
    """Two workers (B, C) race for one expired lease with simultaneous dequeues; then the winner and the
    old holder (A) race to record the step and finish the run. Half the rounds expire A's lease for real
    (visibility 0.2 s, wait 0.35 s); the other half give A a 60 s lease and move B's and C's clock past it
    (`set pgqrs.now`): a takeover. Exactly one of B and C gets the run; only the winner's writes land."""
    log(f"== race: two workers racing for one expired lease ({rounds} rounds)")
    t0 = time.monotonic()
    dsn = cluster.create_db("chaos_race")
    conns = {
        w: psycopg.connect(make_conninfo(dsn, application_name=f"chaos-race-{w}"), autocommit=True)
        for w in ("admin", "A", "B", "C")
    }
    try:
        admin = conns["admin"]
        admin.execute("select pgqrs.create_workflow('race')")
        wid = {
            w: admin.execute(
                "select pgqrs.register_worker(%s, %s, null, 'race')", (f"race-{w}", socket.gethostname())
            ).fetchone()[0]  # type: ignore[index]
            for w in ("A", "B", "C")
        }
        dequeue = (
            "select message_id, lease_token from pgqrs.dequeue(p_queue => 'race', p_worker => %s,"
            " p_batch_size => 1, p_visibility => %s * interval '1 second')"
        )
        tally: dict[str, int] = defaultdict(int)
        failures: list[str] = []

        def writes(
            w: str, run_id: int, token: Any, barrier: threading.Barrier, out: dict[str, list[str]]
        ) -> None:
            res: list[str] = []
            barrier.wait()
            for sql, args in (
                ("select status from pgqrs.acquire_step(%s, 's1', %s)", (run_id, token)),
                ("select pgqrs.complete_step(%s, 's1', %s, %s::jsonb)", (run_id, token, json.dumps(w))),
                ("select pgqrs.complete_run(%s, %s, %s::jsonb)", (run_id, token, json.dumps({"by": w}))),
            ):
                try:
                    conns[w].execute(sql, args).fetchall()
                    res.append("ok")
                except psycopg.Error as exc:
                    res.append(exc.sqlstate or type(exc).__name__)
            out[w] = res

        for r in range(rounds):
            takeover = r % 2 == 1
            run_id = admin.execute(
                "select run_id from pgqrs.trigger('race', %s::jsonb)", (json.dumps({"r": r}),)
            ).fetchone()[0]  # type: ignore[index]
            got_a = conns["A"].execute(dequeue, (wid["A"], 60 if takeover else 0.2)).fetchall()
            assert got_a and got_a[0][0] == run_id, f"A did not lease run {run_id}: {got_a}"
            token_a = got_a[0][1]
            if takeover:
                for w in ("B", "C"):
                    conns[w].execute(
                        "select set_config('pgqrs.now', (now() + interval '2 minutes')::text, false)"
                    )
            else:
                time.sleep(0.35)
            got: dict[str, list[tuple[Any, ...]]] = {}
            barrier = threading.Barrier(2)

            def deq(
                w: str, barrier: threading.Barrier = barrier, got: dict[str, list[tuple[Any, ...]]] = got
            ) -> None:
                barrier.wait()
                got[w] = conns[w].execute(dequeue, (wid[w], 30)).fetchall()

            threads = [threading.Thread(target=deq, args=(w,)) for w in ("B", "C")]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            winners = [w for w in ("B", "C") if got[w]]
            tally[
                "B wins" if winners == ["B"] else "C wins" if winners == ["C"] else "not exactly one winner"
            ] += 1
            if len(winners) != 1:
                failures.append(f"round {r}: dequeue winners {winners}")
                continue
            win = winners[0]
            token_w = got[win][0][1]
            out: dict[str, list[str]] = {}
            barrier2 = threading.Barrier(2)
            threads = [
                threading.Thread(target=writes, args=(win, run_id, token_w, barrier2, out)),
                threading.Thread(target=writes, args=("A", run_id, token_a, barrier2, out)),
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for w in ("B", "C"):
                conns[w].execute("select set_config('pgqrs.now', '', false)")
            for code in out["A"]:
                tally[f"old holder's write: {code}"] += 1
            if out[win] != ["ok", "ok", "ok"]:
                failures.append(f"round {r}: winner {win} writes {out[win]}")
            if any(code == "ok" for code in out["A"]):
                failures.append(f"round {r}: the old holder's writes {out['A']} (some landed)")
            row = admin.execute(
                "select r.status, r.output, (select jsonb_agg(jsonb_build_array(s.step_id, s.value))"
                " from pgqrs.steps as s where s.run_id = r.run_id), a.worker_id"
                " from pgqrs.runs as r left join pgqrs.messages_archive as a on a.message_id = r.run_id"
                " where r.run_id = %s",
                (run_id,),
            ).fetchone()
            want = ("SUCCESS", {"by": win}, [["s1", win]], wid[win])
            if tuple(row or ()) != want:
                failures.append(f"round {r}: stored {row}, expected {want}")
    finally:
        for c in conns.values():
            c.close()
    elapsed = time.monotonic() - t0
    checks = [
        Check(
            "of two simultaneous dequeues of one expired lease exactly one gets it",
            tally["not exactly one winner"] == 0,
            "; ".join(failures[:5]),
        ),
        Check(
            "only the new holder's writes land; the old holder gets QR004/QR003 and changes nothing",
            not failures,
            "; ".join(failures[:5]),
        ),
    ]
    metrics: dict[str, Any] = {
        "rounds": rounds,
        "expired-lease rounds": (rounds + 1) // 2,
        "takeover rounds (pgqrs.now moved)": rounds // 2,
    }
    metrics.update({k: v for k, v in sorted(tally.items())})
    metrics["wall time"] = f"{elapsed:.1f} s"
    log(f"race: {dict(tally)}")
    return Result(
        "race", "two workers racing for one expired lease (SQL API, two connections)", metrics, checks, []
    )
