"""Schema lifecycle (DESIGN §6, docs/upgrades.md): a recorded version, forward-only migrations, and upgrades
that keep every run.

The first landed version's SQL is kept as a fixture (sql/fixtures/schema-v1.sql, written by
scripts/freeze_schema.sh from the commit that shipped it). A database made from it is filled with runs in
every status, upgraded with ``pgqrs.install``, and must (1) hold exactly the same rows, (2) keep working,
and (3) have the same schema as a fresh install (``pg_dump --schema-only`` compared). Only version 1 exists
so far, so the migration machinery itself is proven with synthetic migrations in a temporary directory.

The helpers (populating, snapshotting and dumping databases) are in tests/upgrade_helpers.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

import pgqrs
from conftest import REPO, drop_db, schema_files
from pg_binaries import pg_tool
from pgqrs.install import (
    BASE_VERSION,
    Migration,
    MigrationError,
    SchemaTooNew,
    migrations,
    target_version,
    upgrade_path,
)
from upgrade_helpers import (
    FIXTURES,
    T0,
    Conn,
    apply_fixture,
    assert_same_schema,
    empty_db,
    new_column_values,
    one,
    populate,
    schema_dump,
    snapshot,
    statuses,
    synthetic,
    without_new_columns,
)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def make_db(pg_dsn: str) -> Iterator[Any]:
    """make_db(suffix) -> DSN of a new empty database, dropped after the test."""
    made: list[str] = []

    def make(suffix: str) -> str:
        name = f"upg_{os.getpid()}_{suffix}"
        made.append(name)
        return empty_db(pg_dsn, name)

    yield make
    if not os.environ.get("PGQRS_KEEP_DBS"):
        for name in made:
            drop_db(name, pg_dsn)


# --- version bookkeeping ----------------------------------------------------------------------------------


def test_fresh_install_records_the_package_version(make_db: Any) -> None:
    dsn = make_db("fresh")
    assert pgqrs.install(dsn) == target_version() >= BASE_VERSION
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert one(conn, "select pgqrs.schema_version()")[0] == target_version()


def test_the_sql_files_alone_record_the_package_version(conn: Conn) -> None:
    # `conn` is a database made by applying the schema files directly (conftest): whoever adds a migration
    # must also make sql/schema/version.sql record the new version, so both install paths agree.
    assert one(conn, "select pgqrs.schema_version()")[0] == target_version()


def test_install_twice_is_a_no_op(make_db: Any) -> None:
    dsn = make_db("twice")
    pgqrs.install(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("select pgqrs.create_workflow('wf')")
        before_rows, before_schema = snapshot(conn), schema_dump(dsn)
    assert pgqrs.install(dsn) == target_version()
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert snapshot(conn) == before_rows
    assert schema_dump(dsn) == before_schema


def test_concurrent_installs_serialise(make_db: Any) -> None:
    dsn = make_db("concurrent")
    results: list[Any] = []

    def go() -> None:
        try:
            results.append(pgqrs.install(dsn))
        except Exception as exc:  # collected and asserted below
            results.append(exc)

    threads = [threading.Thread(target=go) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results == [target_version()] * 3


def test_newer_schema_is_refused_and_left_alone(make_db: Any) -> None:
    dsn = make_db("newer")
    pgqrs.install(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("insert into pgqrs.schema_version (version) values (%s)", (target_version() + 1,))
        conn.execute("comment on function pgqrs.run_status(bigint) is 'left by a newer package'")
    with pytest.raises(SchemaTooNew, match=f"version {target_version() + 1}"):
        pgqrs.install(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        comment = one(conn, "select obj_description('pgqrs.run_status(bigint)'::regprocedure)")[0]
        assert comment == "left by a newer package"


def test_install_joins_the_callers_transaction(make_db: Any) -> None:
    dsn = make_db("callers_tx")
    with psycopg.connect(dsn) as conn:  # not autocommit: a transaction is open
        conn.execute("select 1")
        assert pgqrs.install(conn) == target_version()
        conn.rollback()
        assert one(conn, "select to_regnamespace('pgqrs')")[0] is None


# --- the migrations directory -----------------------------------------------------------------------------


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def test_shipped_migrations_are_well_formed() -> None:
    steps = migrations()  # raises on a bad name, a backward step or two steps from one version
    assert upgrade_path(BASE_VERSION, target_version(), steps) == steps


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"2--1.sql": ""}, "backwards"),
        ({"1--2.sql": "", "1--3.sql": ""}, "two migrations start at version 1"),
        ({"1-2.sql": ""}, "not named"),
        ({"one--two.sql": ""}, "not named"),
    ],
)
def test_malformed_migrations_dir_is_refused(tmp_path: Path, files: dict[str, str], message: str) -> None:
    with pytest.raises(MigrationError, match=message):
        migrations(write(tmp_path / "m", files))


def test_upgrade_path_needs_every_step(tmp_path: Path) -> None:
    steps = migrations(write(tmp_path / "m", {"1--2.sql": "", "3--4.sql": ""}))
    with pytest.raises(MigrationError, match="no migration from schema version 2"):
        upgrade_path(1, 4, steps)
    steps = migrations(write(tmp_path / "n", {"1--2.sql": "", "2--4.sql": ""}))
    assert [(m.from_version, m.to_version) for m in upgrade_path(1, 4, steps)] == [(1, 2), (2, 4)]
    assert upgrade_path(3, 3, steps) == []
    assert isinstance(steps[0], Migration)


# --- upgrading the first shipped version ------------------------------------------------------------------


def test_fixture_is_the_sql_of_the_commit_it_names() -> None:
    """The v1 fixture must be exactly the SQL of the commit that shipped it (scripts/freeze_schema.sh)."""
    text = (FIXTURES / "schema-v1.sql").read_text()
    match = re.search(r"from commit ([0-9a-f]{40})", text.splitlines()[0])
    assert match, "the fixture's first line names its commit"
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("no git history to compare against")
    commit = match[1]
    known = subprocess.run(
        ["git", "-C", str(REPO), "cat-file", "-e", f"{commit}^{{commit}}"], capture_output=True
    )
    if known.returncode != 0:
        pytest.skip(f"commit {commit[:12]} not in this clone (shallow?)")
    names = subprocess.run(
        ["git", "-C", str(REPO), "ls-tree", "--name-only", commit, "sql/"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    for name in sorted(n for n in names if re.fullmatch(r"sql/[^/]+\.sql", n)):
        body = subprocess.run(
            ["git", "-C", str(REPO), "show", f"{commit}:{name}"], check=True, capture_output=True, text=True
        ).stdout
        assert f"-- ==== {name}\n{body}" in text, f"{name} in the fixture differs from commit {commit[:12]}"


def test_upgrade_from_v1_keeps_every_run_and_equals_a_fresh_install(make_db: Any) -> None:
    old, fresh = make_db("v1"), make_db("v1_fresh")
    apply_fixture(old, 1)
    with psycopg.connect(old, autocommit=True) as conn:
        assert one(conn, "select pgqrs.schema_version()")[0] == 1
        ids = populate(conn)
        rows_before, api_before = snapshot(conn), statuses(conn)

    assert pgqrs.install(old) == target_version()

    with psycopg.connect(old, autocommit=True) as conn:
        conn.execute("select set_config('pgqrs.now', %s, false)", ("2030-01-01 00:01:00+00",))
        rows_after = snapshot(conn)
        versions = rows_after.pop("schema_version")
        rows_before.pop("schema_version")
        assert sorted(v["version"] for v in versions) == list(range(1, target_version() + 1))
        assert without_new_columns(rows_after, rows_before) == rows_before, "the upgrade changed stored rows"
        # columns added by migrations: every existing row has a value a fresh install would give it
        assert new_column_values(rows_after, rows_before) == {
            "steps.max_attempts": {"null"},  # version 2
            "messages.failed_deliveries": {"0"},  # version 3
            "messages.steps_in_flight": {"null"},  # version 3
            "steps.value_bytes": {"null"},  # version 3: dequeue measures such values when it reads them
            "steps.kind": {"null"},  # version 4: every step of an earlier version is an ordinary step
            "runs.parent_run_id": {"null"},  # version 5: no run of an earlier version is a child
            "runs.forked_from": {"null"},  # version 5
            "messages.priority": {"0"},  # version 5: flow control
            "messages.concurrency_key": {"null"},
            "workflows.max_concurrency": {"null"},
            "workflows.max_concurrency_per_key": {"null"},
            "workflows.rate_limit": {"null"},
            "runs.trace_context": {"null"},  # version 6: no run of an earlier version carries a trace
            "runs.version": {"null"},  # version 7: runs of earlier versions are unversioned
            "messages.version": {"null"},
        }
        api_after = statuses(conn)
        assert without_new_columns(api_after, api_before) == api_before, "run_status / run_steps changed"
        # version 8: the idempotency keys moved to a table of their own, and still find their run
        assert [(k["idempotency_key"], k["run_id"]) for k in rows_after["idempotency_keys"]] == [
            ("order-42", ids["keyed"])
        ]
        again = "select run_id, created from pgqrs.trigger('up_queued', '{\"n\": 3}', 'order-42')"
        assert one(conn, again) == (ids["keyed"], False)

        # the live runs carry on under the upgraded engine
        run, token = ids["running"], ids["running_token"]
        conn.execute("select pgqrs.complete_step(%s, 'zip', %s, '\"a.zip\"')", (run, token))
        assert one(conn, "select pgqrs.complete_run(%s, %s, '{}')", (run, token))[0] == "SUCCESS"
        assert one(conn, "select pgqrs.resume_run(%s)", (ids["paused"],))[0] == "QUEUED"
        assert one(conn, "select pgqrs.retry_run(%s)", (ids["dead_step"],))[0] == "QUEUED"
        worker = one(conn, "select pgqrs.register_worker('w_after', 'h', 1, 'up_stuck')")[0]
        assert one(conn, "select run_id from pgqrs.dequeue('up_stuck', %s)", (worker,))[0] == ids["stuck"]

    pgqrs.install(fresh)
    assert_same_schema(schema_dump(old), schema_dump(fresh))


def test_a_version_1_policy_with_a_decimal_max_attempts_still_bounds_deliveries(make_db: Any) -> None:
    """Version 1 stored a retry policy as given: its check let max_attempts 2.0 through, and it stays 2.0 in
    the upgraded table. Every reader goes through pgqrs._max_attempts (::numeric, then ::integer);
    release_run and the settling of a lost lease used to cast with a plain ::integer and raised 22P02 on it,
    so such a run could neither be handed back nor be delivered again (its queue stuck behind it)."""
    dsn = make_db("decimal_policy")
    apply_fixture(dsn, 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("select pgqrs.create_workflow('decimal', %s)", (Jsonb({"max_attempts": 2.0}),))
        assert one(conn, "select retry_policy ->> 'max_attempts' from pgqrs.workflows")[0] == "2.0"
    pgqrs.install(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("select set_config('pgqrs.now', %s, false)", (T0,))
        worker = one(conn, "select pgqrs.register_worker('w_decimal', 'host', 1, 'decimal')")[0]
        dequeue = "select run_id, lease_token from pgqrs.dequeue('decimal', %s, 1, interval '30 seconds')"
        release = 'select pgqrs.release_run(%s, %s, \'{"message": "boom"}\')'

        def later() -> None:  # past any lease and any backoff
            conn.execute("select set_config('pgqrs.now', (pgqrs.now() + interval '10 minutes')::text, false)")

        handed_back = one(conn, "select run_id from pgqrs.trigger('decimal', '{}')")[0]
        for expected in ("QUEUED", "ERROR"):  # the second failed delivery in a row reaches max_attempts 2.0
            later()
            run, token = one(conn, dequeue, (worker,))
            assert run == handed_back
            assert one(conn, release, (run, token))[0] == expected

        lost = one(conn, "select run_id from pgqrs.trigger('decimal', '{}')")[0]
        for delivered in (True, True, False):  # the third delivery finds the second lost lease: the bound
            later()
            assert [r[0] for r in conn.execute(dequeue, (worker,)).fetchall()] == (
                [lost] if delivered else []
            )
        assert one(conn, "select status, error ->> 'kind' from pgqrs.runs where run_id = %s", (lost,)) == (
            "ERROR",
            "lease_expired",
        )


def frozen_versions() -> list[int]:
    return sorted(int(f.stem.split("-v")[1]) for f in FIXTURES.glob("schema-v*.sql"))


@pytest.mark.parametrize("version", frozen_versions())
def test_every_frozen_version_upgrades_to_a_fresh_install(make_db: Any, version: int) -> None:
    """Every version that shipped (one fixture each) upgrades to exactly the current schema."""
    old, fresh = make_db(f"frozen{version}"), make_db(f"frozen{version}_fresh")
    apply_fixture(old, version)
    assert pgqrs.install(old) == target_version()
    pgqrs.install(fresh)
    assert_same_schema(schema_dump(old), schema_dump(fresh))


def test_synthetic_migration_is_applied_once_and_recorded(make_db: Any, tmp_path: Path) -> None:
    top = target_version() + 1
    mig = synthetic(
        tmp_path,
        {
            1: "alter table pgqrs.runs add column if not exists note text;\n"
            "update pgqrs.runs set note = 'migrated';\n"
        },
    )
    dsn = make_db("synthetic")
    apply_fixture(dsn, 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        populate(conn)
        before = snapshot(conn)

    assert pgqrs.install(dsn, migrations_dir=mig) == top
    with psycopg.connect(dsn, autocommit=True) as conn:
        after = snapshot(conn)
        assert sorted(v["version"] for v in after.pop("schema_version")) == list(range(1, top + 1))
        before.pop("schema_version")
        assert {r["note"] for r in after["runs"]} == {"migrated"}
        assert without_new_columns(after, before) == before
        conn.execute(
            "update pgqrs.runs set note = 'touched after'"
        )  # a re-run of the migration would undo it
        versions = conn.execute(
            "select version, installed_at from pgqrs.schema_version order by 1"
        ).fetchall()
    schema = schema_dump(dsn)

    assert pgqrs.install(dsn, migrations_dir=mig) == top  # second install: nothing to migrate
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert (
            conn.execute("select version, installed_at from pgqrs.schema_version order by 1").fetchall()
            == versions
        )
        assert {r[0] for r in conn.execute("select note from pgqrs.runs")} == {"touched after"}
    assert schema_dump(dsn) == schema

    # and the package without that migration refuses the now newer database
    with pytest.raises(SchemaTooNew):
        pgqrs.install(dsn)


def test_migration_chain_applies_in_order(make_db: Any, tmp_path: Path) -> None:
    mig = synthetic(
        tmp_path,
        {
            1: "create table pgqrs.mig_log (step text);\ninsert into pgqrs.mig_log values ('first');\n",
            2: "insert into pgqrs.mig_log select step || ' then second' from pgqrs.mig_log;\n",
        },
    )
    top = target_version() + 2
    dsn = make_db("chain")
    apply_fixture(dsn, 1)
    assert pgqrs.install(dsn, migrations_dir=mig) == top
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert [r[0] for r in conn.execute("select step from pgqrs.mig_log order by 1")] == [
            "first",
            "first then second",
        ]
        versions = [r[0] for r in conn.execute("select version from pgqrs.schema_version order by 1")]
        assert versions == list(range(1, top + 1))
        # objects a migration creates are handed to pgqrs_owner like the rest
        assert (
            one(conn, "select relowner::regrole::text from pg_class where oid = 'pgqrs.mig_log'::regclass")[0]
            == "pgqrs_owner"
        )


def test_failed_migration_changes_nothing(make_db: Any, tmp_path: Path) -> None:
    mig = synthetic(tmp_path, {1: "alter table pgqrs.runs add column doomed text;\nselect 1 / 0;\n"})
    failing = f"{target_version()}--{target_version() + 1}.sql"
    dsn = make_db("failed")
    apply_fixture(dsn, 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        populate(conn)
        before = snapshot(conn)
    with pytest.raises(psycopg.errors.DivisionByZero) as info:
        pgqrs.install(dsn, migrations_dir=mig)
    assert f"while applying {failing}" in getattr(info.value, "__notes__", [])
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert snapshot(conn) == before
        assert one(conn, "select pgqrs.schema_version()")[0] == 1
        # nothing of the newer files either: still version 1's functions and no grants
        assert one(conn, "select to_regprocedure('pgqrs._clock_override(text)')")[0] is None


def test_schema_files_end_with_ownership_and_grants() -> None:
    """security/ hands every object over and grants the functions by name: it must see all of them."""
    folders = [p.parent.name for p in schema_files()]
    first = folders.index("security")
    assert folders[first:] == ["security"] * (len(folders) - first) and first > 0
    assert schema_files()[-1].name == "privileges.sql"


def test_psql_and_the_installer_apply_the_same_manifest(make_db: Any) -> None:
    """`psql -f sql/install.sql` (scripts/pg.sh schema: make lint, make pgtap) and pgqrs.install agree."""
    by_psql, by_installer = make_db("psql"), make_db("installer")
    subprocess.run(
        [
            pg_tool("psql"),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            by_psql,
            "-f",
            str(REPO / "sql" / "install.sql"),
        ],
        check=True,
        capture_output=True,
        cwd="/",  # \ir resolves against the manifest's folder, not the working directory
    )
    pgqrs.install(by_installer)
    assert_same_schema(schema_dump(by_psql), schema_dump(by_installer))
