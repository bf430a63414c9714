"""`pgqrs dashboard` in process (the ASGI app on a real database; the browser tests are in
test_dashboard_browser.py): its pages with real data, the runs' filters and keyset pages, escaping, and what
keeps it safe: the bind, the token, CSRF, read-only mode and the role each connection takes."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from dashboard_helpers import SCRIPT, TOKEN, csrf_of, dashboard, demo, log_in, trigger
from pgqrs.cli import main
from pgqrs.dashboard import UnsafeSetting, check_bind
from pgqrs.dashboard.db import NoRole

Conn = psycopg.Connection[tuple[Any, ...]]


def status_of(conn: Conn, run_id: int) -> str:
    return str(conn.execute("select status from pgqrs.runs where run_id = %s", (run_id,)).fetchone()[0])  # type: ignore[index]


@pytest.mark.parametrize("host, token, read_only, refused", [
    ("127.0.0.1", None, False, False), ("localhost", None, False, False), ("::1", None, False, False),
    ("0.0.0.0", None, False, True), ("192.0.2.7", None, False, True), ("0.0.0.0", TOKEN, False, False),
    ("0.0.0.0", None, True, False), ("127.0.0.1", "short", False, True),
])
def test_a_bind_beyond_this_machine_needs_a_token_or_read_only(host: str, token: str | None, read_only: bool,
                                                               refused: bool) -> None:
    if refused:
        with pytest.raises(UnsafeSetting):
            check_bind(host, token, read_only)
    else:
        check_bind(host, token, read_only)


def test_the_cli_refuses_to_listen_on_all_interfaces_without_a_token(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGQRS_DASHBOARD_TOKEN", raising=False)
    assert main(["dashboard", "--host", "0.0.0.0", "--dsn", "dbname=never_reached"]) == 2
    assert "refusing to listen on 0.0.0.0 without a token" in capsys.readouterr().err


def test_every_page_shows_real_data_and_a_script_input_as_text(conn: Conn, db: str) -> None:
    runs = demo(conn)
    with dashboard(db) as client:
        overview = client.get("/")
        assert overview.status_code == 200
        assert ">orders</a>" in overview.text and "orders-w1" in overview.text  # a queue, a worker
        assert 'id="finished-failed">1<' in overview.text  # the dead run, in the chart's window
        page = client.get(f"/runs/{runs['failed']}")
        assert "ValueError: card declined" in page.text and "File &#34;job.py&#34;, line 7" in page.text
        assert ">load<" in page.text and "{&#34;rows&#34;: 3}" in page.text  # the step and its value
        dead = client.get("/dead")
        assert f'href="/runs/{runs["failed"]}"' in dead.text and "card declined" in dead.text
        whole = f"/runs/{runs['failed']}/value?what=error"
        for path in ("/attention", "/workers", "/schedules", "/runs", whole):
            assert client.get(path).status_code == 200, path
        assert client.get("/runs/987654").status_code == 404
        script_page = client.get(f"/runs/{runs['script']}").text
        assert SCRIPT not in script_page and "&lt;script&gt;document.title=" in script_page
        assert 'id="run-version"' not in script_page  # an unversioned run shows none
        conn.execute("select pgqrs.set_run_version(%s, '2024-06-01')", (runs["script"],))
        assert '<td id="run-version">2024-06-01</td>' in client.get(f"/runs/{runs['script']}").text
        assert "script-src 'self'" in client.get("/").headers["content-security-policy"]


def test_the_runs_filters_and_keyset_pages(conn: Conn, db: str) -> None:
    runs = demo(conn)
    conn.execute("select pgqrs.trigger_batch(p_workflow => 'emails', p_inputs => "
                 "(select jsonb_agg(jsonb_build_object('n', g)) from generate_series(1, 230) as g))")
    with dashboard(db) as client:
        first = client.get("/runs?workflow=emails").text
        assert first.count('<tr class="status-') == 100 and 'id="older"' in first
        older = first[first.index('id="older" href="') + 17:].split('"')[0].replace("&amp;", "&")
        second = client.get(older).text
        assert second.count('<tr class="status-') == 100
        top_of_second = int(second.split('<td><a href="/runs/')[1].split('"')[0])
        bottom_of_first = int(older.split("before=")[1].split("&")[0])
        assert top_of_second == bottom_of_first - 1  # no run skipped, none twice
        third_link = second[second.index('id="older" href="') + 17:].split('"')[0].replace("&amp;", "&")
        third = client.get(third_link).text
        assert third.count('<tr class="status-') == 32 and 'id="older"' not in third  # 232 emails runs
        errors = client.get("/runs?status=ERROR").text
        assert errors.count('<tr class="status-') == 1 and f'/runs/{runs["failed"]}"' in errors
        keyed = client.get("/runs?key=welcome-42").text
        assert keyed.count('<tr class="status-') == 1 and f'/runs/{runs["keyed"]}"' in keyed
        assert client.get("/runs?until=2000-01-01T00:00").text.count('<tr class="status-') == 0
        since = client.get("/runs?since=2000-01-01T00:00&workflow=orders").text
        assert since.count('<tr class="status-') == 1
        assert client.get("/runs/987654/confirm/retry").status_code == 403  # no token: no confirmation
        jump = client.get(f"/runs?run={runs['keyed']}")
        assert jump.status_code == 303 and jump.headers["location"] == f"/runs/{runs['keyed']}"


def test_actions_need_the_token_a_session_and_the_csrf_token(conn: Conn, db: str) -> None:
    runs = demo(conn)
    dead = runs["failed"]
    with dashboard(db) as client:  # no token: no action at all
        assert client.post(f"/runs/{dead}/retry").status_code == 403
        assert "Retry" not in client.get(f"/runs/{dead}").text
    with dashboard(db, token=TOKEN, read_only=True) as client:  # read-only: none either
        client.post("/login", data={"token": TOKEN})
        assert client.get(f"/runs/{dead}/confirm/retry").status_code == 403
    assert status_of(conn, dead) == "ERROR"
    with dashboard(db, token=TOKEN) as client:
        assert client.get("/", headers={"accept": "text/html"}).status_code == 303  # to /login
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert client.post("/login", data={"token": "wrong"}).status_code == 403
        for target in ("//evil.example/x", "https://evil.example", "/\\evil.example"):  # no open redirect
            gone = client.post("/login", data={"token": TOKEN, "next": target})
            assert gone.status_code == 303 and gone.headers["location"] == "/", target
        client.cookies.clear()
        assert client.post(f"/runs/{dead}/retry", data={"csrf": "x"}).status_code == 401  # not logged in
        csrf = log_in(client, runs["keyed"])
        assert client.post(f"/runs/{dead}/retry", data={}).status_code == 403  # no CSRF token
        assert client.post(f"/runs/{dead}/retry", data={"csrf": csrf + "0"}).status_code == 403
        assert client.post(f"/runs/{dead}/retry", data={"csrf": csrf},
                           headers={"origin": "http://evil.example"}).status_code == 403
        assert status_of(conn, dead) == "ERROR"
        page = client.get(f"/runs/{dead}/confirm/retry")
        assert "pgqrs.retry_run" in page.text and csrf_of(page.text) == csrf
        done = client.post(f"/runs/{dead}/retry", data={"csrf": csrf})
        assert done.status_code == 303 and done.headers["location"] == f"/runs/{dead}?done=retried"
        assert status_of(conn, dead) == "QUEUED"
        refused = client.post(f"/runs/{dead}/retry", data={"csrf": csrf})  # QUEUED: the engine's QR003
        assert refused.status_code == 409 and "retry refused" in refused.text
        fork = client.post(f"/runs/{dead}/fork", data={"csrf": csrf, "from_step": "load"})
        assert fork.status_code == 303
        assert status_of(conn, int(fork.headers["location"].split("/")[2].split("?")[0])) == "QUEUED"
        assert client.get("/runs/987654/confirm/retry").status_code == 404
        assert client.post("/runs/987654/retry", data={"csrf": csrf}).status_code == 409  # QR002
        cancel = client.post(f"/runs/{runs['keyed']}/cancel", data={"csrf": csrf, "reason": "test"})
        assert cancel.status_code == 303 and status_of(conn, runs["keyed"]) == "CANCELLED"


def test_update_step_and_resume_on_a_paused_run(conn: Conn, db: str) -> None:
    demo(conn)
    run_id = trigger(conn, "orders", {"order": 2})
    worker = conn.execute("select pgqrs.register_worker(p_name => 'p', p_queue => 'orders')").fetchone()[0]  # type: ignore[index]
    token = conn.execute("select lease_token from pgqrs.dequeue('orders', %s)", (worker,)).fetchone()[0]  # type: ignore[index]
    conn.execute("select pgqrs.acquire_step(%s, 'approve', %s)", (run_id, token))
    conn.execute("select pgqrs.pause_step(%s, 'approve', %s)", (run_id, token))
    with dashboard(db, token=TOKEN) as client:
        csrf = log_in(client, run_id)
        page = client.get(f"/runs/{run_id}").text
        assert 'id="action-update-step"' in page and 'id="action-resume"' in page
        form = {"csrf": csrf, "step_id": "approve", "status": "SUCCESS"}
        bad = client.post(f"/runs/{run_id}/update-step", data={**form, "value": "{not json"})
        assert bad.status_code == 409
        ok = client.post(f"/runs/{run_id}/update-step", data={**form, "value": '{"ok": true}'})
        assert ok.status_code == 303
        assert client.post(f"/runs/{run_id}/resume", data={"csrf": csrf}).status_code == 303
    assert status_of(conn, run_id) == "QUEUED"
    recorded = conn.execute("select value from pgqrs.steps where run_id = %s", (run_id,)).fetchone()
    assert recorded == ({"ok": True},)


def test_each_mode_connects_with_the_least_privileged_role(conn: Conn, db: str, logins: None) -> None:
    runs = demo(conn)
    as_admin = make_conninfo(db, user="pgqrs_t_admin")
    with dashboard(db, read_only=True) as client:  # the superuser login drops to pgqrs_client, read-only
        db_ = client.app.state.db  # type: ignore[attr-defined]
        assert db_.role == "pgqrs_client" and db_.allowed == set()
        assert client.get(f"/runs/{runs['failed']}").status_code == 200
    with dashboard(as_admin, token=TOKEN) as client:  # actions: pgqrs_admin, which may take all of them
        assert client.app.state.db.role == "pgqrs_admin"  # type: ignore[attr-defined]
        assert client.app.state.db.allowed == {"retry", "resume", "cancel", "fork", "update-step"}  # type: ignore[attr-defined]
    with dashboard(make_conninfo(db, user="pgqrs_t_client"), token=TOKEN) as client:
        assert client.app.state.db.allowed == {"resume", "cancel", "update-step"}  # type: ignore[attr-defined]
        csrf = log_in(client, runs["keyed"])
        assert client.post(f"/runs/{runs['failed']}/retry", data={"csrf": csrf}).status_code == 403
    assert status_of(conn, runs["failed"]) == "ERROR"
    with pytest.raises(NoRole), dashboard(make_conninfo(db, user="pgqrs_t_nobody")):
        pass


def test_a_read_only_dashboard_cannot_write_even_through_its_own_pool(conn: Conn, db: str) -> None:
    runs = demo(conn)
    from pgqrs import _sql

    with dashboard(db, read_only=True) as client:
        pool = client.app.state.db  # type: ignore[attr-defined]
        with pytest.raises(psycopg.Error) as caught:
            client.portal.call(pool.rows, _sql.CANCEL_RUN, (runs["keyed"], None))  # type: ignore[union-attr]
        assert caught.value.sqlstate in ("25006", "42501")
    assert status_of(conn, runs["keyed"]) == "QUEUED"
