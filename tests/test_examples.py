"""examples/: the seed workflows as runnable scripts, each run as a process against a fresh database."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO


def run_example(name: str, dsn: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "examples" / name)], capture_output=True, text=True,
                          env={**os.environ, "PGQRS_DSN": dsn}, cwd=REPO, timeout=120,
                          stdin=subprocess.DEVNULL)


def test_pipeline_example(db: str) -> None:
    res = run_example("pipeline.py", db)
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    assert "Worker started. Waiting for runs..." in out
    assert "[transform_data] Processing 5 records" in out
    # the flaky run: fetch_data failed once (transient) and succeeded on its second attempt
    assert "SUCCESS {'processed_count': 5} (step attempts {'fetch_data': 2" in out
    assert "PAUSED at wait_for_approval" in out
    assert "SUCCESS {'decision': 'approved by ops@example.com'}" in out
    assert out.rstrip().endswith("pipeline example: done")


def test_zip_files_example(db: str) -> None:
    res = run_example("zip_files.py", db)
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    assert out.count("Queued message:") == 2
    assert "Done: {" in out and "'archive_path': '/tmp/archive-3-files.zip'" in out
    assert "list_files, download_files, create_archive" in out
    assert out.rstrip().endswith("zip_files example: done")


def test_examples_are_idempotent_on_the_same_database(db: str) -> None:
    """Install and workflow creation are idempotent: running an example twice works."""
    for _ in range(2):
        res = run_example("zip_files.py", db)
        assert res.returncode == 0, res.stdout + res.stderr
