"""Every SQL and Python snippet of README.md and docs/ (operations, waits, flow, schedules) runs.

- ```sql blocks of a document run in order in one psql session (`-v ON_ERROR_STOP=1`) on a fresh database
  with the schema: they may build on each other (`\\gset` variables, runs made by an earlier block).
- ```python blocks of README.md run in order as one script (later blocks use earlier definitions), with
  PGQRS_DSN pointing at another fresh database.
- bash / console / text blocks (make targets, pip lines, command lines) are not run; test_cli.py covers the
  commands. The pip lines are checked for the one thing that matters: never `pip install pgqrs`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from pg_binaries import pg_tool

README = REPO / "README.md"
OPERATIONS = REPO / "docs" / "operations.md"
WAITS = REPO / "docs" / "waits.md"
FLOW = REPO / "docs" / "flow.md"
SCHEDULES = REPO / "docs" / "schedules.md"
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def blocks(path: Path, lang: str) -> list[str]:
    return [body for kind, body in FENCE.findall(path.read_text(encoding="utf-8")) if kind == lang]


def run_sql_blocks(path: Path, dsn: str) -> None:
    sql_blocks = blocks(path, "sql")
    assert sql_blocks, f"{path.name} has no sql blocks"
    script = "".join(f"\\echo @@block {i}\n{body}\n" for i, body in enumerate(sql_blocks))
    res = subprocess.run([pg_tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f", "-"],
                         input=script, capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        started = re.findall(r"^@@block (\d+)$", res.stdout, re.MULTILINE)
        failed = int(started[-1]) if started else 0
        pytest.fail(f"{path.name}: sql block {failed + 1} of {len(sql_blocks)} failed:\n"
                    f"{sql_blocks[failed]}\npsql said:\n{res.stderr}", pytrace=False)
    assert "ERROR" not in res.stderr, res.stderr


def test_readme_sql_blocks_run_in_order(db: str) -> None:
    run_sql_blocks(README, db)


def test_operations_sql_blocks_run_in_order(db: str) -> None:
    run_sql_blocks(OPERATIONS, db)


def test_waits_sql_blocks_run_in_order(db: str) -> None:
    run_sql_blocks(WAITS, db)


def test_flow_sql_blocks_run_in_order(db: str) -> None:
    run_sql_blocks(FLOW, db)


def test_schedules_sql_blocks_run_in_order(db: str) -> None:
    run_sql_blocks(SCHEDULES, db)


def test_readme_python_blocks_run_as_one_script(db: str, tmp_path: Path) -> None:
    python_blocks = blocks(README, "python")
    assert len(python_blocks) >= 3
    script = tmp_path / "readme_snippets.py"
    script.write_text("\n\n".join(python_blocks), encoding="utf-8")
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PGQRS_DSN": db}, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, f"README python blocks failed:\n{res.stdout}\n{res.stderr}"
    assert "Queued message: " in res.stdout
    assert "SUCCESS {'file_count': 2, 'archive_path': '/tmp/archive.zip'}" in res.stdout


def test_readme_first_sample_runs_alone(db: str, tmp_path: Path) -> None:
    """The first screen's workflow runs as written, on its own: after `pgqrs dev` it names no database, here
    $PGQRS_DSN names the test's."""
    first = blocks(README, "python")[0]
    assert len(first.splitlines()) <= 30 and "pgqrs.connect()" in first
    script = tmp_path / "first_sample.py"
    script.write_text(first, encoding="utf-8")
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PGQRS_DSN": db}, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, f"README's first sample failed:\n{res.stdout}\n{res.stderr}"
    assert res.stdout == "Hello, Ada!\n"
    assert 'pip install "pgqrs-engine[embedded]"' in README.read_text(encoding="utf-8").split("```python")[0]


def test_readme_never_says_pip_install_pgqrs() -> None:
    for _kind, body in FENCE.findall(README.read_text(encoding="utf-8")):
        for line in body.splitlines():
            assert not re.search(r"pip install\s+(-\S+\s+)*['\"]?pgqrs(?![-\w])", line), line
    assert "pip install ." in README.read_text(encoding="utf-8")


def test_readme_sections_and_links() -> None:
    text = README.read_text(encoding="utf-8")
    for heading in ("## Install", "## From psql", "## From Python", "## Concepts", "## Operations",
                    "## Error codes", "## Benchmarks", "## Limits"):
        assert re.search(rf"^{re.escape(heading)}", text, re.MULTILINE), heading
    assert "make demo" in text and "make test" in text
    for target in re.findall(r"\]\(([^)#:]+)\)", text):
        assert (REPO / target).exists(), f"README links to missing {target}"
    for target in re.findall(r"\]\(([^)#:]+)\)", OPERATIONS.read_text(encoding="utf-8")):
        assert (OPERATIONS.parent / target).exists(), f"operations.md links to missing {target}"
