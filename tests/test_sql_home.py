"""Every SQL statement the package sends is written in `pgqrs._sql` (issue 14, part 4): a new statement
anywhere else in pgqrs_py/pgqrs fails here. The generated `pgqrs.sync` modules are scanned too (they follow
their async source)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pgqrs_py" / "pgqrs"
SQL_HOME = PACKAGE / "_sql"

# The start of a statement: a keyword and what must follow it, so that prose ("call .store(s) first",
# "set up", "listen connection lost") does not count.
OBJECTS = r"(table|view|function|procedure|index|schema|role|extension|trigger|type|sequence|owned)"
STARTS = [
    r"select\s", r"with\s+\w+\s+as\s*\(", r"insert\s+into\s", r"update\s+[\w.]+\s+set\s", r"delete\s+from\s",
    r"(call|perform)\s+\w[\w.]*\s*\(", rf"create\s+(or\s+replace\s+)?(temp\w*\s+)?{OBJECTS}\s",
    rf"(alter|drop)\s+{OBJECTS}\s", r"(grant|revoke|truncate|analyze|savepoint|explain)\s", r"vacuum\b",
    r"set\s+(local\s+|session\s+)?[\w.]+\s*(=|to\s)", r"reset\s+\w", r"show\s+\w+\s*$",
    r"(un)?listen\s+(\w+\s*;?\s*)?$", r"notify\s+(\w+\s*(,.*)?)?$", r"do\s+\$",
    r"(begin|commit|rollback)\s*;?\s*$",
    r"lock\s+table\s", r"comment\s+on\s", r"copy\s+[\w.(]",
]
STATEMENT = re.compile(r"^\s*(" + "|".join(STARTS) + ")", re.IGNORECASE | re.DOTALL)


def looks_like_sql(text: str) -> bool:
    return STATEMENT.match(text) is not None


def sql_literals(path: Path) -> list[tuple[int, str]]:
    """(line, text) of the string constants in `path` that start an SQL statement, docstrings aside (a
    part of an f-string counts: f"listen {channel}")."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return sorted((node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes)
            and id(node) not in docstrings
            and looks_like_sql(node.value if isinstance(node.value, str) else node.value.decode("latin-1")))


@pytest.mark.parametrize("text", [
    "select 1", "  SELECT run_id from pgqrs.runs", "with x as (select 1) select * from x",
    "insert into pgqrs.schema_version (version) values (%s)", "update pgqrs.runs set status = 'X'",
    "delete from pgqrs.runs", "call pgqrs.tick()", "set local client_min_messages = warning",
    "listen ", "listen pgqrs_runs", "notify pgqrs_runs", "notify pgqrs_runs, 'x'", "do $$ begin end $$",
    "create or replace function pgqrs.f()",
    "\nselect * from pgqrs.run_overview\n",
])
def test_the_detector_knows_a_statement(text: str) -> None:
    assert looks_like_sql(text)


@pytest.mark.parametrize("text", [
    "call .store(store) first", "set up the store", "update-step", "with a store",
    "listener", "listen connection lost (%s)", "notify the waiters", "show one run",
    "the result of step 'fetch'", "create_workflow", "pgqrs.update_step",
])
def test_the_detector_leaves_prose_alone(text: str) -> None:
    assert not looks_like_sql(text)


def test_the_detector_finds_a_statement_in_a_module(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text('"""select is a word."""\n\ndef f(conn, c):\n    conn.execute(f"listen {c}")\n'
                      '    return conn.execute("select pgqrs.now()")\n', encoding="utf-8")
    assert [line for line, _text in sql_literals(module)] == [4, 5]


def test_no_sql_outside_the_sql_package() -> None:
    assert (SQL_HOME / "__init__.py").is_file()
    found = [f"{path.relative_to(PACKAGE)}:{line}: {text.strip()[:60]!r}"
             for path in sorted(PACKAGE.rglob("*.py")) if SQL_HOME not in path.parents
             for line, text in sql_literals(path)]
    assert found == [], "SQL text outside pgqrs/_sql (move it there):\n" + "\n".join(found)


def test_the_sql_package_holds_statements() -> None:
    """The scan sees what it must move: the statements of _sql themselves count as SQL."""
    assert sum(len(sql_literals(path)) for path in SQL_HOME.glob("*.py")) >= 30
