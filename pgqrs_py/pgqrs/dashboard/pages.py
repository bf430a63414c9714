"""The dashboard's pages: each reads the ops views and read functions (`pgqrs._sql.dashboard`) and renders one
template. A page that updates itself is polled whole by htmx, which swaps its `#live` part."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .._sql import dashboard as dash_sql
from ..errors import UnknownRun
from ..vocabulary import FINISHED_RUN_STATUSES, RUN_STATUSES
from .db import Database
from .safety import SESSION_COOKIE, DashboardConfig, csrf_token

PAGE_SIZE = 100
LIST_LIMIT = 200  # rows of the smaller lists (paused, stuck, waiting, retrying)
CHART_MINUTES = 30


def routes() -> list[Route]:
    """The read-only pages."""
    return [
        Route("/", overview), Route("/runs", runs), Route("/runs/{run_id:int}", run_detail),
        Route("/runs/{run_id:int}/value", run_value), Route("/dead", dead_letters),
        Route("/attention", attention), Route("/workers", workers), Route("/schedules", schedules),
    ]


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    """A page with what every page shows: the mode, the actions allowed and the session's CSRF token."""
    config: DashboardConfig = request.app.state.config
    db: Database = request.app.state.db
    context.update(request=request, config=config, allowed=db.allowed, role=db.role,
                   csrf=csrf_token(config, request.cookies.get(SESSION_COOKIE)), page=template.split(".")[0])
    response: Response = request.app.state.templates.TemplateResponse(
        request, template, context, status_code=status_code)
    return response


async def overview(request: Request) -> Response:
    """Per queue ready / leased / delayed / waiting and the oldest age (``pgqrs.queue_stats``), the runs
    finished per minute (``pgqrs.run_finishes``) up to the engine clock (``pgqrs.now``), workers
    (``pgqrs.worker_status``)."""
    db: Database = request.app.state.db
    queues = await db.rows(dash_sql.QUEUES)
    minutes = await db.rows(dash_sql.FINISHED_PER_MINUTE, {"minutes": CHART_MINUTES})
    now = (await db.one(dash_sql.NOW))["now"]
    return render(request, "overview.html", queues=queues, chart=chart(minutes, now),
                  workers=await db.rows(dash_sql.WORKERS))


def chart(minutes: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """Bars of the runs finished (and failed) per minute over the last CHART_MINUTES, oldest first."""
    by_minute = {row["minute"]: row for row in minutes}
    top = now.replace(second=0, microsecond=0)
    bars: list[dict[str, Any]] = []
    for i in range(CHART_MINUTES - 1, -1, -1):
        minute = top - timedelta(minutes=i)
        row = by_minute.get(minute, {})
        bars.append({"minute": minute, "ok": int(row.get("succeeded", 0)),
                     "failed": int(row.get("failed", 0))})
    peak = max([b["ok"] + b["failed"] for b in bars] + [1])
    for i, b in enumerate(bars):
        b["x"], b["ok_h"], b["failed_h"] = i * 12, round(60 * b["ok"] / peak), round(60 * b["failed"] / peak)
    return {"bars": bars, "peak": peak, "ok": sum(b["ok"] for b in bars),
            "failed": sum(b["failed"] for b in bars), "minutes": CHART_MINUTES}


def _filters(request: Request) -> dict[str, Any]:
    q = request.query_params
    status = (q.get("status") or "").upper() or None
    return {
        "workflow": q.get("workflow") or None,
        "status": status if status in RUN_STATUSES else None,
        "since": _time(q.get("since")), "until": _time(q.get("until")),
        "key": q.get("key") or None, "run": q.get("run") or None,
    }


def _before(request: Request) -> int | None:
    """The keyset of a page: the last run id of the page before it."""
    text = request.query_params.get("before", "")
    return int(text) if text.isdigit() and len(text) < 19 else None


def _time(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


async def runs(request: Request) -> Response:
    """Runs newest first (``pgqrs.run_overview``), a page of 100 by keyset (`before` = the last id shown),
    filtered by workflow (the names from ``pgqrs.queue_stats``), status, creation time, idempotency key
    (``pgqrs.run_keys``) or run id."""
    db: Database = request.app.state.db
    f = _filters(request)
    if f["run"] and f["run"].isdigit():
        return Response(status_code=303, headers={"location": f"/runs/{int(f['run'])}"})
    if f["key"]:
        rows = await db.rows(dash_sql.RUN_BY_KEY, {"key": f["key"], "workflow": f["workflow"]})
    else:
        params = dict(f, before=_before(request), limit=PAGE_SIZE + 1)
        rows = await db.rows(dash_sql.RUNS_PAGE, params)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    query = {k: v for k, v in request.query_params.items() if k not in ("before", "run") and v}
    workflows = [r["queue"] for r in await db.rows(dash_sql.WORKFLOW_NAMES)]
    return render(request, "runs.html", rows=rows, more=more, filters=f, query=query,
                  statuses=RUN_STATUSES, workflows=workflows,
                  args={k: request.query_params.get(k, "") for k in ("since", "until")})


async def run_detail(request: Request) -> Response:
    """One run (``pgqrs.run_status``): input, output or error with its traceback, the step timeline
    (``pgqrs.run_steps``), lease and worker, parent and children (``pgqrs.run_children``), what it waits for
    (``pgqrs.waiting_runs``). Raises nothing: an unknown run is a 404 page."""
    db: Database = request.app.state.db
    params = {"run": request.path_params["run_id"]}
    try:
        run = await db.one(dash_sql.RUN, params)
    except UnknownRun:
        return render(request, "missing.html", status_code=404, what=f"run {params['run']}")
    steps = await db.rows(dash_sql.RUN_STEPS, params)
    for s in steps:
        started, completed = s.get("started_at"), s.get("completed_at")
        s["duration"] = completed - started if started and completed else None
    waits = await db.rows(dash_sql.RUN_WAIT, params)
    children = await db.rows(dash_sql.RUN_CHILDREN, params)
    return render(request, "run.html", run=run, steps=steps, children=children,
                  wait=waits[0] if waits else None, finished=run["status"] in FINISHED_RUN_STATUSES,
                  done=request.query_params.get("done"), paused=[s for s in steps if s["status"] == "PAUSED"])


async def run_value(request: Request) -> Response:
    """A run's input, output, error, or a step's value or error, whole (``pgqrs.run_status``,
    ``pgqrs.run_steps``)."""
    db: Database = request.app.state.db
    params = {"run": request.path_params["run_id"]}
    what, step = request.query_params.get("what", "input"), request.query_params.get("step")
    try:
        run = await db.one(dash_sql.RUN, params)
        source = run
        if step is not None:
            source = next(s for s in await db.rows(dash_sql.RUN_STEPS, params) if s["step_id"] == step)
    except (UnknownRun, StopIteration):
        return render(request, "missing.html", status_code=404, what=f"run {params['run']} step {step}")
    if what not in ("input", "output", "error", "value"):
        what = "input"
    return render(request, "value.html", run=run, step=step, what=what, value=source.get(what))


async def dead_letters(request: Request) -> Response:
    """Runs that failed for good, newest first (``pgqrs.dead_letters``), a page by keyset."""
    db: Database = request.app.state.db
    rows = await db.rows(dash_sql.DEAD_LETTERS, {"before": _before(request), "limit": PAGE_SIZE + 1})
    return render(request, "dead.html", rows=rows[:PAGE_SIZE], more=len(rows) > PAGE_SIZE)


async def attention(request: Request) -> Response:
    """Runs that need a look: paused (``pgqrs.paused_runs``), stuck (``pgqrs.stuck_runs``), waiting
    (``pgqrs.waiting_runs``), retrying (``pgqrs.retrying_runs``)."""
    db: Database = request.app.state.db
    limit = {"limit": LIST_LIMIT}
    return render(request, "attention.html", paused=await db.rows(dash_sql.PAUSED, limit),
                  stuck=await db.rows(dash_sql.STUCK, limit), waiting=await db.rows(dash_sql.WAITING, limit),
                  retrying=await db.rows(dash_sql.RETRYING, limit), limit=LIST_LIMIT)


async def workers(request: Request) -> Response:
    """Workers with their heartbeat age and leases (``pgqrs.worker_status``)."""
    return render(request, "workers.html", workers=await request.app.state.db.rows(dash_sql.WORKERS))


async def schedules(request: Request) -> Response:
    """Schedules with their next and last fire (``pgqrs.schedules``)."""
    return render(request, "schedules.html", schedules=await request.app.state.db.rows(dash_sql.SCHEDULES))
