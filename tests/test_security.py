"""Least privilege (issues 8 and 13, docs/security.md): roles, grants, ownership no login role can reach,
the install's refusal of objects it did not create, pinned search paths, no dynamic SQL from input, and the
clock override rule, tested with real login roles.

Login roles (cluster-wide, created once per session and dropped at the end):
pgqrs_t_worker ∈ pgqrs_worker, pgqrs_t_client ∈ pgqrs_client, pgqrs_t_admin ∈ pgqrs_admin (not a superuser),
pgqrs_t_nobody (no pgqrs role). The test cluster trusts local connections, so connecting as them needs no
password.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

import pgqrs
from conftest import REPO, _admin_execute, drop_db, ensure_template, schema_files
from pgqrs.install import UnexpectedObjects
from test_upgrade import apply_fixture

pytestmark = pytest.mark.timeout(300)

Conn = psycopg.Connection[tuple[Any, ...]]
ROLES = ("pgqrs_owner", "pgqrs_admin", "pgqrs_worker", "pgqrs_client")
LOGINS = {
    "pgqrs_t_worker": "pgqrs_worker",
    "pgqrs_t_client": "pgqrs_client",
    "pgqrs_t_admin": "pgqrs_admin",
    "pgqrs_t_nobody": None,
}
SECRET = "TOPSECRET-6b1f"
ENGINE_CODES = {f"QR00{i}" for i in range(1, 9)} | {"22023"}


# --- fixtures and helpers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def logins(pg_dsn: str) -> Iterator[None]:
    ensure_template(pg_dsn)  # the roles pgqrs_* exist once the schema is installed somewhere
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for login, role in LOGINS.items():
            conn.execute(
                sql.SQL(
                    "do $$ begin if not exists (select from pg_roles where rolname = {name}) then "
                    "create role {ident} login; end if; end $$"
                ).format(name=sql.Literal(login), ident=sql.Identifier(login))
            )
            if role:
                conn.execute(sql.SQL("grant {} to {}").format(sql.Identifier(role), sql.Identifier(login)))
    yield
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for login in LOGINS:
            try:
                conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(login)))
            except psycopg.Error:
                pass  # still owns something in a kept database (PGQRS_KEEP_DBS): harmless


def as_login(dsn: str, login: str) -> Conn:
    return psycopg.connect(make_conninfo(dsn, user=login), autocommit=True)


def sqlstate(fn: Callable[[], object]) -> str | None:
    try:
        fn()
    except psycopg.Error as exc:
        return exc.sqlstate
    return None


def one(conn: Conn, query: Any, params: Any = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row


def setup_run(conn: Conn, wf: str = "sec_wf") -> dict[str, Any]:
    """As the superuser: a workflow, a worker, and a run leased by it with step s1 acquired."""
    conn.execute("select pgqrs.create_workflow(%s)", (wf,))
    worker = one(conn, "select pgqrs.register_worker(%s, 'h', 1, %s)", (f"{wf}_w", wf))[0]
    conn.execute("select pgqrs.trigger(%s, '{}')", (wf,))
    run, token = one(conn, "select run_id, lease_token from pgqrs.dequeue(%s, %s)", (wf, worker))
    conn.execute("select pgqrs.acquire_step(%s, 's1', %s)", (run, token))
    return {"worker": worker, "run": run, "token": token, "wf": wf}


def public_functions(conn: Conn) -> list[tuple[int, str, str]]:
    return conn.execute(
        "select p.oid::int, p.proname::text, p.oid::regprocedure::text from pg_proc as p"
        " where p.pronamespace = 'pgqrs'::regnamespace and p.proname !~ '^_' order by 2, 3"
    ).fetchall()


def docs_matrix() -> dict[str, set[str]]:
    """docs/security.md's "Who can call what" table: function -> roles marked ✓ (besides pgqrs_admin)."""
    text = (REPO / "docs" / "security.md").read_text()
    section = text.split("## Who can call what", 1)[1].split("\n## ", 1)[0]
    matrix: dict[str, set[str]] = {}
    for line in section.splitlines():
        m = re.match(r"^\| `(\w+)` \|([^|]*)\|([^|]*)\|", line)
        if m:
            matrix[m[1]] = {r for r, cell in (("pgqrs_worker", m[2]), ("pgqrs_client", m[3])) if "✓" in cell}
    assert matrix, "the table was not found in docs/security.md"
    return matrix


# --- catalog: search paths, security definer, ownership, grants -------------------------------------------


def test_every_function_pins_a_safe_search_path(conn: Conn) -> None:
    """Inlined helpers aside: internal, IMMUTABLE, LANGUAGE sql, not security definer and with no SET clause
    at all (a SET stops the planner from inlining them into their caller, whose search_path is pinned)."""
    rows = conn.execute(
        "select p.oid::regprocedure::text, p.proconfig,"
        " p.proname ~ '^_' and l.lanname = 'sql' and p.provolatile = 'i' and not p.prosecdef"
        " and p.proconfig is null"
        " from pg_proc as p join pg_language as l on l.oid = p.prolang"
        " where p.pronamespace = 'pgqrs'::regnamespace"
    ).fetchall()
    assert len(rows) > 20
    inlined = sorted(fn for fn, _config, is_inlined in rows if is_inlined)
    assert inlined == ["pgqrs._lease_held(uuid,timestamp with time zone,uuid,timestamp with time zone)"]
    for fn, config, is_inlined in rows:
        if is_inlined:
            continue
        paths = [c.split("=", 1)[1] for c in config or [] if c.startswith("search_path=")]
        assert paths, f"{fn} does not pin search_path"
        parts = [p.strip() for p in paths[0].split(",")]
        assert parts[0] == "pg_catalog" and parts[-1] == "pg_temp", f"{fn}: search_path {paths[0]}"
        assert set(parts) <= {"pg_catalog", "pgqrs", "pg_temp"}, f"{fn}: search_path {paths[0]}"


def test_public_functions_are_security_definer_and_owned_by_pgqrs_owner(conn: Conn) -> None:
    rows = conn.execute(
        "select p.oid::regprocedure::text, p.prosecdef, p.proowner::regrole::text from pg_proc as p"
        " where p.pronamespace = 'pgqrs'::regnamespace"
    ).fetchall()
    for fn, secdef, owner in rows:
        assert owner == "pgqrs_owner", f"{fn} is owned by {owner}"
        if not fn.startswith("pgqrs._"):
            assert secdef, f"{fn} is not security definer: roles would need table privileges"


def test_pgqrs_owner_owns_the_schema_and_every_object(conn: Conn) -> None:
    assert (
        one(conn, "select nspowner::regrole::text from pg_namespace where nspname = 'pgqrs'")[0]
        == "pgqrs_owner"
    )
    others = conn.execute(
        "select c.oid::regclass::text, c.relowner::regrole::text from pg_class as c"
        " where c.relnamespace = 'pgqrs'::regnamespace and c.relowner <> 'pgqrs_owner'::regrole"
        " union all select t.oid::regtype::text, t.typowner::regrole::text from pg_type as t"
        " where t.typnamespace = 'pgqrs'::regnamespace and t.typowner <> 'pgqrs_owner'::regrole"
        " union all select p.oid::regprocedure::text, p.proowner::regrole::text from pg_proc as p"
        " where p.pronamespace = 'pgqrs'::regnamespace and p.proowner <> 'pgqrs_owner'::regrole"
    ).fetchall()
    assert others == []


def test_the_roles_are_plain_nologin_roles(conn: Conn) -> None:
    rows = conn.execute(
        "select rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls"
        " from pg_roles where rolname = any(%s) order by 1",
        (list(ROLES),),
    ).fetchall()
    assert [r[0] for r in rows] == sorted(ROLES)
    for name, *attributes in rows:
        assert not any(attributes), f"{name} has attributes {attributes}"
    # and pgqrs_admin is not a member of anything that could give it more; pgqrs_owner has no members at all
    assert (
        conn.execute(
            "select b.rolname from pg_auth_members as m join pg_roles as b on b.oid = m.roleid"
            " where m.member = 'pgqrs_admin'::regrole or m.member = 'pgqrs_owner'::regrole"
        ).fetchall()
        == []
    )
    assert (
        conn.execute(
            "select m.member::regrole::text from pg_auth_members as m where m.roleid = 'pgqrs_owner'::regrole"
        ).fetchall()
        == []
    )


def test_public_gets_nothing(conn: Conn) -> None:
    leaks = conn.execute(
        """
        select 'function ' || p.oid::regprocedure from pg_proc as p
        where p.pronamespace = 'pgqrs'::regnamespace
          and (p.proacl is null or exists (select from aclexplode(p.proacl) as a where a.grantee = 0))
        union all
        select 'relation ' || c.oid::regclass from pg_class as c
        where c.relnamespace = 'pgqrs'::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'S')
          and exists (select from aclexplode(c.relacl) as a where a.grantee = 0)
        union all
        select 'schema pgqrs' from pg_namespace as n
        where n.nspname = 'pgqrs' and exists (select from aclexplode(n.nspacl) as a where a.grantee = 0)
        """
    ).fetchall()
    assert leaks == []


def test_grants_match_the_documented_matrix(conn: Conn) -> None:
    documented = docs_matrix()
    actual: dict[str, set[str]] = {}
    for oid, name, _sig in public_functions(conn):
        roles = {
            r
            for r in ("pgqrs_worker", "pgqrs_client")
            if one(conn, "select has_function_privilege(%s, %s::oid, 'execute')", (r, oid))[0]
        }
        assert actual.setdefault(name, roles) == roles, f"overloads of {name} have different grants"
    undocumented = set(actual) - set(documented)
    assert not undocumented, (
        f"public functions {sorted(undocumented)} are not placed: add them to sql/security/privileges.sql and"
        " to the 'Who can call what' table of docs/security.md (or name them with a leading _ if internal)"
    )
    assert set(documented) - set(actual) == set(), "docs/security.md lists functions that do not exist"
    assert actual == documented


def test_internal_functions_are_not_executable_by_the_roles(conn: Conn) -> None:
    rows = conn.execute(
        "select p.oid::regprocedure::text, r.rolname from pg_proc as p cross join pg_roles as r"
        " where p.pronamespace = 'pgqrs'::regnamespace and p.proname ~ '^_'"
        " and r.rolname in ('pgqrs_worker', 'pgqrs_client')"
        " and has_function_privilege(r.oid, p.oid, 'execute')"
    ).fetchall()
    assert rows == []


def test_roles_have_no_table_privileges_and_read_only_views(conn: Conn) -> None:
    rows = conn.execute(
        "select c.oid::regclass::text, c.relkind::text from pg_class as c"
        " where c.relnamespace = 'pgqrs'::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'S')"
    ).fetchall()
    for role in ("pgqrs_worker", "pgqrs_client"):
        for rel, kind in rows:
            if kind == "S":
                assert not one(
                    conn, "select has_sequence_privilege(%s, %s, 'usage, select, update')", (role, rel)
                )[0], f"{role} on {rel}"
                continue
            writable = one(
                conn,
                "select has_table_privilege(%s, %s, 'insert, update, delete, truncate, references, trigger')",
                (role, rel),
            )[0]
            readable = one(conn, "select has_table_privilege(%s, %s, 'select')", (role, rel))[0]
            assert not writable, f"{role} may write {rel}"
            assert readable == (kind in ("v", "m")), f"{role} select on {rel}: {readable}"


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
        assert one(worker, "select pgqrs.archive(%s, %s)", (run, wid))[0] is False
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


# --- no dynamic SQL from input ----------------------------------------------------------------------------


def _strip(text: str) -> tuple[str, list[str]]:
    """SQL text without -- comments, with each '...' literal replaced by \\x00<n>\\x00; returns the literals.
    Dollar-quoted bodies stay (they are code)."""
    out, literals, i = [], [], 0
    while i < len(text):
        if text.startswith("--", i):
            j = text.find("\n", i)
            i = len(text) if j < 0 else j
        elif text[i] == "'":
            j = i + 1
            while True:
                j = text.find("'", j)
                if j < 0:
                    raise AssertionError("unterminated string literal")
                if text.startswith("''", j):
                    j += 2
                    continue
                break
            literals.append(text[i + 1 : j].replace("''", "'"))
            out.append(f"\x00{len(literals) - 1}\x00")
            i = j + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out), literals


def _call_args(code: str, start: int) -> list[str]:
    """The top-level comma-separated arguments of the call whose '(' is at `start`."""
    depth, args, cur = 0, [], []
    for ch in code[start:]:
        if ch == "(":
            depth += 1
            if depth == 1:
                continue
        elif ch == ")":
            depth -= 1
            if depth == 0:
                args.append("".join(cur).strip())
                return args
        if ch == "," and depth == 1:
            args.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    raise AssertionError("unbalanced parentheses")


def dynamic_sql_problems(text: str) -> tuple[int, list[str]]:
    """(number of dynamic EXECUTEs, problems): each must be `execute format('...', args)` whose %I / %L take
    any value and whose %s take only a reg* cast (catalog objects, quoted by their output function)."""
    code, literals = _strip(text)
    problems, found = [], 0
    for m in re.finditer(r"\bexecute\b", code, re.IGNORECASE):
        before = code[max(0, m.start() - 40) : m.start()].lower()
        after = code[m.end() : m.end() + 40].lower().lstrip()
        if re.search(r"\b(grant|revoke)\s+(all\s+privileges\s*,\s*)?$", before) or re.match(
            r"(on|function|procedure)\b", after
        ):
            continue  # GRANT EXECUTE ON, trigger EXECUTE FUNCTION
        found += 1
        line = code.count("\n", 0, m.start()) + 1
        fm = re.match(r"\s*format\s*\(", code[m.end() :])
        if not fm:
            problems.append(f"line {line}: dynamic EXECUTE without format()")
            continue
        args = _call_args(code, m.end() + fm.end() - 1)
        lit = re.fullmatch(r"\x00(\d+)\x00", args[0])
        if not lit:
            problems.append(f"line {line}: format string is not a literal")
            continue
        specs = re.findall(r"%(?:(\d+)\$)?[-0-9]*([sIL%])", literals[int(lit[1])])
        pos = 0
        for index, conv in specs:
            if conv == "%":
                continue
            if index:
                n = int(index)
            else:
                pos += 1
                n = pos
            arg = args[n] if n < len(args) else ""
            if conv == "s" and not re.search(r"::\s*reg(class|procedure|proc|type|role|namespace)\s*$", arg):
                problems.append(f"line {line}: %s with {arg!r} (use %I or %L, or a reg* cast)")
        if "||" in "".join(args[1:]):
            problems.append(f"line {line}: concatenation inside a dynamic statement's arguments")
    return found, problems


def test_dynamic_sql_checker_catches_the_bad_forms() -> None:
    body = (
        "do $$ begin execute 'select ' || p_name; execute format('select %s', p_name);"
        " execute format('select %I, %L', a, b); execute v_sql;"
        " execute format('alter table %s owner to x', v_oid::regclass); end $$; grant execute on function f()"
        " to r; -- execute 'in a comment'\ncreate trigger t after insert on x execute function f();"
    )
    found, problems = dynamic_sql_problems(body)
    assert found == 5
    assert len(problems) == 3, problems


def test_no_dynamic_sql_from_input() -> None:
    files = schema_files() + sorted((REPO / "sql" / "migrations").glob("*.sql"))
    total = 0
    for f in files:
        found, problems = dynamic_sql_problems(f.read_text())
        total += found
        assert not problems, f"{f.relative_to(REPO)}: " + "; ".join(problems)
    assert total >= 1, "the checker found no EXECUTE at all (security/*.sql have some): is it still working?"


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


# --- installing -------------------------------------------------------------------------------------------


def acl_snapshot(conn: Conn) -> list[tuple[Any, ...]]:
    return conn.execute(
        "select p.oid::regprocedure::text, p.proacl::text, p.proowner::regrole::text from pg_proc as p"
        " where p.pronamespace = 'pgqrs'::regnamespace"
        " union all select c.oid::regclass::text, c.relacl::text, c.relowner::regrole::text"
        " from pg_class as c"
        " where c.relnamespace = 'pgqrs'::regnamespace"
        " union all select 'schema', n.nspacl::text, n.nspowner::regrole::text from pg_namespace as n"
        " where n.nspname = 'pgqrs'"
        " union all select rolname, rolcanlogin::text || rolsuper::text, '' from pg_roles"
        " where rolname ~ '^pgqrs_'"
        " and rolname !~ '^pgqrs_t_' order by 1"
    ).fetchall()


def test_grants_are_idempotent(db: str, conn: Conn) -> None:
    before = acl_snapshot(conn)
    grants = [p for p in schema_files() if p.parent.name == "security"]
    assert grants
    for _ in range(2):
        for path in grants:
            conn.execute(path.read_text().encode(), prepare=False)
    assert pgqrs.install(db) == pgqrs.install(db)
    assert acl_snapshot(conn) == before


def test_only_a_superuser_or_an_owner_member_may_install(logins: None, db: str, conn: Conn) -> None:
    setup_run(conn)
    before = acl_snapshot(conn)
    # pgqrs_admin operates the engine but installs nothing: an install hands every object to pgqrs_owner
    for login in ("pgqrs_t_admin", "pgqrs_t_worker", "pgqrs_t_client", "pgqrs_t_nobody"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="may not install pgqrs"):
            pgqrs.install(make_conninfo(db, user=login))
    assert acl_snapshot(conn) == before
    # a deploy role that a superuser made a member of pgqrs_owner on purpose may (docs/security.md)
    conn.execute("grant pgqrs_owner to pgqrs_t_nobody")
    try:
        assert pgqrs.install(make_conninfo(db, user="pgqrs_t_nobody")) >= 1
    finally:
        conn.execute("revoke pgqrs_owner from pgqrs_t_nobody")
    assert acl_snapshot(conn) == before, "an install by an owner member left different owners or grants"


# --- pgqrs_admin operates, but cannot plant code (issue 13, class 9) --------------------------------------


def test_an_admin_member_cannot_change_the_engines_code(logins: None, db: str, conn: Conn) -> None:
    """Up to version 2 a member of pgqrs_admin owned every object: a trigger on pgqrs.schema_version, a view
    or a function redefined, ran as the next superuser who installed or ran `pgqrs stats`."""
    with as_login(db, "pgqrs_t_admin") as admin:
        refused = {
            "trigger": "create trigger planted before insert on pgqrs.schema_version for each row"
            " execute function pg_catalog.suppress_redundant_updates_trigger()",
            "replace a view": "create or replace view pgqrs.queue_stats as select * from pgqrs.queue_stats",
            "replace a function": "create or replace function pgqrs.now() returns timestamptz"
            " language sql as 'select pg_catalog.now()'",
            "create a function": "create function pgqrs.planted() returns int language sql as 'select 1'",
            "rule": "create rule planted as on insert to pgqrs.schema_version do also select 1",
            "row level security": "alter table pgqrs.runs enable row level security",
            "policy": "create policy planted on pgqrs.runs using (true)",
            "default": "alter table pgqrs.runs alter column created_at set default pg_catalog.now()",
            "index": "create index on pgqrs.runs (status)",
            "drop": "drop view pgqrs.queue_stats",
            "change the owner": "alter view pgqrs.queue_stats owner to pgqrs_admin",
            "become the owner": "set role pgqrs_owner",
            "write a table": "update pgqrs.schema_version set version = version",
        }
        for what, stmt in refused.items():
            assert sqlstate(lambda s=stmt: admin.execute(s)) == "42501", f"an admin member could {what}"
    assert one(conn, "select count(*) from pg_trigger where tgname = 'planted'")[0] == 0
    assert one(conn, "select to_regprocedure('pgqrs.planted()')")[0] is None


def test_an_admin_member_still_operates_the_engine(logins: None, db: str, conn: Conn) -> None:
    conn.execute("select pgqrs.create_workflow('ops_wf', '{\"max_attempts\": 1}')")
    worker = one(conn, "select pgqrs.register_worker('ops_w', 'h', 1, 'ops_wf')")[0]
    run = one(conn, "select run_id from pgqrs.trigger('ops_wf', '{}')")[0]
    token = one(conn, "select lease_token from pgqrs.dequeue('ops_wf', %s)", (worker,))[0]
    conn.execute("select pgqrs.acquire_step(%s, 's', %s)", (run, token))
    conn.execute("select * from pgqrs.fail_step(%s, 's', %s, '{}', false)", (run, token))
    # every function of the schema, whatever its name: later ops calls need no edit of the grants
    missing = conn.execute(
        "select p.oid::regprocedure::text from pg_proc as p where p.pronamespace = 'pgqrs'::regnamespace"
        " and not has_function_privilege('pgqrs_admin', p.oid, 'execute')"
    ).fetchall()
    assert missing == []
    relations = [
        r[0]
        for r in conn.execute(
            "select c.oid::regclass::text from pg_class as c"
            " where c.relnamespace = 'pgqrs'::regnamespace and c.relkind in ('r', 'v') order by 1"
        )
    ]
    with as_login(db, "pgqrs_t_admin") as admin:
        assert one(admin, "select count(*) from pgqrs.dead_letters")[0] == 1
        assert one(admin, "select pgqrs.retry_run(%s)", (run,))[0] == "QUEUED"
        assert one(admin, "select status from pgqrs.run_status(%s)", (run,))[0] == "QUEUED"
        for rel in relations:  # the views, and the tables read-only for debugging
            admin.execute(sql.SQL("select * from {} limit 1").format(sql.SQL(rel)))
        admin.execute("select set_config('pgqrs.now', '2031-01-01 00:00+00', false)")  # the test clock
        assert str(one(admin, "select pgqrs.now()::text")[0]).startswith("2031-01-01")


# --- the install refuses objects it did not create --------------------------------------------------------

PLANTED_BODY = """
begin
    create table if not exists public.pgqrs_t_planted_marker ();
    alter role pgqrs_t_admin superuser;
    return {ret};
end
"""


@pytest.fixture
def v2_db(logins: None, pg_dsn: str) -> Iterator[str]:
    """A database at schema version 2 as it shipped: pgqrs_admin owns every object in it."""
    name = f"sec_v2_{os.getpid()}"
    drop_db(name, pg_dsn)
    _admin_execute(pg_dsn, sql.SQL("create database {}").format(sql.Identifier(name)))
    dsn = make_conninfo(pg_dsn, dbname=name)
    apply_fixture(dsn, 2)
    yield dsn
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("alter role pgqrs_t_admin nosuperuser")
    if not os.environ.get("PGQRS_KEEP_DBS"):
        drop_db(name, pg_dsn)


def planted_code_ran(conn: Conn) -> bool:
    marker = one(conn, "select to_regclass('public.pgqrs_t_planted_marker') is not null")[0]
    superuser = one(conn, "select rolsuper from pg_roles where rolname = 'pgqrs_t_admin'")[0]
    return bool(marker or superuser)


def test_install_refuses_a_trigger_planted_by_a_v2_admin(v2_db: str) -> None:
    with as_login(v2_db, "pgqrs_t_admin") as admin:
        assert one(admin, "select pgqrs.schema_version()")[0] == 2
        admin.execute(
            "create function pgqrs.planted() returns trigger language plpgsql as $$"
            + PLANTED_BODY.format(ret="new")
            + "$$"
        )
        admin.execute(
            "create trigger planted before insert on pgqrs.schema_version for each row"
            " execute function pgqrs.planted()"
        )
    refused: UnexpectedObjects | None = None
    try:
        pgqrs.install(v2_db)  # as the superuser
    except UnexpectedObjects as exc:
        refused = exc
    with psycopg.connect(v2_db, autocommit=True) as conn:
        assert not planted_code_ran(conn), "the install ran the planted trigger as the superuser"
        assert one(conn, "select pgqrs.schema_version()")[0] == 2, "a refused install changed the database"
    assert refused is not None, "the install did not refuse the planted trigger"
    assert "trigger planted on table pgqrs.schema_version (runs pgqrs.planted())" in refused.findings
    assert "trigger planted on table pgqrs.schema_version" in str(refused)


def test_install_refuses_a_view_changed_by_a_v2_admin(v2_db: str) -> None:
    with as_login(v2_db, "pgqrs_t_admin") as admin:
        admin.execute(
            "create function pgqrs.planted() returns interval language plpgsql as $$"
            + PLANTED_BODY.format(ret="interval '0'")
            + "$$"
        )
        admin.execute(
            "create or replace view pgqrs.queue_stats as select q.name as queue, 0::bigint as ready,"
            " 0::bigint as leased, 0::bigint as delayed, 0::bigint as depth, pgqrs.planted() as oldest_age"
            " from pgqrs.queues as q"
        )
    with pytest.raises(UnexpectedObjects) as info:
        pgqrs.install(v2_db)
    assert "view pgqrs.queue_stats uses function pgqrs.planted()" in info.value.findings
    with psycopg.connect(v2_db, autocommit=True) as conn:
        assert not planted_code_ran(conn)
        # what the operator does: drop the planted function (and with it the view), then install again
        conn.execute("drop function pgqrs.planted() cascade")
    assert pgqrs.install(v2_db) >= 3
    with psycopg.connect(v2_db, autocommit=True) as conn:
        conn.execute("select * from pgqrs.queue_stats")
        assert not planted_code_ran(conn)
        owner = one(conn, "select relowner::regrole::text from pg_class where relname = 'queue_stats'")[0]
        assert owner == "pgqrs_owner"


def test_install_refuses_functions_a_v2_admin_left_in_the_schema(v2_db: str) -> None:
    """A SECURITY DEFINER function a v2 admin member created (nothing calls it) would pass to pgqrs_owner with
    the upgrade, and the admin could then run code as the engine's owner. So would an extra overload of an
    engine function. The install refuses both, naming them, and changes nothing."""
    with as_login(v2_db, "pgqrs_t_admin") as admin:
        admin.execute("set role pgqrs_admin")  # owned by the engine's owner of v2: nothing else tells it
        admin.execute(
            "create function pgqrs.backdoor(p_sql text) returns void language plpgsql security definer"
            " as $$ begin execute p_sql; end $$"
        )
        admin.execute(
            "create function pgqrs.now(p_zone text) returns timestamptz language sql as 'select now()'"
        )
    with pytest.raises(UnexpectedObjects) as info:
        pgqrs.install(v2_db)
    assert "function pgqrs.backdoor(text): not one of the engine's" in info.value.findings
    assert any(f.startswith("functions ") and "pgqrs.now(text)" in f for f in info.value.findings)
    with psycopg.connect(v2_db, autocommit=True) as conn:
        assert one(conn, "select pgqrs.schema_version()")[0] == 2
        owner = one(conn, "select proowner::regrole::text from pg_proc where proname = 'backdoor'")[0]
        assert owner == "pgqrs_admin", "the refused install handed nothing over"
        conn.execute("drop function pgqrs.backdoor(text), pgqrs.now(text)")
    assert pgqrs.install(v2_db) >= 3


def test_install_names_every_kind_of_planted_object(conn: Conn, db: str) -> None:
    """Planted as a superuser here (a member of pgqrs_owner could do the same): each is named, none runs."""
    conn.execute("create role pgqrs_t_stranger nologin")
    try:
        conn.execute(
            "create function pgqrs.planted() returns timestamptz language plpgsql as $$"
            + PLANTED_BODY.format(ret="pg_catalog.now()")
            + "$$"
        )
        conn.execute("alter function pgqrs.planted() owner to pgqrs_t_stranger")
        plants = {
            "default value for column created_at of table pgqrs.runs uses function pgqrs.planted()": (
                "alter table pgqrs.runs alter column created_at set default pgqrs.planted()"
            ),
            "rule planted on table pgqrs.workers": "create rule planted as on insert to pgqrs.workers do also"
            " select 1",
            "row level security on table pgqrs.steps": "alter table pgqrs.steps enable row level security",
            "policy planted on table pgqrs.steps": "create policy planted on pgqrs.steps using (true)",
            "type pgqrs.positive: pgqrs creates none": (
                "create domain pgqrs.positive as int check (value > 0)"
            ),
            "function pgqrs.planted() is owned by pgqrs_t_stranger": "select 1",
            "constraint planted on table pgqrs.workflows uses function pgqrs.planted()": (
                "alter table pgqrs.workflows add constraint planted check (pgqrs.planted() is not null)"
            ),
            "default value for column installed_at of table pgqrs.schema_version uses function pgqrs.now()": (
                "alter table pgqrs.schema_version alter column installed_at set default pgqrs.now()"
            ),
        }
        for stmt in plants.values():
            conn.execute(stmt)
        with pytest.raises(UnexpectedObjects) as info:
            pgqrs.install(db)
        assert set(plants) <= set(info.value.findings), info.value.findings
        assert not planted_code_ran(conn)
    finally:
        conn.execute("drop function pgqrs.planted() cascade")
        conn.execute("drop owned by pgqrs_t_stranger")
        conn.execute("drop role pgqrs_t_stranger")


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
