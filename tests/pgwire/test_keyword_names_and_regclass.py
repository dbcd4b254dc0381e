"""Columns and tables named with words DuckDB reserves but PostgreSQL does not (``at``,
``by``, ``map``, ``show``), and ``$1::regclass`` with a bound name, against a real server."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from .conftest import Server

psycopg = pytest.importorskip("psycopg")


def test_columns_named_like_duckdb_keywords(pg_server: Server) -> None:
    t = f"kw_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, at TIMESTAMP, by TEXT, map INT)")
        c.execute(f"INSERT INTO {t} VALUES (1, '2024-01-01', 'a', 3)")
        c.execute(f"INSERT INTO {t} (id, at, by) VALUES (%s, %s, %s)",
                  (2, dt.datetime(2024, 1, 2), "b"))
        assert c.execute(f"SELECT at, id, by, map FROM {t} ORDER BY at").fetchall() == [
            (dt.datetime(2024, 1, 1), 1, "a", 3), (dt.datetime(2024, 1, 2), 2, "b", None)]
        assert c.execute(f"SELECT {t}.at AS at FROM {t} WHERE at > %s",
                         (dt.datetime(2024, 1, 1, 12),)).fetchall() == [
            (dt.datetime(2024, 1, 2),)]
        row = c.execute(f"UPDATE {t} SET at = at + interval '2 days' WHERE id = 1 "
                        "RETURNING at").fetchone()
        assert row == (dt.datetime(2024, 1, 3),)
        c.execute(f"INSERT INTO {t} (id, at) VALUES (2, '2025-05-05') "
                  "ON CONFLICT (id) DO UPDATE SET at = EXCLUDED.at")
        c.execute(f"CREATE INDEX ON {t} (at)")
        assert c.execute(f"SELECT id FROM {t} WHERE at = '2025-05-05'").fetchall() == [(2,)]
        # AT as syntax still means AT TIME ZONE.
        assert c.execute(f"SELECT at AT TIME ZONE 'UTC' AT TIME ZONE 'UTC' FROM {t} "
                         "WHERE id = 2").fetchone() == (dt.datetime(2025, 5, 5),)
        c.execute(f"ALTER TABLE {t} ADD COLUMN show INT")
        c.execute(f"UPDATE {t} SET show = 7 WHERE by = 'a'")
        assert c.execute(f"DELETE FROM {t} WHERE show = 7 RETURNING by, show").fetchall() \
            == [("a", 7)]
        assert c.execute(f"SELECT count(*) FROM {t}").fetchone() == (1,)


def test_table_named_at(pg_server: Server) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute("CREATE SCHEMA IF NOT EXISTS kwschema")
        c.execute("CREATE TABLE IF NOT EXISTS kwschema.at (id INT, at INT)")
        c.execute("INSERT INTO kwschema.at VALUES (1, 10)")
        assert c.execute("SELECT at.at FROM kwschema.at AS at WHERE at.id = 1"
                         ).fetchall() == [(10,)]


def test_regclass_of_a_bound_parameter(pg_server: Server) -> None:
    t = f"rc_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute(f"CREATE TABLE {t} (id INT)")
        oid = c.execute(f"SELECT '{t}'::regclass::oid").fetchone()
        assert oid is not None and oid[0] > 0
        # psycopg 3 binds server-side: the name travels as a parameter.
        assert c.execute("SELECT %s::regclass::oid", (t,)).fetchone() == oid
        assert c.execute("SELECT relname FROM pg_class WHERE oid = %s::regclass",
                         (t,)).fetchall() == [(t,)]
        assert c.execute("SELECT %s::regclass::oid", (f"public.{t}",)).fetchone() == oid
        with pytest.raises(psycopg.errors.UndefinedTable, match="does not exist"):
            c.execute("SELECT %s::regclass", ("no_such_table_here",))
