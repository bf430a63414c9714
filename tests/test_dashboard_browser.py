"""The dashboard in a real headless Chromium (Debian's chromium + chromium-driver, Selenium), as an operator
uses it: a real `pgqrs dashboard` process with a token, a real `pgqrs worker` running
tests/dashboard_worker.py, one browser for the module. Opens each page with real data, filters runs, opens a
failed run and sees its error, fixes the cause, retries it from the page and sees it succeed without a reload;
an action without the token is refused; a `<script>` in a run's input stays text."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from conftest import drop_db, fresh_db
from dashboard_helpers import SCRIPT, TOKEN, run_status, serve, start, stop, trigger, wait_for

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def browser() -> Any:
    """One headless Chromium (fails with the reason when it is not installed: scripts/deps.sh installs it)."""
    assert shutil.which(CHROMIUM) and shutil.which(DRIVER), "chromium and chromium-driver: run make deps"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(DRIVER), options=options)


@pytest.fixture(scope="module")
def site(pg_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A database with a worker and the dashboard serving it, and a browser: shared by the module's tests."""
    name = f"dash_browser_{id(tmp_path_factory)}"
    dsn = fresh_db(name, pg_dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("select pgqrs.create_workflow(p_name => 'invoices')")
    worker = start("worker", "dashboard_worker:invoices", "--name", "browser-worker", "--visibility", "5",
                   dsn=dsn)
    dashboard, url = serve(dsn, "--token", TOKEN)
    driver = browser()
    try:
        yield {"dsn": dsn, "url": url, "driver": driver, "tmp": tmp_path_factory.mktemp("fix")}
    finally:
        driver.quit()
        stop(dashboard)
        stop(worker)
        drop_db(name, pg_dsn)


def log_in(site: dict[str, Any]) -> None:
    d = site["driver"]
    d.get(site["url"] + "/")
    if "/login" in d.current_url:
        d.find_element(By.ID, "token").send_keys(TOKEN)
        d.find_element(By.ID, "login").click()
    wait_for("the login to go through", lambda: "/login" not in d.current_url, timeout=10)


def click_to(site: dict[str, Any], by: str, value: str, url_part: str) -> None:
    """Click what leads to another page, and wait until the browser is there."""
    d = site["driver"]
    d.find_element(by, value).click()
    wait_for(f"a page at {url_part}", lambda: url_part in d.current_url, timeout=10)


def text(site: dict[str, Any], element_id: str, by: str = By.ID) -> str:
    """The text of an element, read again when a live update or a page load replaced it meanwhile."""
    for _ in range(20):
        try:
            return str(site["driver"].find_element(by, element_id).text)
        except StaleElementReferenceException:
            continue
    raise AssertionError(f"{element_id} kept being replaced")


def texts(site: dict[str, Any], css: str) -> set[str]:
    """The texts of the elements `css` selects, read again when a live update replaced one meanwhile."""
    for _ in range(20):
        try:
            return {str(e.text) for e in site["driver"].find_elements(By.CSS_SELECTOR, css)}
        except StaleElementReferenceException:
            continue
    raise AssertionError(f"{css} kept being replaced")


def new_run(site: dict[str, Any], payload: dict[str, Any], status: str) -> int:
    with psycopg.connect(site["dsn"], autocommit=True) as conn:
        run_id = trigger(conn, "invoices", payload)
    wait_for(f"run {run_id} {status}", lambda: run_status(site["dsn"], run_id) == status)
    return run_id


def test_each_page_opens_with_real_data(site: dict[str, Any]) -> None:
    done = new_run(site, {"note": "first"}, "SUCCESS")
    log_in(site)
    d = site["driver"]
    d.get(site["url"] + "/")
    wait_for("the worker on the overview", lambda: "browser-worker" in text(site, "workers"))
    assert "invoices" in text(site, "queues")
    d.get(site["url"] + "/runs")
    click_to(site, By.LINK_TEXT, str(done), f"/runs/{done}")
    assert text(site, "run-status") == "SUCCESS" and "charge" in text(site, "steps")
    assert '"charged": 3' in text(site, "run-output")
    for path, element in (("/dead", "dead"), ("/attention", "paused"), ("/workers", "workers"),
                          ("/schedules", "schedules")):
        d.get(site["url"] + path)
        assert d.find_element(By.ID, element).is_displayed(), path


def test_a_failed_run_shows_its_error_and_a_retry_makes_it_succeed(site: dict[str, Any]) -> None:
    fix: Path = site["tmp"] / "card-on-file"
    failed = new_run(site, {"needs": str(fix)}, "ERROR")
    log_in(site)
    d = site["driver"]
    d.get(site["url"] + "/runs")
    Select(d.find_element(By.NAME, "status")).select_by_visible_text("ERROR")
    click_to(site, By.CSS_SELECTOR, "form.filters button", "status=ERROR")
    statuses = texts(site, "#runs .badge")
    assert statuses == {"ERROR"}, statuses
    click_to(site, By.LINK_TEXT, str(failed), f"/runs/{failed}")
    error = text(site, "run-error")
    assert "RuntimeError: card declined" in error and "Traceback" in error
    fix.write_text("fixed")  # the operator fixes the cause, then retries from the page
    click_to(site, By.ID, "action-retry", "/confirm/retry")
    assert "pgqrs.retry_run" in d.page_source
    click_to(site, By.ID, "confirm", "done=retried")
    assert text(site, "flash") == f"Run {failed}: retried."
    # no reload: the page's live part is polled (every 0.5 s here) until the worker has run it
    wait_for("the page to show SUCCESS", lambda: text(site, "run-status") == "SUCCESS")
    assert run_status(site["dsn"], failed) == "SUCCESS"


def test_an_action_without_the_token_is_refused(site: dict[str, Any]) -> None:
    fix: Path = site["tmp"] / "never-there"
    failed = new_run(site, {"needs": str(fix)}, "ERROR")
    log_in(site)
    d = site["driver"]
    d.get(f"{site['url']}/runs/{failed}/confirm/retry")
    d.delete_all_cookies()  # the session (the token) is gone; the form is still on the screen
    d.find_element(By.ID, "confirm").click()
    # the page being left may be read as it goes: text() reads again what went stale
    wait_for("the refusal", lambda: "token is needed" in text(site, "body", By.TAG_NAME), timeout=10)
    d.get(f"{site['url']}/runs/{failed}")
    assert "/login" in d.current_url  # every page needs the token too
    assert run_status(site["dsn"], failed) == "ERROR"


def test_a_script_in_a_run_input_is_inert(site: dict[str, Any]) -> None:
    run_id = new_run(site, {"note": SCRIPT}, "SUCCESS")
    log_in(site)
    d = site["driver"]
    d.get(f"{site['url']}/runs/{run_id}")
    assert SCRIPT in text(site, "run-input")  # shown as text
    assert d.title == f"Run {run_id} · pgqrs"  # the script did not run (it would set the title)
    d.get(f"{site['url']}/runs/{run_id}/value?what=value&step=load")
    assert SCRIPT in text(site, "whole") and d.title != "pwned"
