"""The one harness for tests that run real worker processes: start a worker script, wait until it says
"ready <worker id>", kill it (SIGKILL is the point of many tests), kill whatever is left when the test ends.

Worker scripts (tests/worker_proc.py, txn_worker.py, hostile_worker.py, chaos/body_worker.py) print
"ready <worker id>" on stdout once registered and log to stderr, which goes to a file in the test's tmp dir.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Proc = subprocess.Popen[str]


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0, every: float = 0.02) -> Any:
    """Call `check` until it returns something true (returned); fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(every)
    return value


def start_ready(argv: Sequence[str], log: Path, env: dict[str, str] | None = None,
                timeout: float = 60.0) -> tuple[Proc, int]:
    """Start `argv` (stderr to `log`, stdin closed) and wait up to `timeout` s for its "ready <worker id>"."""
    with open(log, "w") as stderr:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL,
                                text=True, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    assert proc.stdout is not None
    readable, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if readable else ""
    if not line.startswith("ready "):
        proc.kill()
        proc.wait(10)
        tail = log.read_text(errors="replace")[-3000:]
        raise AssertionError(f"{Path(argv[1]).name} did not start: {line!r}; its log {log}:\n{tail}")
    return proc, int(line.split()[1])


def sigkill(proc: Proc) -> None:
    """SIGKILL a worker and wait for it: nothing of it runs after this returns."""
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(10) == -signal.SIGKILL


def stop_all(procs: list[Proc]) -> None:
    """Kill every process still alive (thawing a frozen one first) and reap them all."""
    for proc in procs:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.wait(10)


class WorkerProcs:
    """Processes of one worker script called as `script DSN NAME [args...]`, logging to `tmp/NAME-i.log`."""

    def __init__(self, script: Path, dsn: str, tmp: Path, env: dict[str, str] | None = None) -> None:
        self.script = script
        self.dsn = dsn
        self.tmp = tmp
        self.env = env
        self.procs: list[Proc] = []
        self.logs: dict[int, Path] = {}

    def start(self, name: str, *args: str, dsn: str | None = None) -> tuple[Proc, int]:
        """Start a worker named `name` and wait until it is registered: (process, worker id)."""
        log = self.tmp / f"{name}-{len(self.procs)}.log"
        argv = [sys.executable, str(self.script), dsn or self.dsn, name, *args]
        proc, worker_id = start_ready(argv, log, self.env)
        self.procs.append(proc)
        self.logs[proc.pid] = log
        return proc, worker_id

    def log(self, proc: Proc) -> str:
        """The worker's stderr so far: for assertion messages."""
        return self.logs[proc.pid].read_text(errors="replace")[-3000:]

    def close(self) -> None:
        stop_all(self.procs)
