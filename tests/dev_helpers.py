"""What the tests of `pgqrs dev` share: a throwaway data directory, the command run as a real process with no
database in its environment, and the server's user (PostgreSQL refuses root; as root it is `postgres`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pgqrs import embedded
from pgqrs._dsn import LIBPQ_SERVER_VARIABLES

REPO = Path(__file__).resolve().parent.parent


@contextmanager
def scratch_dir() -> Iterator[Path]:
    """A directory under /tmp that the server's user can reach (pytest's tmp_path is 0700 and root's), removed
    at the end after stopping any server left running in it."""
    top = Path(tempfile.mkdtemp(prefix="pgqrs-dev-", dir="/tmp"))
    top.chmod(0o755)
    try:
        yield top
    finally:
        for pid_file in top.glob("**/postmaster.pid"):
            try:
                embedded.stop(pid_file.parent)
            except embedded.DevServerError:
                pass
        shutil.rmtree(top, ignore_errors=True)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without PGQRS_DSN and libpq's server variables: the embedded fallback applies."""
    env = {k: v for k, v in os.environ.items() if k != "PGQRS_DSN" and k not in LIBPQ_SERVER_VARIABLES}
    return {**env, **extra}


def pgqrs(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m pgqrs ARGS` as a real process (no database in its environment unless `env` says so)."""
    return subprocess.run([sys.executable, "-m", "pgqrs", *args], capture_output=True, text=True,
                          env=env if env is not None else clean_env(), cwd=REPO, timeout=120,
                          stdin=subprocess.DEVNULL)


def as_server_user() -> dict[str, int]:
    """subprocess arguments that run a process as the server's user (root: `postgres`; else yourself)."""
    if os.geteuid() != 0:
        return {}
    import pwd

    user = pwd.getpwnam(embedded.ROOT_SERVER_USER)
    return {"user": user.pw_uid, "group": user.pw_gid}


def tree(path: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every entry under `path`: its mode and a file's content (to show that nothing changed)."""
    found: dict[str, tuple[int, bytes | None]] = {".": (path.stat().st_mode, None)}
    for entry in sorted(path.rglob("*")):
        found[str(entry.relative_to(path))] = (entry.stat().st_mode,
                                               entry.read_bytes() if entry.is_file() else None)
    return found
