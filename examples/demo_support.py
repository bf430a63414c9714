"""What the chapters of `make demo` (examples/demo.py, examples/demo_waits.py) share: narration, worker
processes (`python -m pgqrs worker ...`, output in a log file), waiting for the database to show something."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psycopg

REPO = Path(__file__).resolve().parent.parent
VISIBILITY = 3  # seconds of lease: a crashed worker's run is free again within this
TIMEOUT = 30.0  # for each wait: a demo that hangs is a failed demo

T0 = time.monotonic()


class DemoFailed(Exception):
    pass


def say(n: int, text: str) -> None:
    head = f"{n:>2}. [{time.monotonic() - T0:4.1f}s] "
    print(textwrap.fill(text, width=110, initial_indent=head, subsequent_indent=" " * len(head)), flush=True)


def detail(text: str) -> None:
    print(textwrap.fill(text, width=110, initial_indent=" " * 14, subsequent_indent=" " * 16), flush=True)


class Worker:
    """A worker process: `python -m pgqrs worker ...`, its output in a log file."""

    def __init__(self, label: str, target: str, dsn: str, logdir: Path, *args: str) -> None:
        self.label = label
        self.app_name = f"pgqrs-demo-{label}"
        self.logfile = logdir / f"worker-{label}.log"
        env = {**os.environ, "PGQRS_DSN": dsn, "PGAPPNAME": self.app_name, "PYTHONUNBUFFERED": "1"}
        with open(self.logfile, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pgqrs", "worker", target, "--name", f"demo-{label}",
                 "--visibility", str(VISIBILITY), *args],
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    async def stop(self) -> int:
        """SIGTERM and wait: a worker stops gracefully and exits 0."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return await wait_exit(self.proc)


async def wait_exit(proc: subprocess.Popen[bytes], timeout: float = TIMEOUT) -> int:
    deadline = time.monotonic() + timeout
    while (code := proc.poll()) is None:
        if time.monotonic() > deadline:
            raise DemoFailed(f"process {proc.pid} did not exit within {timeout:.0f} s")
        await asyncio.sleep(0.05)
    return code


async def wait_until(conn: psycopg.AsyncConnection[dict[str, Any]], what: str, query: str,
                     params: Any = None, workers: list[Worker] | None = None) -> list[dict[str, Any]]:
    """Poll `query` until it returns rows; fail after TIMEOUT, or when a worker died."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        rows = await (await conn.execute(query, params)).fetchall()
        if rows:
            return rows
        for w in workers or []:
            if w.proc.poll() is not None:
                raise DemoFailed(f"worker {w.label} exited ({w.proc.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            raise DemoFailed(f"timed out after {TIMEOUT:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)
