"""`pgqrs dashboard`: a web UI over the ops views, with metrics (docs/dashboard.md). Needs the extra
``pip install "pgqrs-engine[dashboard]"`` (Starlette, Jinja2, uvicorn, prometheus-client); htmx is vendored in
``static/``, nothing is loaded from another site.

Modules: `app` (the ASGI app, the guard, formatting), `pages` (the read-only pages), `actions` (log in, and
the actions on a run), `db` (the pool and its role), `safety` (bind, token, CSRF), `metrics` (/metrics)."""

from .app import create_app
from .safety import DashboardConfig, UnsafeSetting, check_bind

__all__ = ["DashboardConfig", "UnsafeSetting", "check_bind", "create_app"]
