"""`make demo` (examples/demo.py) as a real process: a worker SIGKILLed mid-step, recovery, retry, pause."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

from psycopg.conninfo import conninfo_to_dict

from conftest import REPO, drop_db


def test_demo_tells_the_story_and_exits_0(pg_dsn: str) -> None:
    params = conninfo_to_dict(pg_dsn)
    name = f"pgqrs_demo_test_{os.getpid()}"
    env = {**os.environ, "PGHOST": str(params["host"]), "PGPORT": str(params["port"]),
           "PGUSER": str(params["user"]), "PGDATABASE": "postgres", "PGQRS_DEMO_DB": name}
    env.pop("PGQRS_DSN", None)
    started = time.monotonic()
    # its own process group: should the demo hang, the worker processes it started go with it
    proc = subprocess.Popen([sys.executable, str(REPO / "examples" / "demo.py")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=REPO, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"the demo hung:\n{out}\n{err}") from None
    finally:
        drop_db(name)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, out + err
    for beat in ("SIGKILL", "pgqrs.stuck_runs lists run", "TransientError(retry_after=2)",
                 "store.resume_run", "exited 0, approver exited 0", "pgqrs.run_overview",
                 "kind sleep until", "still WAITING, without a lease", "returned True (a second emit: False",
                 "kind children, 20 pending", "'files': 20", "thumbnails exited 0, resize exited 0"):
        assert beat in " ".join(out.split()), beat  # the narration wraps lines
    final = r"^Ran more than once: 1 — run \d+ transform_data \(in flight when worker A was killed\)"
    assert re.search(final, out, re.MULTILINE), out
    assert elapsed < 120, f"the demo took {elapsed:.0f} s"
