"""What keeps the dashboard safe by default (docs/dashboard.md#safety): where it may listen, who may act, the
CSRF tokens of its forms, and which pgqrs role each connection takes."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass, field

# The login drops to one of these roles on every connection (SET ROLE), the first it may take: a read-only
# dashboard needs to read the views only; taking actions needs retry_run and fork_run, which only pgqrs_admin
# may call (docs/security.md).
READ_ONLY_ROLES = ("pgqrs_client", "pgqrs_worker", "pgqrs_admin")
ACTION_ROLES = ("pgqrs_admin", "pgqrs_client")
SESSION_COOKIE = "pgqrs_session"
LOCAL_HOSTS = ("localhost",)


class UnsafeSetting(Exception):
    """The dashboard refuses to start with these settings (the message says why and what to do)."""


@dataclass
class DashboardConfig:
    """How the dashboard runs: its database, its token (None: no actions, nobody logs in), read-only mode, and
    whether it ever listens beyond this machine (only the CLI knows: it checks the bind with check_bind)."""

    dsn: str
    token: str | None = None
    read_only: bool = False
    poll_seconds: float = 3.0
    # signs the CSRF tokens; new at each start, so a restart ends every session
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    @property
    def actions_enabled(self) -> bool:
        """Actions need a token, and are never taken in read-only mode."""
        return bool(self.token) and not self.read_only


def is_local(host: str) -> bool:
    """Whether `host` is a loopback address (or localhost): only this machine can reach it."""
    if host in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None, read_only: bool) -> None:
    """Refuse a bind beyond this machine without a token or --read-only. Raises UnsafeSetting."""
    if token is not None and len(token) < 16:
        raise UnsafeSetting("the token must be at least 16 characters long")
    if not is_local(host) and not token and not read_only:
        raise UnsafeSetting(
            f"refusing to listen on {host} without a token: anybody who reaches it could retry, cancel or "
            "fork runs. Give --token (or $PGQRS_DASHBOARD_TOKEN), or --read-only")


def token_matches(config: DashboardConfig, given: str | None) -> bool:
    """Whether `given` is the dashboard's token (compared in constant time)."""
    return bool(config.token) and given is not None and hmac.compare_digest(
        given.encode(), (config.token or "").encode())


def session_value(config: DashboardConfig) -> str:
    """The session cookie of a visitor who gave the token: a random id and its signature."""
    nonce = secrets.token_urlsafe(16)
    return f"{nonce}.{_sign(config, 'session:' + nonce)}"


def session_valid(config: DashboardConfig, cookie: str | None) -> bool:
    """Whether the cookie is a session this run of the dashboard signed."""
    if not cookie or "." not in cookie:
        return False
    nonce, signature = cookie.split(".", 1)
    return hmac.compare_digest(signature, _sign(config, "session:" + nonce))


def csrf_token(config: DashboardConfig, cookie: str | None) -> str:
    """The CSRF token of a session's forms: bound to its cookie, so another site's form cannot carry one."""
    return _sign(config, "csrf:" + (cookie or ""))


def csrf_valid(config: DashboardConfig, cookie: str | None, given: str | None) -> bool:
    """Whether a form's CSRF token belongs to this session."""
    return bool(cookie) and given is not None and hmac.compare_digest(given, csrf_token(config, cookie))


def _sign(config: DashboardConfig, text: str) -> str:
    return hmac.new(config.secret, text.encode(), hashlib.sha256).hexdigest()
