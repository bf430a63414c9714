"""The dashboard's ASGI application: routes, the guard in front of them (token, session, security headers) and
the templates' formatting."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from .._json import json_default
from . import actions, metrics, pages
from .db import Database
from .safety import SESSION_COOKIE, DashboardConfig, session_valid, token_matches

HERE = Path(__file__).resolve().parent
# No script but the vendored htmx, no inline script or style, no framing: a value that slipped past the
# escaping still could not run.
SECURITY_HEADERS = {
    "content-security-policy":
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}
OPEN_PATHS = ("/static/", "/login")  # reachable without the token


def create_app(config: DashboardConfig) -> Starlette:
    """The dashboard for `config`: opens its pool (Database) at start-up, closes it at shut-down."""
    db = Database(config)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters.update(age=age, when=when, short=short, pretty=pretty, error_text=error_text)
    templates.env.tests["long"] = is_long

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await db.open()
        try:
            yield
        finally:
            await db.close()

    app = Starlette(routes=pages.routes() + actions.routes() + [
        Route("/metrics", metrics.endpoint),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ], lifespan=lifespan)
    app.state.config, app.state.db, app.state.templates = config, db, templates
    app.add_middleware(BaseHTTPMiddleware, dispatch=guard)
    return app


async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """With a token set, every page needs it (a session cookie from /login, or `Authorization: Bearer`);
    every response carries the security headers."""
    config: DashboardConfig = request.app.state.config
    if config.token and not request.url.path.startswith(OPEN_PATHS) and not signed_in(request):
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            response: Response = RedirectResponse("/login?next=" + request.url.path, status_code=303)
        else:
            response = PlainTextResponse("the dashboard's token is needed (log in at /login)",
                                         status_code=401)
    else:
        response = await call_next(request)
    response.headers.update(SECURITY_HEADERS)
    return response


def signed_in(request: Request) -> bool:
    """Whether the request carries the token: the session cookie of /login, or a bearer token."""
    config: DashboardConfig = request.app.state.config
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token_matches(config, given.strip()):
        return True
    return session_valid(config, request.cookies.get(SESSION_COOKIE))


# ---- formatting for the templates -------------------------------------------------------------------------


def age(value: timedelta | None) -> str:
    """A duration in two units at most: 3d 4h, 2m 5s, 0.35s."""
    if value is None:
        return ""
    seconds = value.total_seconds()
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    if seconds < 60:
        return f"{sign}{seconds:.2f}s" if seconds < 10 else f"{sign}{seconds:.0f}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{int(seconds // size)}{unit}")
            seconds %= size
    return sign + " ".join(parts[:2])


def when(value: datetime | None) -> str:
    """A time in UTC to the second."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def pretty(value: Any) -> str:
    """A stored value as indented JSON (shown in a <pre>, escaped by the template)."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=json_default)


def short(value: Any, limit: int = 120) -> str:
    """A stored value as one line of JSON, cut at `limit` characters (the page links to it whole)."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=json_default)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_text(error: Any) -> str:
    """A stored error in a line: `type: message` (the Python package stores type, message and traceback)."""
    if error is None:
        return ""
    if isinstance(error, dict) and ("message" in error or "type" in error):
        return f"{error.get('type') or 'error'}: {error.get('message', '')}"
    return short(error)


def is_long(value: Any, limit: int = 120) -> bool:
    """Whether `short` cuts the value."""
    return len(short(value, limit + 10)) > limit
