"""Least privilege (issues 8 and 13, docs/security.md), tested with real login roles (the `logins` fixture,
tests/conftest.py: pgqrs_t_worker ∈ pgqrs_worker, pgqrs_t_client ∈ pgqrs_client, pgqrs_t_admin ∈ pgqrs_admin,
not a superuser, and pgqrs_t_nobody with no pgqrs role; the test cluster trusts local connections, so
connecting as them needs no password).

This file: the catalog (pinned search paths, security definer, ownership no login role can reach, grants as
documented) and no dynamic SQL from input. Real sessions and the clock override rule:
tests/test_security_sessions.py; installing, the admin role and the install's refusal of objects it did not
create: tests/test_security_install.py.
"""

from __future__ import annotations

import re

import pytest

from conftest import REPO, schema_files
from security_roles import Conn, docs_matrix, one, public_functions

pytestmark = pytest.mark.timeout(300)

ROLES = ("pgqrs_owner", "pgqrs_admin", "pgqrs_worker", "pgqrs_client")


# --- catalog: search paths, security definer, ownership, grants -------------------------------------------


def test_every_function_pins_a_safe_search_path(conn: Conn) -> None:
    """Inlined helpers aside: internal, IMMUTABLE or STABLE, LANGUAGE sql, not security definer and with no
    SET clause at all (a SET stops the planner from inlining them into their caller, whose search_path is
    pinned)."""
    rows = conn.execute(
        "select p.oid::regprocedure::text, p.proconfig,"
        " p.proname ~ '^_' and l.lanname = 'sql' and p.provolatile in ('i', 's') and not p.prosecdef"
        " and p.proconfig is null"
        " from pg_proc as p join pg_language as l on l.oid = p.prolang"
        " where p.pronamespace = 'pgqrs'::regnamespace"
    ).fetchall()
    assert len(rows) > 20
    inlined = sorted(fn for fn, _config, is_inlined in rows if is_inlined)
    assert inlined == [
        "pgqrs._lease_held(uuid,timestamp with time zone,uuid,timestamp with time zone)",
        "pgqrs._max_input_bytes()",
        "pgqrs._now()",
    ]
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
