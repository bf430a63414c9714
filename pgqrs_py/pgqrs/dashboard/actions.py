"""Logging in and the actions on a run: retry, resume, cancel, fork and recording a paused step's result.

Each action is two requests: GET /runs/N/confirm/ACTION shows what will happen and a form; POST /runs/N/ACTION
takes it, only with the token (a session from /login), the form's CSRF token, a same-origin request and a
role that may call the engine function. It calls the function the CLI calls (`pgqrs._sql`), exactly as from
psql, and returns to the run's page."""

from __future__ import annotations

import json

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from .. import _sql
from .._params import update_step_params
from .._sql import dashboard as dash_sql
from ..errors import PgqrsError, UnknownRun
from ..vocabulary import UPDATABLE_STEP_STATUSES
from .db import ACTIONS, Database
from .pages import render
from .safety import SESSION_COOKIE, DashboardConfig, csrf_valid, session_valid, session_value, token_matches

DONE = {"retry": "retried", "resume": "resumed", "cancel": "cancelled", "fork": "forked",
        "update-step": "step recorded"}


def routes() -> list[Route]:
    """The login and the actions."""
    return [
        Route("/login", login_page, methods=["GET"]), Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/runs/{run_id:int}/confirm/{action}", confirm, methods=["GET"]),
        Route("/runs/{run_id:int}/{action}", act, methods=["POST"]),
    ]


async def login_page(request: Request) -> Response:
    """The form that asks for the dashboard's token."""
    return render(request, "login.html", next=_local_path(request.query_params.get("next")), failed=False)


async def login(request: Request) -> Response:
    """Checks the token; on a match sets the session cookie (HttpOnly, SameSite=Strict) and goes on."""
    config: DashboardConfig = request.app.state.config
    form = await request.form()
    target = _local_path(_text(form, "next"))
    if not token_matches(config, _text(form, "token")):
        return render(request, "login.html", status_code=403, next=target, failed=True)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(SESSION_COOKIE, session_value(config), httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


async def logout(request: Request) -> Response:
    """Forgets the session cookie."""
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


async def confirm(request: Request) -> Response:
    """The confirmation of an action on a run: what it does, and the form that takes it. Reads the run
    (``pgqrs.run_status``) and, to choose a step, its steps (``pgqrs.run_steps``)."""
    refused = _refusal(request, check_csrf=None)
    if refused:
        return refused
    action, run_id = request.path_params["action"], request.path_params["run_id"]
    db: Database = request.app.state.db
    try:
        run = await db.one(_sql.RUN_STATUS, (run_id,))
    except UnknownRun:
        return render(request, "missing.html", status_code=404, what=f"run {run_id}")
    steps = await db.rows(dash_sql.RUN_STEPS, {"run": run_id}) if action in ("fork", "update-step") else []
    return render(request, "confirm.html", action=action, run=run, steps=steps,
                  step_statuses=UPDATABLE_STEP_STATUSES, step=request.query_params.get("step", ""))


async def act(request: Request) -> Response:
    """Takes an action: ``pgqrs.retry_run``, ``pgqrs.resume_run``, ``pgqrs.cancel_run``, ``pgqrs.fork_run``
    or ``pgqrs.update_step``, as the CLI does. Refused (403) without the token, the CSRF token or the right;
    an engine error (QR002, QR003, QR005, 22023) is shown on the confirmation page (409)."""
    form = await request.form()
    refused = _refusal(request, check_csrf=_text(form, "csrf"))
    if refused:
        return refused
    action, run_id = request.path_params["action"], request.path_params["run_id"]
    db: Database = request.app.state.db
    try:
        target = await _take(db, action, run_id, form)
    except (PgqrsError, ValueError) as exc:
        message = exc.message if isinstance(exc, PgqrsError) else str(exc)
        return PlainTextResponse(f"{action} refused: {message}", status_code=409)
    return RedirectResponse(f"/runs/{target}?done={DONE[action]}", status_code=303)


async def _take(db: Database, action: str, run_id: int, form: FormData) -> int:
    """Calls the action's engine function; returns the run to show next (the new run of a fork)."""
    sql = ACTIONS[action][1]
    if action == "cancel":
        await db.rows(sql, (run_id, _text(form, "reason") or None))
    elif action == "fork":
        return int((await db.one(sql, (run_id, _text(form, "from_step"))))["fork_run"])
    elif action == "update-step":
        value = json.loads(_text(form, "value") or "null")
        await db.rows(sql, update_step_params(run_id, _text(form, "step_id"), _text(form, "status"), value))
    else:
        await db.rows(sql, (run_id,))
    return run_id


def _refusal(request: Request, check_csrf: str | None) -> Response | None:
    """Why this request may not take the action (403), or None. `check_csrf`: the form's token, checked on a
    POST."""
    config: DashboardConfig = request.app.state.config
    db: Database = request.app.state.db
    action = request.path_params["action"]
    cookie = request.cookies.get(SESSION_COOKIE)
    if action not in ACTIONS:
        return PlainTextResponse(f"no action {action!r}", status_code=404)
    if config.read_only:
        return PlainTextResponse("the dashboard is read-only (--read-only)", status_code=403)
    if not config.token:
        return PlainTextResponse("actions need a token: start the dashboard with --token", status_code=403)
    if not session_valid(config, cookie):
        return PlainTextResponse("log in with the dashboard's token first (/login)", status_code=403)
    if request.method == "POST":
        if not csrf_valid(config, cookie, check_csrf):
            return PlainTextResponse("missing or wrong CSRF token: take the action from its page",
                                     status_code=403)
        origin = request.headers.get("origin")
        if origin and origin != f"{request.url.scheme}://{request.url.netloc}":
            return PlainTextResponse(f"cross-origin request from {origin} refused", status_code=403)
    if action not in db.allowed:
        return PlainTextResponse(f"the role {db.role} may not {action} (docs/security.md)", status_code=403)
    return None


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _local_path(target: str | None) -> str:
    """A path on this site to go on to after logging in (never another site: //evil.example or a URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target

