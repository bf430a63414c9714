"""The test fixtures themselves: a fresh database per test, with the schema, and two distinct sessions."""

import psycopg

from conftest import drop_db, fresh_db, schema_files


def test_db_has_the_schema(conn: psycopg.Connection) -> None:
    assert schema_files(), "sql/ has no schema files"
    row = conn.execute("select count(*) from pg_namespace where nspname = 'pgqrs'").fetchone()
    assert row == (1,)


def test_conn2_is_another_session_on_the_same_db(conn: psycopg.Connection, conn2: psycopg.Connection) -> None:
    assert conn.info.backend_pid != conn2.info.backend_pid
    assert conn.info.dbname == conn2.info.dbname


def test_fresh_db_is_isolated(db: str) -> None:
    other = fresh_db("pgqrs_infra_other")
    with psycopg.connect(db, autocommit=True) as a, psycopg.connect(other, autocommit=True) as b:
        a.execute("create table infra_probe ()")
        assert b.execute("select to_regclass('infra_probe')").fetchone() == (None,)
    drop_db("pgqrs_infra_other")
