#!/usr/bin/env python3
"""`make screenshots`: a PNG of each dashboard page with demo data, in docs/img/ (the README shows two).

Makes a database of its own (pgqrs_screenshots, dropped and made again), runs a real worker on the workflow of
tests/dashboard_worker.py and a few runs in each state (succeeded, failed for good, retried, paused, sleeping,
queued behind no worker, a schedule), serves the dashboard with a token and photographs each page in headless
Chromium (Debian's chromium + chromium-driver, as the browser tests).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

import pgqrs

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conftest import server_dsn  # noqa: E402
from dashboard_helpers import TOKEN, run_status, serve, start, stop, trigger, wait_for  # noqa: E402
from test_dashboard_browser import browser  # noqa: E402

DB = "pgqrs_screenshots"
OUT = ROOT / "docs" / "img"


def demo_database() -> str:
    admin = server_dsn()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(DB)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(DB)))
    dsn = make_conninfo(admin, dbname=DB)
    pgqrs.install(dsn)
    return dsn


def workload(dsn: str, tmp: Path) -> dict[str, int]:
    """Runs in every state; returns a few ids worth a picture."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name in ("invoices", "emails"):
            conn.execute("select pgqrs.create_workflow(p_name => %s)", (name,))
        conn.execute("select pgqrs.create_schedule('nightly-report', 'emails', '0 3 * * *', '{}',"
                     " 'Europe/Paris')")
        ids = {"ok": trigger(conn, "invoices", {"customer": "ACME", "note": "x" * 400})}
        for i in range(24):
            trigger(conn, "invoices", {"customer": f"c{i}"})
        ids["failed"] = trigger(conn, "invoices", {"customer": "Initech", "needs": str(tmp / "card-on-file")})
        trigger(conn, "invoices", {"customer": "Globex", "needs": str(tmp / "vat-number")})
        ids["retried"] = trigger(conn, "invoices", {"customer": "Umbrella", "flaky": str(tmp / "flaky")})
        ids["paused"] = trigger(conn, "invoices", {"customer": "Hooli", "pause": True})
        ids["sleeping"] = trigger(conn, "invoices", {"customer": "Stark", "sleep": 3600})
        for i in range(7):
            trigger(conn, "emails", {"to": f"user{i}@example.org"}, key=f"welcome-{i}")
    for name, status in (("ok", "SUCCESS"), ("failed", "ERROR"), ("retried", "SUCCESS"), ("paused", "PAUSED"),
                         ("sleeping", "WAITING")):
        wait_for(f"the {name} run", lambda r=ids[name], s=status: run_status(dsn, r) == s)  # type: ignore[misc]
    return ids


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = Path("/tmp/pgqrs-screenshots")
    tmp.mkdir(exist_ok=True)
    for f in tmp.iterdir():
        f.unlink()
    dsn = demo_database()
    worker = start("worker", "dashboard_worker:invoices", "--name", "worker-1", "--concurrency", "4", dsn=dsn)
    dashboard, url = serve(dsn, "--token", TOKEN)
    driver = browser()
    try:
        ids = workload(dsn, tmp)
        driver.get(url + "/login")
        driver.find_element("id", "token").send_keys(TOKEN)
        driver.find_element("id", "login").click()
        wait_for("the login", lambda: "/login" not in driver.current_url)
        pages = {"overview": "/", "runs": "/runs", "run-failed": f"/runs/{ids['failed']}",
                 "run-succeeded": f"/runs/{ids['retried']}", "run-paused": f"/runs/{ids['paused']}",
                 "confirm-retry": f"/runs/{ids['failed']}/confirm/retry", "dead-letters": "/dead",
                 "attention": "/attention", "workers": "/workers", "schedules": "/schedules"}
        for name, path in pages.items():
            driver.set_window_size(1400, 900)
            driver.get(url + path)
            time.sleep(0.3)
            # the whole page, up to 1600 pixels: the window is made as tall as its content (plus its frame)
            height = driver.execute_script("return document.documentElement.scrollHeight")
            frame = driver.execute_script("return window.outerHeight - window.innerHeight")
            driver.set_window_size(1400, min(height, 1600) + frame)
            time.sleep(0.2)
            driver.save_screenshot(str(OUT / f"dashboard-{name}.png"))
            print(f"docs/img/dashboard-{name}.png  {path}")
    finally:
        driver.quit()
        stop(dashboard)
        stop(worker)


if __name__ == "__main__":
    main()
