"""pgwire/colrefs.py: the columns each statement uses, per table, as PostgreSQL's parse
analysis marks them (selectedCols / insertedCols / updatedCols). The relations come from a
small catalog of two tables; the statements are parsed by libpg_query as the server parses
them."""

from __future__ import annotations

from typing import Any

import pytest

from tarndb.pgwire import colrefs
from tarndb.sql import ast

TABLES = {"emp": ["id", "name", "salary", "note"], "dept": ["id", "title"]}


def _lookup(rv: Any) -> colrefs.Rel | None:
    cols = TABLES.get(rv.relname)
    return None if cols is None else colrefs.Rel(("ws", rv.relname, 1, "table"), cols)


def _needs(sql: str) -> dict[str, dict[str, set[str]]]:
    stmt = ast.parse(sql).stmts[0].stmt
    found = colrefs.analyze(ast.kind(stmt), stmt, _lookup)
    assert found is not None
    out: dict[str, dict[str, set[str]]] = {}
    for key, need in found[0].items():
        got = {"privileges": need.privileges, "select": need.select}
        if need.insert:
            got["insert"] = need.insert
        if need.update:
            got["update"] = need.update
        out[key[1]] = got
    return out


ALL = {"id", "name", "salary", "note"}
S = {"SELECT"}


@pytest.mark.parametrize(
    ("sql", "want"),
    [
        ("SELECT count(*) FROM emp", {"emp": {"privileges": S, "select": set()}}),
        ("SELECT name FROM emp WHERE id = 1", {"emp": {"privileges": S, "select": {"id", "name"}}}),
        ("SELECT * FROM emp", {"emp": {"privileges": S, "select": ALL}}),
        ("SELECT emp FROM emp", {"emp": {"privileges": S, "select": ALL}}),
        ("SELECT to_jsonb(e) FROM emp e", {"emp": {"privileges": S, "select": ALL}}),
        ("SELECT columns('s.*') FROM emp", {"emp": {"privileges": S, "select": ALL}}),
        ("SELECT #2 FROM emp", {"emp": {"privileges": S, "select": ALL}}),
        # DuckDB matches names whatever their case
        ('SELECT "SALARY" FROM emp', {"emp": {"privileges": S, "select": {"salary"}}}),
        ('SELECT "E"."Note" FROM emp e', {"emp": {"privileges": S, "select": {"note"}}}),
        ('SELECT "E" FROM emp e', {"emp": {"privileges": S, "select": ALL}}),
        # an output column's name in ORDER BY; an input column's first in GROUP BY
        (
            "SELECT id AS salary FROM emp ORDER BY salary",
            {"emp": {"privileges": S, "select": {"id"}}},
        ),
        (
            "SELECT id AS salary FROM emp GROUP BY salary",
            {"emp": {"privileges": S, "select": {"id", "salary"}}},
        ),
        ("SELECT x FROM emp AS e(x)", {"emp": {"privileges": S, "select": {"id"}}}),
        (
            "SELECT e.name, d.title FROM emp e JOIN dept d USING (id)",
            {
                "emp": {"privileges": S, "select": {"id", "name"}},
                "dept": {"privileges": S, "select": {"id", "title"}},
            },
        ),
        # a name dept lacks is the outer emp's (correlated)
        (
            "SELECT id FROM emp WHERE EXISTS (SELECT 1 FROM dept WHERE title = note)",
            {
                "emp": {"privileges": S, "select": {"id", "note"}},
                "dept": {"privileges": S, "select": {"title"}},
            },
        ),
        # a subquery's output name: also taken for the outer table's column (DuckDB names
        # some outputs otherwise), never for less
        (
            "SELECT (SELECT salary FROM (SELECT 1 AS salary) s) FROM emp",
            {"emp": {"privileges": S, "select": {"salary"}}},
        ),
        (
            "WITH x AS (SELECT name FROM emp) SELECT * FROM x",
            {"emp": {"privileges": S, "select": {"name"}}},
        ),
        (
            "SELECT id FROM emp UNION SELECT id FROM dept ORDER BY id",
            {
                "emp": {"privileges": S, "select": {"id"}},
                "dept": {"privileges": S, "select": {"id"}},
            },
        ),
        (
            "INSERT INTO emp (id, name) VALUES (1, 'a')",
            {"emp": {"privileges": {"INSERT"}, "select": set(), "insert": {"id", "name"}}},
        ),
        (
            "INSERT INTO emp VALUES (1, 'a')",
            {"emp": {"privileges": {"INSERT"}, "select": set(), "insert": {"id", "name"}}},
        ),
        (
            "INSERT INTO emp (id) VALUES (1) RETURNING name",
            {"emp": {"privileges": {"INSERT", "SELECT"}, "select": {"name"}, "insert": {"id"}}},
        ),
        (
            "INSERT INTO emp (id, name) VALUES (1, 'a') ON CONFLICT (id) "
            "DO UPDATE SET name = excluded.name",
            {
                "emp": {
                    "privileges": {"INSERT", "SELECT", "UPDATE"},
                    "select": {"id"},
                    "insert": {"id", "name"},
                    "update": {"name"},
                }
            },
        ),
        (
            "UPDATE emp SET name = 'x'",
            {"emp": {"privileges": {"UPDATE"}, "select": set(), "update": {"name"}}},
        ),
        (
            "UPDATE emp SET name = note WHERE id = 1 RETURNING old.salary",
            {
                "emp": {
                    "privileges": {"UPDATE", "SELECT"},
                    "select": {"note", "id", "salary"},
                    "update": {"name"},
                }
            },
        ),
        ("DELETE FROM emp", {"emp": {"privileges": {"DELETE"}, "select": set()}}),
        (
            "DELETE FROM emp WHERE note = ''",
            {"emp": {"privileges": {"DELETE", "SELECT"}, "select": {"note"}}},
        ),
        (
            "SELECT name FROM emp WHERE id = 1 FOR UPDATE",
            {"emp": {"privileges": {"SELECT", "UPDATE"}, "select": {"id", "name"}}},
        ),
        ("COPY emp (id, name) TO STDOUT", {"emp": {"privileges": S, "select": {"id", "name"}}}),
        (
            "COPY emp (id) FROM STDIN",
            {"emp": {"privileges": {"INSERT"}, "select": set(), "insert": {"id"}}},
        ),
        ("EXPLAIN SELECT salary FROM emp", {"emp": {"privileges": S, "select": {"salary"}}}),
        # MERGE: PostgreSQL's transformMergeStmt
        (
            "MERGE INTO emp e USING dept d ON e.id = d.id WHEN MATCHED AND e.salary > 0 "
            "THEN UPDATE SET name = d.title WHEN NOT MATCHED THEN INSERT (id, note) "
            "VALUES (d.id, 'x')",
            {
                "emp": {
                    "privileges": {"SELECT", "UPDATE", "INSERT"},
                    "select": {"id", "salary"},
                    "update": {"name"},
                    "insert": {"id", "note"},
                },
                "dept": {"privileges": S, "select": {"id", "title"}},
            },
        ),
        (
            "MERGE INTO emp USING dept ON true WHEN MATCHED THEN DELETE",
            {
                "emp": {"privileges": {"DELETE"}, "select": set()},
                "dept": {"privileges": S, "select": set()},
            },
        ),
        (
            "MERGE INTO emp USING dept ON true WHEN MATCHED THEN DO NOTHING",
            {"emp": {"privileges": S, "select": set()}, "dept": {"privileges": S, "select": set()}},
        ),
        # no column list: the first columns, as many as it has values (DEFAULT counts)
        (
            "MERGE INTO emp USING (SELECT 1 AS k) s ON emp.id = s.k "
            "WHEN NOT MATCHED THEN INSERT VALUES (s.k, DEFAULT)",
            {
                "emp": {
                    "privileges": {"SELECT", "INSERT"},
                    "select": {"id"},
                    "insert": {"id", "name"},
                }
            },
        ),
        # WHEN NOT MATCHED sees the source first: a bare name it has is its column
        (
            "MERGE INTO emp USING dept ON emp.id = dept.id "
            "WHEN NOT MATCHED THEN INSERT (id, name) VALUES (id, title)",
            {
                "emp": {
                    "privileges": {"SELECT", "INSERT"},
                    "select": {"id"},
                    "insert": {"id", "name"},
                },
                "dept": {"privileges": S, "select": {"id", "title"}},
            },
        ),
        # ... and WHEN NOT MATCHED BY SOURCE the target
        (
            "MERGE INTO emp USING dept ON emp.id = dept.id "
            "WHEN NOT MATCHED BY SOURCE AND id > 5 THEN DELETE",
            {
                "emp": {"privileges": {"SELECT", "DELETE"}, "select": {"id"}},
                "dept": {"privileges": S, "select": {"id"}},
            },
        ),
        # a source that is a subquery: a name it lacks may be the target's
        (
            "MERGE INTO emp USING (SELECT 1 AS k) s ON emp.id = s.k "
            "WHEN MATCHED THEN UPDATE SET name = note RETURNING emp.*",
            {"emp": {"privileges": {"SELECT", "UPDATE"}, "select": ALL, "update": {"name"}}},
        ),
        (
            "MERGE INTO emp USING (SELECT id, salary FROM emp) s ON emp.id = s.id "
            "WHEN MATCHED THEN UPDATE SET name = 'x'",
            {
                "emp": {
                    "privileges": {"SELECT", "UPDATE"},
                    "select": {"id", "salary"},
                    "update": {"name"},
                }
            },
        ),
    ],
)
def test_needs(sql: str, want: dict[str, dict[str, set[str]]]) -> None:
    assert _needs(sql) == want


def test_kinds_not_taken_apart() -> None:
    stmt = ast.parse("TRUNCATE emp")
    node = stmt.stmts[0].stmt
    assert colrefs.analyze(ast.kind(node), node, _lookup) is None
