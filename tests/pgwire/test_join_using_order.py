"""``SELECT *`` over ``JOIN ... USING`` / ``NATURAL JOIN`` has PostgreSQL's column order
(sql/rewrite/joinstar.py): the join columns first, once, in the USING list's order (NATURAL:
the left table's), then the left table's other columns, then the right one's. DuckDB keeps
a USING column where the left table has it. Through psycopg against a real server, in the
rows and in the RowDescription of a simple query and of a described prepared statement."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from .conftest import Server


def _names(cur: Any) -> list[str]:
    return [d.name for d in cur.description]


@pytest.fixture()
def tables(pg_server: Server) -> Any:
    a, b = f"ja_{uuid.uuid4().hex[:8]}", f"jb_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute(f"CREATE TABLE {a} (x INT, k INT, y TEXT, k2 INT)")
        c.execute(f"CREATE TABLE {b} (z INT, k2 INT, k INT, w TEXT)")
        c.execute(f"INSERT INTO {a} VALUES (1, 10, 'ay', 100), (4, 12, 'az', 101)")
        c.execute(f"INSERT INTO {b} VALUES (2, 100, 10, 'bw'), (3, 999, 11, 'bx')")
    yield a, b
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute(f"DROP TABLE {a}")
        c.execute(f"DROP TABLE {b}")


@pytest.mark.parametrize("prepare", [False, True])
def test_using_columns_come_first(pg_server: Server, tables: tuple[str, str],
                                  prepare: bool) -> None:
    a, b = tables
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        cur = c.cursor()
        cur.execute(f"SELECT * FROM {a} JOIN {b} USING (k)", prepare=prepare)
        assert _names(cur) == ["k", "x", "y", "k2", "z", "k2", "w"]
        assert cur.fetchall() == [(10, 1, "ay", 100, 2, 100, "bw")]
        # the USING list's order, not the tables'
        cur.execute(f"SELECT * FROM {a} JOIN {b} USING (k2, k)", prepare=prepare)
        assert _names(cur) == ["k2", "k", "x", "y", "z", "w"]
        assert cur.fetchall() == [(100, 10, 1, "ay", 2, "bw")]
        # NATURAL: the common columns in the left table's order
        cur.execute(f"SELECT * FROM {a} NATURAL JOIN {b}", prepare=prepare)
        assert _names(cur) == ["k", "k2", "x", "y", "z", "w"]
        assert cur.fetchall() == [(10, 100, 1, "ay", 2, "bw")]
        # with aliases, other targets around the star, and a parameter
        cur.execute(f"SELECT 0 AS first, *, 9 AS last FROM {a} AS p JOIN {b} AS q "
                    "USING (k) WHERE p.x = %s", [1], prepare=prepare)
        assert _names(cur) == ["first", "k", "x", "y", "k2", "z", "k2", "w", "last"]
        assert cur.fetchall() == [(0, 10, 1, "ay", 100, 2, 100, "bw", 9)]


def test_outer_joins_take_the_join_column_as_postgres(pg_server: Server,
                                                      tables: tuple[str, str]) -> None:
    """LEFT: the left table's value; RIGHT: the right one's; FULL: whichever is there."""
    a, b = tables
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        rows = c.execute(f"SELECT * FROM {a} LEFT JOIN {b} USING (k) ORDER BY k").fetchall()
        assert rows == [(10, 1, "ay", 100, 2, 100, "bw"),
                        (12, 4, "az", 101, None, None, None)]
        rows = c.execute(f"SELECT * FROM {a} RIGHT JOIN {b} USING (k) ORDER BY k").fetchall()
        assert rows == [(10, 1, "ay", 100, 2, 100, "bw"),
                        (11, None, None, None, 3, 999, "bx")]
        rows = c.execute(f"SELECT * FROM {a} FULL JOIN {b} USING (k) ORDER BY k").fetchall()
        assert rows == [(10, 1, "ay", 100, 2, 100, "bw"),
                        (11, None, None, None, 3, 999, "bx"),
                        (12, 4, "az", 101, None, None, None)]


def test_qualified_stars_and_subqueries(pg_server: Server, tables: tuple[str, str]) -> None:
    """``a.*`` is every column of ``a``, as before; a star over the join in a subquery is
    in PostgreSQL's order too; a USING column that a side lacks is still an error."""
    a, b = tables
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        cur = c.execute(f"SELECT {a}.*, {b}.* FROM {a} JOIN {b} USING (k)")
        assert _names(cur) == ["x", "k", "y", "k2", "z", "k2", "k", "w"]
        cur = c.execute(f"SELECT s.k, s.x FROM (SELECT * FROM {a} JOIN {b} USING (k2)) AS s")
        assert cur.fetchall() == [(10, 1)]
        cur = c.execute(f"SELECT * FROM (SELECT * FROM {a} JOIN {b} USING (k2)) AS s")
        assert _names(cur)[:2] == ["k2", "x"]
        with pytest.raises(psycopg.errors.Error):
            c.execute(f"SELECT * FROM {a} JOIN {b} USING (w)")
