"""Unaliased output columns are named the way Postgres names them."""

from __future__ import annotations

from pathlib import Path

import pytest

import tarndb
from tarndb.sql import ast, colnames


@pytest.mark.parametrize(("expr", "name"), [
    ("count(*)", "count"),
    ("pg_catalog.max(a)", "max"),
    ("a + 1", "?column?"),
    ("1", "?column?"),
    ("'x'", "?column?"),
    ("a::text", "a"),
    ("'1'::int", "int4"),
    ("'1'::varchar(3)", "varchar"),
    ("CAST(1 + 1 AS bigint)", "int8"),
    ("arr[1]", "arr"),
    ("(j).f", "f"),
    ("coalesce(a, 0)", "coalesce"),
    ("nullif(a, 1)", "nullif"),
    ("greatest(1, 2)", "greatest"),
    ("least(1, 2)", "least"),
    ("ARRAY[1, 2]", "array"),
    ("ROW(1, 2)", "row"),
    ("CASE WHEN a > 1 THEN 1 END", "case"),
    ("CASE WHEN a > 1 THEN b ELSE b END", "b"),
    ("EXISTS (SELECT 1)", "exists"),
    ("ARRAY(SELECT 1)", "array"),
    ("(SELECT max(a) FROM t)", "max"),
    ("(SELECT a AS z FROM t)", "z"),
    ("a IS NULL", "?column?"),
    ("a = 1 AND b = 2", "?column?"),
    ("current_date", "current_date"),
    ("current_timestamp", "current_timestamp"),
    ("j ->> 'k'", "?column?"),
    ("emb <#> ARRAY[0.1, 0.2]", "?column?"),
])
def test_figure_matches_postgres(expr: str, name: str) -> None:
    stmt = ast.parse(f"SELECT {expr}").stmts[0].stmt
    assert colnames.figure(stmt.select_stmt.target_list[0].res_target.val) == name


@pytest.fixture
def db(tmp_path: Path) -> tarndb.Database:
    d = tarndb.open(str(tmp_path))
    d.execute("CREATE TABLE t (a INT, b TEXT)")
    d.execute("INSERT INTO t VALUES (1, 'x'), (2, 'y')")
    return d


@pytest.mark.parametrize(("sql", "names"), [
    ("SELECT count(*) FROM t", ["count"]),
    ("SELECT sum(a), max(b), avg(a), a + 1 FROM t GROUP BY a", ["sum", "max", "avg", "?column?"]),
    ("SELECT a, b AS c, upper(b), current_date FROM t", ["a", "c", "upper", "current_date"]),
    ("SELECT * FROM t", ["a", "b"]),
    ("SELECT 1 UNION SELECT 2", ["?column?"]),
    ("SELECT 1, 2", ["?column?", "?column?"]),
    # a subquery's and a CTE's columns keep their Postgres names for the outer query
    ("SELECT x.count FROM (SELECT count(*) FROM t) x", ["count"]),
    ("WITH c AS (SELECT max(a) FROM t) SELECT max FROM c", ["max"]),
    ("SELECT a, count(*) FROM t GROUP BY a ORDER BY count DESC, a", ["a", "count"]),
])
def test_result_columns_are_named_like_postgres(db: tarndb.Database, sql: str,
                                                names: list[str]) -> None:
    assert [c.name for c in db.execute(sql).columns] == names


def test_describe_and_create_table_as_use_the_same_names(db: tarndb.Database) -> None:
    s = db.session()
    _, cols = s.describe("SELECT count(*), max(a) + 1 FROM t")
    assert [c.name for c in cols] == ["count", "?column?"]
    db.execute("CREATE TABLE c AS SELECT count(*), max(a) FROM t")
    assert [c.name for c in db.execute("SELECT * FROM c").columns] == ["count", "max"]
