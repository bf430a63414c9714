"""Which database pgqrs uses (pgqrs.resolve_dsn, docs/embedded.md): an explicit DSN, then $PGQRS_DSN, then
libpq's PG* variables, and only then the embedded server of `pgqrs dev`, started if needed (schema installed,
one line on stderr). Shown on a real embedded server, for the function, the `pgqrs` command and a README-style
program that names no database at all."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import pgqrs
from dev_helpers import REPO, clean_env, scratch_dir
from dev_helpers import pgqrs as pgqrs_cli
from pgqrs import embedded
from pgqrs._dsn import LIBPQ_SERVER_VARIABLES
from test_readme import README, blocks


@pytest.fixture(scope="module")
def dev_dir() -> Iterator[Path]:
    """The data directory the fallback finds ($PGQRS_DEV_DIR), its server not started yet."""
    with scratch_dir() as top:
        yield top / "dev"


@pytest.fixture
def no_database_env(monkeypatch: pytest.MonkeyPatch, dev_dir: Path) -> None:
    for name in ("PGQRS_DSN", *LIBPQ_SERVER_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PGQRS_DEV_DIR", str(dev_dir))


def test_the_embedded_server_is_started_last(no_database_env: None, dev_dir: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    embedded.stop(dev_dir)
    dsn = pgqrs.resolve_dsn()
    assert dsn == embedded.DevServer(dev_dir, False).dsn
    notice = capsys.readouterr().err
    assert notice.count("\n") == 1 and f"started the embedded PostgreSQL server in {dev_dir}" in notice
    with psycopg.connect(dsn) as conn:  # started durable, with the schema
        assert conn.execute("show fsync").fetchone() == ("on",)
        assert conn.execute("select pgqrs.schema_version() > 0").fetchone() == (True,)
    assert pgqrs.resolve_dsn() == dsn and capsys.readouterr().err == ""  # running: reused, silently


def test_an_explicit_dsn_then_pgqrs_dsn_then_the_pg_variables_come_first(
        no_database_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGQRS_DSN", "dbname=from_env")
    monkeypatch.setenv("PGHOST", "/nowhere")
    assert pgqrs.resolve_dsn("dbname=explicit") == "dbname=explicit"
    assert pgqrs.resolve_dsn("") == ""  # explicit, even empty: libpq's defaults
    assert pgqrs.resolve_dsn() == "dbname=from_env"
    monkeypatch.delenv("PGQRS_DSN")
    assert pgqrs.resolve_dsn() == ""  # libpq reads PGHOST
    for name in LIBPQ_SERVER_VARIABLES:
        monkeypatch.delenv("PGHOST")
        monkeypatch.setenv(name, "x")
        assert pgqrs.resolve_dsn() == "", name
        monkeypatch.delenv(name)
        monkeypatch.setenv("PGHOST", "/nowhere")


def test_the_command_uses_the_same_order(dev_dir: Path, tmp_path: Path) -> None:
    env = clean_env(PGQRS_DEV_DIR=str(dev_dir))
    server, _ = embedded.start(dev_dir)
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("select pgqrs.create_workflow('fallback_wf')")
    trigger = pgqrs_cli("trigger", "fallback_wf", "{}", "--json", env=env)
    assert trigger.returncode == 0, trigger.stderr
    run_id = json.loads(trigger.stdout)["run_id"]
    shown = pgqrs_cli("run", str(run_id), "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["run"]["workflow"] == "fallback_wf"
    # PGQRS_DSN or a PG* variable set: that server is used (here none answers), never the embedded one
    for name, value, tried in (("PGQRS_DSN", f"host={tmp_path}", str(tmp_path)),
                               ("PGHOST", str(tmp_path), str(tmp_path)), ("PGPORT", "1", ".s.PGSQL.1")):
        elsewhere = pgqrs_cli("run", str(run_id), env={**env, name: value})
        assert elsewhere.returncode == 3 and "cannot connect" in elsewhere.stderr, name
        assert tried in elsewhere.stderr, (name, elsewhere.stderr)
    assert pgqrs_cli("run", str(run_id), "--dsn", f"host={tmp_path}", env=env).returncode == 3


README_STYLE = textwrap.dedent("""
    import asyncio
    import pgqrs
    from pgqrs import workflow

    pgqrs.install()  # no DSN anywhere: the embedded server of `pgqrs dev`

    @workflow(name="greet")
    async def greet(ctx, params):
        name = await ctx.step("name", lambda: params["name"].title())
        return {"greeting": f"hello {name}"}

    async def main():
        store = await pgqrs.connect()
        await pgqrs.workflow().name("greet").store(store).create()
        worker = await pgqrs.consumer("readme-worker", 8080, "greet").handler(greet).create(store)
        polling = asyncio.create_task(worker.poll_forever())
        handle = await pgqrs.workflow().name("greet").store(store).trigger({"name": "ada"}).execute()
        print(await pgqrs.run().status(handle).store(store).result(timeout=30))
        worker.stop()
        await polling
        await store.close()

    asyncio.run(main())
""")


def test_a_readme_style_program_runs_with_no_database_configured(dev_dir: Path, tmp_path: Path) -> None:
    embedded.stop(dev_dir)  # the program's first call starts it
    script = tmp_path / "readme_style.py"
    script.write_text(README_STYLE)
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                         env=clean_env(PGQRS_DEV_DIR=str(dev_dir)), cwd=REPO, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "{'greeting': 'hello Ada'}"
    assert "started the embedded PostgreSQL server" in res.stderr


def test_the_readme_python_runs_on_the_embedded_server(dev_dir: Path, tmp_path: Path) -> None:
    """README's Python samples, as test_readme.py runs them, but with no database named: after `pgqrs dev`
    they run as written."""
    embedded.start(dev_dir)
    script = tmp_path / "readme_snippets.py"
    script.write_text("\n\n".join(blocks(README, "python")), encoding="utf-8")
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                         env=clean_env(PGQRS_DEV_DIR=str(dev_dir)), cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, f"README python blocks failed:\n{res.stdout}\n{res.stderr}"
    assert "SUCCESS {'file_count': 2, 'archive_path': '/tmp/archive.zip'}" in res.stdout


def test_a_fallback_that_cannot_start_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a cluster\n")
    res = pgqrs_cli("runs", env=clean_env(PGQRS_DEV_DIR=str(tmp_path)))
    assert res.returncode == 3 and res.stderr.count("\n") == 1, res.stderr
    assert "cannot start the embedded server" in res.stderr and "holds no PostgreSQL cluster" in res.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
