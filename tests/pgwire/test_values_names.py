"""A VALUES list's columns are ``column1``, ``column2`` ... as PostgreSQL names them (DuckDB
says ``col0``, ``col1``; sql/colnames.py), in the RowDescription of a simple query and of
a described prepared statement, and for references to them; an alias list still renames
them. Through psycopg against a real server."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from .conftest import Server

INT4, TEXT = 23, 25


def _names(cur: Any) -> list[str]:
    return [d.name for d in cur.description]


@pytest.mark.parametrize("prepare", [False, True])
def test_values_columns_are_column1_column2(pg_server: Server, prepare: bool) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        cur = c.cursor()
        # prepare=False without parameters: the simple query protocol; with parameters or
        # prepare=True: Parse / Describe, the names coming from the statement's describe
        cur.execute("VALUES (1, 'a'), (2, 'b')", prepare=prepare)
        assert _names(cur) == ["column1", "column2"]
        assert [d.type_code for d in cur.description] == [INT4, TEXT]
        assert cur.fetchall() == [(1, "a"), (2, "b")]
        cur.execute("VALUES (%s::int, 'x')", [7], prepare=prepare)
        assert _names(cur) == ["column1", "column2"]
        assert cur.fetchall() == [(7, "x")]
        for sql, names in [
            ("SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS v", ["column1", "column2"]),
            ("SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS v(a, b)", ["a", "b"]),
            ("SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS v(a)", ["a", "column2"]),
            ("SELECT v.* FROM (VALUES (1, 'a'), (2, 'b')) v", ["column1", "column2"]),
            ("WITH w AS (VALUES (1, 'a'), (2, 'b')) SELECT * FROM w", ["column1", "column2"]),
            ("WITH w(x) AS (VALUES (1, 'a'), (2, 'b')) SELECT * FROM w", ["x", "column2"]),
            ("VALUES (1, 'a') UNION ALL VALUES (2, 'b')", ["column1", "column2"]),
        ]:
            cur.execute(sql, prepare=prepare)
            assert _names(cur) == names, sql
            assert sorted(cur.fetchall()) == [(1, "a"), (2, "b")], sql


def test_values_columns_can_be_named(pg_server: Server) -> None:
    """The names are the columns' own: a query may refer to them, ORDER BY too."""
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        rows = c.execute("SELECT column2 FROM (VALUES (1, 'a'), (2, 'b')) AS v "
                         "WHERE column1 = %s", [2]).fetchall()
        assert rows == [("b",)]
        assert c.execute("SELECT v.column1 + 1 AS n FROM (VALUES (1), (5)) v "
                         "ORDER BY v.column1 DESC").fetchall() == [(6,), (2,)]
        cur = c.execute("VALUES (2, 'b'), (1, 'a'), (3, 'c') ORDER BY column1 LIMIT 2")
        assert _names(cur) == ["column1", "column2"]
        assert cur.fetchall() == [(1, "a"), (2, "b")]
        assert c.execute("VALUES (2), (1) ORDER BY 1").fetchall() == [(1,), (2,)]
        # an expression over a VALUES subquery is still "?column?"; EXISTS / IN unchanged
        cur = c.execute("SELECT 1 IN (VALUES (1), (2)), EXISTS (VALUES (1))")
        assert _names(cur) == ["?column?", "exists"]
        assert cur.fetchall() == [(True, True)]


def test_insert_values_and_create_table_as_values(pg_server: Server) -> None:
    """An INSERT's VALUES rows still go to the table's columns by position; a table
    created from VALUES gets PostgreSQL's column names."""
    t = f"v_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute(f"CREATE TABLE {t} AS VALUES (1, 'a')")
        cur = c.execute(f"SELECT * FROM {t}")
        assert _names(cur) == ["column1", "column2"]
        c.execute(f"INSERT INTO {t} VALUES (2, 'b'), (%s, %s)", [3, "c"])
        c.execute(f"INSERT INTO {t} (column2, column1) VALUES ('d', 4)")
        c.execute(f"INSERT INTO {t} SELECT * FROM (VALUES (5, 'e')) AS v")
        assert c.execute(f"SELECT column1, column2 FROM {t} ORDER BY 1").fetchall() == [
            (1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e")]
        c.execute(f"DROP TABLE {t}")
