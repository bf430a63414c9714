"""Least privilege (issues 8 and 13, docs/security.md), tested with real login roles (the `logins` fixture,
tests/conftest.py: pgqrs_t_worker ∈ pgqrs_worker, pgqrs_t_client ∈ pgqrs_client, pgqrs_t_admin ∈ pgqrs_admin,
not a superuser, and pgqrs_t_nobody with no pgqrs role; the test cluster trusts local connections, so
connecting as them needs no password).

This file: what each role can do in a real session (no reaching another schema through a text parameter, no
shadowing by temp objects), the clock override rule, and the Python package under the roles.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

import pgqrs
from security_roles import Conn, as_login, docs_matrix, one, public_functions, setup_run, sqlstate

pytestmark = pytest.mark.timeout(300)

SECRET = "TOPSECRET-6b1f"
ENGINE_CODES = set(pgqrs.errors.REGISTRY)


# --- real sessions ----------------------------------------------------------------------------------------


def test_client_cannot_dequeue_or_write_steps(logins: None, db: str, conn: Conn) -> None:
    ctx = setup_run(conn)
    run, token, worker = ctx["run"], ctx["token"], ctx["worker"]
    with as_login(db, "pgqrs_t_client") as client:
        # what a client is for works
        new_run = one(client, "select run_id from pgqrs.trigger('sec_wf', '{\"x\": 1}')")[0]
        assert one(client, "select status from pgqrs.run_status(%s)", (new_run,))[0] == "QUEUED"
        assert client.execute("select * from pgqrs.run_steps(%s)", (run,)).fetchall()
        assert one(client, "select count(*) from pgqrs.run_overview")[0] >= 2
        client.execute("select pgqrs.update_step(%s, 'webhook', 'SUCCESS', '\"ok\"')", (run,))
        # what it is not for is refused by PostgreSQL before any pgqrs code runs
        refused = {
            "dequeue": f"select * from pgqrs.dequeue('sec_wf', {worker})",
            "register_worker": "select pgqrs.register_worker('intruder', 'h', 1, 'sec_wf')",
            "heartbeat": f"select * from pgqrs.heartbeat({worker}, array['{token}']::uuid[])",
            "acquire_step": f"select * from pgqrs.acquire_step({run}, 's2', '{token}')",
            "complete_step": f"select pgqrs.complete_step({run}, 's1', '{token}', '1')",
            "fail_step": f"select * from pgqrs.fail_step({run}, 's1', '{token}', '{{}}')",
            "pause_step": f"select * from pgqrs.pause_step({run}, 's1', '{token}')",
            "complete_run": f"select pgqrs.complete_run({run}, '{token}')",
            "fail_run": f"select pgqrs.fail_run({run}, '{token}')",
            "release_run": f"select pgqrs.release_run({run}, '{token}')",
            "archive": f"select pgqrs.archive({run})",
            "stop_worker": f"select pgqrs.stop_worker({worker})",
            "create_workflow": "select pgqrs.create_workflow('sec_wf', '{\"max_attempts\": 1000}')",
            "retry_run": f"select pgqrs.retry_run({run})",
            "internal _lease": f"select pgqrs._lease({run}, '{token}')",
            "insert steps": "insert into pgqrs.steps (run_id, step_id, status)"
            f" values ({run}, 'x', 'SUCCESS')",
            "update runs": f"update pgqrs.runs set status = 'SUCCESS' where run_id = {run}",
            "delete messages": "delete from pgqrs.messages",
            "read steps": "select * from pgqrs.steps",
            "read messages": "select lease_token from pgqrs.messages",
        }
        for what, stmt in refused.items():
            assert sqlstate(lambda s=stmt: client.execute(s)) == "42501", f"client could {what}"
    # nothing it tried changed the run
    assert one(conn, "select status from pgqrs.runs where run_id = %s", (run,))[0] == "RUNNING"
    assert (
        one(conn, "select status from pgqrs.steps where run_id = %s and step_id = 's1'", (run,))[0]
        == "RUNNING"
    )


def test_worker_cannot_alter_the_schema(logins: None, db: str, conn: Conn) -> None:
    with as_login(db, "pgqrs_t_worker") as worker:
        # the worker's own job, end to end
        worker.execute("select pgqrs.create_workflow('wk_wf')")
        wid = one(worker, "select pgqrs.register_worker('wk_w', 'h', 1, 'wk_wf')")[0]
        one(worker, "select pgqrs.queue_channel('wk_wf')")
        run = one(conn, "select run_id from pgqrs.trigger('wk_wf', '{}')")[0]  # a client's job
        got, token = one(worker, "select run_id, lease_token from pgqrs.dequeue('wk_wf', %s)", (wid,))
        assert got == run
        assert one(worker, "select status from pgqrs.acquire_step(%s, 'a', %s)", (run, token))[0] == "EXECUTE"
        worker.execute("select pgqrs.complete_step(%s, 'a', %s, '1')", (run, token))
        worker.execute("select * from pgqrs.heartbeat(%s, array[%s]::uuid[])", (wid, token))
        assert one(worker, "select pgqrs.complete_run(%s, %s, '{}')", (run, token))[0] == "SUCCESS"
        assert one(worker, "select pgqrs.archive(%s, %s)", (run, wid))[0] is True  # it held the run
        worker.execute("select count(*) from pgqrs.worker_status")
        worker.execute("select pgqrs.stop_worker(%s)", (wid,))
        refused = {
            "create table": "create table pgqrs.evil (x int)",
            "create view": "create view pgqrs.evil as select 1",
            "create function": "create function pgqrs.evil() returns int language sql as 'select 1'",
            "replace a function": "create or replace function pgqrs.now() returns timestamptz language sql"
            " as 'select now()'",
            "alter table": "alter table pgqrs.runs add column evil text",
            "drop table": "drop table pgqrs.steps",
            "truncate": "truncate pgqrs.runs",
            "comment": "comment on table pgqrs.runs is 'evil'",
            "create index": "create index on pgqrs.runs (status)",
            "grant": "grant execute on function pgqrs.retry_run(bigint) to public",
            "write a table": f"update pgqrs.steps set value = '2' where run_id = {run}",
            "trigger": "select pgqrs.trigger('wk_wf', '{}')",
            "update_step": f"select pgqrs.update_step({run}, 'a', 'SUCCESS', '2')",
            "resume_run": f"select pgqrs.resume_run({run})",
            "retry_run": f"select pgqrs.retry_run({run})",
        }
        for what, stmt in refused.items():
            assert sqlstate(lambda s=stmt: worker.execute(s)) == "42501", f"worker could {what}"
    assert one(conn, "select to_regclass('pgqrs.evil')")[0] is None


def test_a_login_without_a_pgqrs_role_can_do_nothing(logins: None, db: str, conn: Conn) -> None:
    ctx = setup_run(conn)
    with as_login(db, "pgqrs_t_nobody") as nobody:
        for stmt in (
            "select pgqrs.now()",
            f"select * from pgqrs.run_status({ctx['run']})",
            "select pgqrs.trigger('sec_wf', '{}')",
            "select * from pgqrs.run_overview",
            "select * from pgqrs.runs",
        ):
            assert sqlstate(lambda s=stmt: nobody.execute(s)) == "42501", stmt


INJECTIONS = [
    "secret.t",
    '"secret"."t"',
    "'; select v from secret.t; --",
    "x'); select v from secret.t; --",
    "$$; select v from secret.t; $$",
    "(select v from secret.t)",
    "' || (select v from secret.t) || '",
    "%I %L %s secret.t",
    "sec_wf; drop table pgqrs.runs",
    "pg_read_file('/etc/passwd')",
    "\\'; select 1; --",
]

# a valid value for every parameter name of the public functions; one text parameter at a time gets a payload
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
PARAM_VALUES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "p_name": lambda c: "sec_name",
    "p_workflow": lambda c: c["wf"],
    "p_queue": lambda c: c["wf"],
    "p_input": lambda c: Jsonb({}),
    "p_inputs": lambda c: Jsonb([{}]),
    "p_idempotency_key": lambda c: None,
    "p_delay": lambda c: None,
    "p_run_at": lambda c: None,
    "p_retry_policy": lambda c: None,
    "p_hostname": lambda c: "h",
    "p_port": lambda c: 1,
    "p_worker": lambda c: c["worker"],
    "p_batch_size": lambda c: 1,
    "p_visibility": lambda c: "30 seconds",
    "p_lease_tokens": lambda c: [c["token"]],
    "p_message_id": lambda c: c["run"],
    "p_run": lambda c: c["run"],
    "p_step_id": lambda c: "s1",
    "p_lease_token": lambda c: c["token"],
    "p_current_time": lambda c: None,
    "p_value": lambda c: Jsonb(1),
    "p_error": lambda c: Jsonb({}),
    "p_output": lambda c: Jsonb({}),
    "p_transient": lambda c: True,
    "p_retry_after": lambda c: None,
    "p_timeout": lambda c: None,
    "p_duration": lambda c: None,
    "p_status": lambda c: "RUNNING",
    "p_steps": lambda c: Jsonb([{"lease_token": str(c["token"]), "step_id": "s1", "running_for": 1}]),
    "p_reason": lambda c: "ops",
    "p_until": lambda c: "2000-01-01 00:00:00+00",  # due: the sleep goes on, the lease kept
    "p_key": lambda c: "sec_key",
    "p_payload": lambda c: Jsonb({}),
    "p_topic": lambda c: "sec_topic",
    "p_message": lambda c: Jsonb({}),
    "p_children": lambda c: [c["run"]],
    "p_max_concurrency": lambda c: None,
    "p_max_concurrency_per_key": lambda c: None,
    "p_rate_limit": lambda c: None,
    "p_priority": lambda c: 0,
    "p_concurrency_key": lambda c: None,
    "p_trace_context": lambda c: Jsonb({"traceparent": TRACEPARENT}),
    "p_older_than": lambda c: timedelta(days=1),
    "p_statuses": lambda c: ["SUCCESS"],
    "p_limit": lambda c: 10,
    "p_dry_run": lambda c: True,
    "p_retention": lambda c: timedelta(days=7),
    "p_width": lambda c: None,
    "p_version": lambda c: "v1",
    "p_cron": lambda c: "*/15 * * * *",
    "p_timezone": lambda c: "UTC",
    "p_catch_up": lambda c: "latest",
    "p_enabled": lambda c: False,
    "p_after": lambda c: "2030-01-01 00:00:00+00",
}


def function_params(conn: Conn) -> dict[str, list[tuple[str, str]]]:
    """regprocedure -> [(parameter name, type)] of the input parameters of every public function."""
    rows = conn.execute(
        """
        select p.oid::regprocedure::text, a.name, format_type(a.type, null)
        from pg_proc as p
        cross join lateral unnest(p.proargnames, coalesce(p.proallargtypes, p.proargtypes::oid[]),
                                  coalesce(p.proargmodes, array_fill('i'::"char", array[p.pronargs])))
            with ordinality as a (name, type, mode, n)
        where p.pronamespace = 'pgqrs'::regnamespace and p.proname !~ '^_' and a.mode in ('i', 'b')
        order by 1, a.n
        """
    ).fetchall()
    out: dict[str, list[tuple[str, str]]] = {}
    for fn, name, typ in rows:
        out.setdefault(fn, []).append((name, typ))
    for fn in (r[2] for r in public_functions(conn)):
        out.setdefault(fn, [])
    return out


def test_no_text_parameter_reads_another_schema(logins: None, db: str, conn: Conn) -> None:
    """Injection strings in every text (and JSON) parameter of every function, as the roles that may call it:
    only engine errors come back, the secret never does, and nothing outside pgqrs is touched."""
    conn.execute("create schema secret")
    conn.execute("create table secret.t (v text)")
    conn.execute("insert into secret.t values (%s)", (SECRET,))
    assert not one(conn, "select has_table_privilege('pgqrs_admin', 'secret.t', 'select')")[0], (
        "the function owner must have no rights outside pgqrs"
    )
    ctx = setup_run(conn)
    params = function_params(conn)
    grants = docs_matrix()
    calls = 0
    for login, role in (("pgqrs_t_worker", "pgqrs_worker"), ("pgqrs_t_client", "pgqrs_client")):
        with as_login(db, login) as session:
            assert sqlstate(lambda s=session: s.execute("select * from secret.t")) == "42501"
            for fn, args in params.items():
                name = fn.split("(")[0].removeprefix("pgqrs.")
                if role not in grants.get(name, set()):
                    continue
                unknown = [a for a, _t in args if a not in PARAM_VALUES]
                assert not unknown, f"add a valid value for {unknown} of {fn} to PARAM_VALUES"
                targets = [a for a, t in args if t in ("text", "jsonb")]
                for target in targets:
                    typ = dict(args)[target]
                    for payload in INJECTIONS:
                        values = {a: PARAM_VALUES[a](ctx) for a, _t in args}
                        values[target] = payload if typ == "text" else Jsonb({payload: [payload]})
                        query = sql.SQL("select * from {}({})").format(
                            sql.Identifier("pgqrs", name),
                            sql.SQL(", ").join(
                                sql.SQL("{} => {}").format(sql.Identifier(a), sql.Placeholder())
                                for a, _t in args
                            ),
                        )
                        calls += 1
                        try:
                            with session.transaction(force_rollback=True):
                                rows = session.execute(query, [values[a] for a, _t in args]).fetchall()
                        except psycopg.Error as exc:
                            assert exc.sqlstate in ENGINE_CODES, (
                                f"{fn} {target}={payload!r}: {exc.sqlstate} {exc}"
                            )
                            diag = exc.diag
                            text = " ".join(
                                str(x) for x in (diag.message_primary, diag.message_detail, diag.message_hint)
                            )
                            assert SECRET not in text
                        else:
                            assert SECRET not in repr(rows), f"{fn} {target}={payload!r} returned the secret"
    assert calls > 200
    assert one(conn, "select v from secret.t")[0] == SECRET
    assert one(conn, "select to_regclass('pgqrs.runs')")[0] is not None


def test_temp_objects_do_not_shadow_the_engine(logins: None, db: str, conn: Conn) -> None:
    with as_login(db, "pgqrs_t_worker") as worker:
        worker.execute("create temp table workflows (workflow_id bigint, name text, retry_policy jsonb)")
        worker.execute("create temp table queues (queue_id bigint, name text, workflow_id bigint)")
        worker.execute("create temp table workers (worker_id bigint, name text)")
        worker.execute(
            "create function pg_temp.now() returns timestamptz language sql"
            " as $$ select 'epoch'::timestamptz $$"
        )
        worker.execute("set search_path = pg_temp, public")
        worker.execute("select pgqrs.create_workflow('shadow_wf')")
        wid = one(worker, "select pgqrs.register_worker('shadow_w', 'h', 1, 'shadow_wf')")[0]
        assert one(worker, "select count(*) from pg_temp.workflows")[0] == 0
        assert one(worker, "select count(*) from pg_temp.workers")[0] == 0
    assert one(conn, "select worker_id from pgqrs.workers where name = 'shadow_w'")[0] == wid
    assert one(conn, "select heartbeat_at > '2000-01-01' from pgqrs.workers where name = 'shadow_w'")[0]


# --- the clock --------------------------------------------------------------------------------------------


def test_clock_override_is_refused_for_workers_and_clients(logins: None, db: str, conn: Conn) -> None:
    ctx = setup_run(conn)
    for login in ("pgqrs_t_worker", "pgqrs_t_client"):
        with as_login(db, login) as session:
            assert one(session, "select pgqrs.now() > '2020-01-01'")[0]
            session.execute("select set_config('pgqrs.now', '2000-01-01 00:00+00', false)")
            assert sqlstate(lambda s=session: s.execute("select pgqrs.now()")) == "42501"
            assert sqlstate(lambda s=session: s.execute("select * from pgqrs.queue_stats")) == "42501"
            session.execute("reset pgqrs.now")
            assert one(session, "select pgqrs.now() > '2020-01-01'")[0]
    with as_login(db, "pgqrs_t_worker") as worker:
        # moving the clock back to keep a lease alive fails before the heartbeat is recorded
        worker.execute("select set_config('pgqrs.now', '2000-01-01 00:00+00', false)")
        code = sqlstate(
            lambda: worker.execute(
                "select * from pgqrs.heartbeat(%s, array[%s]::uuid[])", (ctx["worker"], ctx["token"])
            )
        )
        assert code == "42501"


def test_clock_override_is_honoured_for_admins_and_superusers(logins: None, db: str, conn: Conn) -> None:
    conn.execute("select set_config('pgqrs.now', '2031-02-03 04:05:06+00', false)")
    assert str(one(conn, "select pgqrs.now()::text")[0]).startswith("2031-02-03")
    conn.execute("set role pgqrs_worker")  # SET ROLE keeps the session user: a superuser session may still
    assert str(one(conn, "select pgqrs.now()::text")[0]).startswith("2031-02-03")
    conn.execute("reset role")
    with as_login(db, "pgqrs_t_admin") as admin:
        admin.execute("select set_config('pgqrs.now', '2031-02-03 04:05:06+00', false)")
        assert str(one(admin, "select pgqrs.now()::text")[0]).startswith("2031-02-03")


def test_clock_override_set_for_a_role_does_not_help_it(logins: None, db: str, conn: Conn) -> None:
    conn.execute(
        sql.SQL("alter role pgqrs_t_client in database {} set pgqrs.now = '2000-01-01'").format(
            sql.Identifier(conn.info.dbname)
        )
    )
    try:
        with as_login(db, "pgqrs_t_client") as client:
            assert sqlstate(lambda: client.execute("select pgqrs.now()")) == "42501"
    finally:
        conn.execute(
            sql.SQL("alter role pgqrs_t_client in database {} reset pgqrs.now").format(
                sql.Identifier(conn.info.dbname)
            )
        )


# --- the Python package under the roles -------------------------------------------------------------------


def test_seed_flow_runs_with_a_worker_login_and_a_client_login(logins: None, db: str) -> None:
    """The package needs nothing beyond the roles: a worker process as pgqrs_t_worker, the app as
    pgqrs_t_client."""

    async def flow() -> None:
        worker_store = await pgqrs.connect(make_conninfo(db, user="pgqrs_t_worker"), max_size=2)
        client_store = await pgqrs.connect(make_conninfo(db, user="pgqrs_t_client"), max_size=2)
        try:
            await pgqrs.workflow().name("seed_wf").store(worker_store).create()
            consumer = await pgqrs.consumer("seed-w", 8080, "seed_wf").create(worker_store)
            handle = (
                await pgqrs.workflow().name("seed_wf").store(client_store).trigger({"bucket": "b"}).execute()
            )
            messages = await consumer.dequeue(batch_size=1)
            assert [m.id for m in messages] == [handle.id]
            run = await pgqrs.run().message(messages[0]).store(worker_store).execute()
            step = await run.acquire_step("list", current_time=run.current_time)
            assert step.status == "EXECUTE"
            await step.guard.success(["a"])
            await run.complete({"files": 1})
            await consumer.archive(messages[0].id)
            info = await pgqrs.run().status(handle).store(client_store).get()
            assert info.status == "SUCCESS" and info.output() == {"files": 1}
            assert await pgqrs.run().status(handle).store(client_store).result(timeout=10) == {"files": 1}
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                await pgqrs.consumer("seed-intruder", 1, "seed_wf").create(client_store)
        finally:
            await worker_store.close()
            await client_store.close()

    asyncio.run(flow())
