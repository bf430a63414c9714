"""sql/install.sql is the one list of the schema files: psql runs it, pgqrs.install reads it
(pgqrs.install.schema_files). A file under sql/ that it does not name would never be installed, and a name
without its file would break every install: both fail here."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from conftest import REPO

install_module = importlib.import_module("pgqrs.install")  # `pgqrs.install` itself is the function
schema_files = install_module.schema_files

SQL_DIR = REPO / "sql"


def manifest_problems(directory: Path) -> list[str]:
    """What is wrong between `directory`/install.sql and the .sql files below `directory` (migrations/ and
    fixtures/ have lists of their own: the migration names, the frozen versions)."""
    listed = [p.relative_to(directory).as_posix() for p in schema_files(directory)]
    present = {
        p.relative_to(directory).as_posix()
        for p in directory.rglob("*.sql")
        if p.relative_to(directory).parts[0] not in ("migrations", "fixtures") and p.name != "install.sql"
    }
    problems = [f"{name}: not in install.sql, so never installed" for name in sorted(present - set(listed))]
    problems += [
        f"{name}: named in install.sql, but there is no such file" for name in listed if name not in present
    ]
    problems += [
        f"{name}: named twice in install.sql" for name in sorted({n for n in listed if listed.count(n) > 1})
    ]
    return problems


def test_the_manifest_names_every_schema_file_and_only_those() -> None:
    assert manifest_problems(SQL_DIR) == []
    assert len(schema_files()) > 10


def test_the_manifest_check_finds_an_unlisted_and_a_missing_file(tmp_path: Path) -> None:
    (tmp_path / "queue").mkdir()
    (tmp_path / "migrations").mkdir()
    (tmp_path / "queue" / "dequeue.sql").write_text("select 1;\n")
    (tmp_path / "queue" / "forgotten.sql").write_text("select 1;\n")
    (tmp_path / "migrations" / "1--2.sql").write_text("select 1;\n")
    (tmp_path / "install.sql").write_text(
        "-- the list\n\\ir queue/dequeue.sql\n\\ir queue/gone.sql\n\\ir queue/dequeue.sql\n"
    )
    assert manifest_problems(tmp_path) == [
        "queue/forgotten.sql: not in install.sql, so never installed",
        "queue/gone.sql: named in install.sql, but there is no such file",
        "queue/dequeue.sql: named twice in install.sql",
    ]


@pytest.mark.parametrize(
    "line",
    [
        "\\i queue/dequeue.sql",
        "select 1;",
        "\\ir ../outside.sql",
        "\\ir /etc/x.sql",
        "\\ir a.sql b.sql",
        "\\set x 1",
    ],
)
def test_the_manifest_holds_nothing_but_ir_lines_and_comments(tmp_path: Path, line: str) -> None:
    """psql would run any other line (or, for \\i, resolve it against the working directory): the installer
    refuses it rather than read the manifest otherwise than psql does."""
    (tmp_path / "install.sql").write_text(f"-- ok\n\n\\ir a.sql\n{line}\n")
    with pytest.raises(ValueError, match="install.sql:4"):
        schema_files(tmp_path)
