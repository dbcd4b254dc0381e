"""Column privileges, PostgreSQL's way: ``GRANT SELECT (cols) / INSERT (cols) / UPDATE
(cols) / REFERENCES (cols) ON t`` lets a role use those columns of a table it holds no
table privilege on. A statement passes when every column it names (anywhere: select list,
WHERE, ORDER BY, joins, subqueries, CTEs, RETURNING, ``<#>`` rankings) is granted to it;
``*`` and a whole-row reference name every column; ``count(*)`` needs any one column.

Every attack is a real client against the shared seeded ``tarndb serve`` (see
_security_support): the refusal (42501 ``permission denied for table emp``) is checked, and
that nothing changed."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from _security_support import Stack

DAVE = "dave-pw-1357"
ROWS = [(1, "ann", 100, "quiet"), (2, "bob", 200, "loud"), (3, "cat", 999, "boss secret")]


@pytest.fixture
def emp(stack: Stack) -> Iterator[Stack]:
    stack.admin_sql(
        "CREATE TABLE ws1.emp (id INT PRIMARY KEY, name TEXT, salary INT, note TEXT, emb FLOAT4[])"
    )
    stack.admin_sql(
        "INSERT INTO ws1.emp VALUES "
        + ", ".join(f"({i}, '{n}', {s}, '{t}', ARRAY[{i}, 1]::float4[])" for i, n, s, t in ROWS)
    )
    stack.admin_sql(f"CREATE ROLE dave LOGIN PASSWORD '{DAVE}'")
    stack.admin_sql("GRANT USAGE ON SCHEMA ws1 TO dave")
    stack.admin_sql(
        "GRANT SELECT (id, name, emb), INSERT (id, name), UPDATE (name) ON ws1.emp TO dave"
    )
    try:
        yield stack
    finally:
        stack.admin_sql("REVOKE ALL ON SCHEMA ws1 FROM dave")
        stack.admin_sql("REVOKE ALL ON ALL TABLES IN SCHEMA ws1 FROM dave")
        stack.admin_sql("DROP ROLE dave")
        for v in ("ws1.mine", "ws1.emp_inv", "ws1.emp_all", "ws1.emp_pub"):
            stack.admin_sql(f"DROP VIEW IF EXISTS {v}")
        stack.admin_sql("DROP TABLE IF EXISTS ws1.emp")


def _dave(stack: Stack) -> psycopg.Connection[object]:
    return stack.pg(user="dave", password=DAVE)


def _secrets(stack: Stack) -> list[tuple[object, ...]]:
    return stack.admin_sql("SELECT id, salary, note FROM ws1.emp ORDER BY id")


def _unchanged(stack: Stack, names: tuple[str, ...] = ("ann", "bob", "cat")) -> None:
    assert stack.admin_sql("SELECT id, name, salary, note FROM ws1.emp ORDER BY id") == [
        (i, n, s, t) for (i, _, s, t), n in zip(ROWS, names, strict=True)
    ]
    assert stack.admin_sql(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'ws1' ORDER BY 1"
    ) == [("emp",), ("t",)]


def test_granted_columns_read(emp: Stack) -> None:
    with _dave(emp) as c:
        q = c.execute
        assert q("SELECT id, name FROM ws1.emp ORDER BY id").fetchall() == [
            (1, "ann"),
            (2, "bob"),
            (3, "cat"),
        ]
        assert q("SELECT name FROM ws1.emp WHERE id > 1 ORDER BY name DESC").fetchall() == [
            ("cat",),
            ("bob",),
        ]
        # count(*) asks for SELECT on any column, as in PostgreSQL
        assert q("SELECT count(*) FROM ws1.emp").fetchone() == (3,)
        assert q("SELECT count(*) FROM ws1.emp WHERE name LIKE 'b%'").fetchone() == (1,)
        assert q("SELECT name, count(*) FROM ws1.emp GROUP BY name ORDER BY 1").fetchall() == [
            ("ann", 1),
            ("bob", 1),
            ("cat", 1),
        ]
        assert q(
            "SELECT a.name FROM ws1.emp a JOIN ws1.emp b ON a.id = b.id + 1 ORDER BY 1"
        ).fetchall() == [("bob",), ("cat",)]
        assert q(
            "SELECT a.name FROM ws1.emp a JOIN ws1.emp b USING (id, name) ORDER BY 1"
        ).fetchall() == [("ann",), ("bob",), ("cat",)]
        assert q(
            "SELECT name FROM ws1.emp WHERE id IN (SELECT id FROM ws1.emp WHERE name = 'bob')"
        ).fetchall() == [("bob",)]
        assert q(
            "WITH x AS (SELECT id, name FROM ws1.emp) SELECT * FROM x WHERE id = 3"
        ).fetchall() == [(3, "cat")]
        assert q(
            "SELECT * FROM (SELECT id AS salary, name FROM ws1.emp) s ORDER BY salary LIMIT 1"
        ).fetchall() == [(1, "ann")]
        assert q("SELECT id AS salary FROM ws1.emp ORDER BY salary DESC LIMIT 1").fetchall() == [
            (3,)
        ]
        assert q("SELECT (SELECT max(id) FROM ws1.emp)").fetchone() == (3,)
        assert q(
            "SELECT name FROM ws1.emp e WHERE EXISTS (SELECT 1 FROM ws1.emp f "
            "WHERE f.id = e.id + 1) ORDER BY 1"
        ).fetchall() == [("ann",), ("bob",)]
        assert q(
            "SELECT x.n FROM ws1.emp e, LATERAL (SELECT e.name AS n) x WHERE e.id = 2"
        ).fetchall() == [("bob",)]
        assert q(
            "SELECT id FROM ws1.emp UNION SELECT id + 10 FROM ws1.emp ORDER BY id LIMIT 2"
        ).fetchall() == [(1,), (2,)]
        # the key-lookup fast path, and the general path, plain and prepared
        for fast in ("on", "off"):
            q(f"SET tarndb.fast_paths = {fast}")
            assert q("SELECT name FROM ws1.emp WHERE id = 2").fetchall() == [("bob",)]
            assert q(
                "SELECT id, name FROM ws1.emp WHERE id = %s", (3,), prepare=True
            ).fetchall() == [(3, "cat")]
        # an earlier version of the table, by the same grants
        assert emp.admin_sql('SELECT count(*) FROM ws1."emp@2"') == [(3,)]
        assert q('SELECT name FROM ws1."emp@2" WHERE id = 1').fetchall() == [("ann",)]
        # SQL-level PREPARE / EXECUTE: checked when it runs
        q("PREPARE byid(int) AS SELECT name FROM ws1.emp WHERE id = $1")
        assert q("EXECUTE byid(2)").fetchall() == [("bob",)]
        # <#> ranking on a granted vector column
        assert q(
            "SELECT id FROM ws1.emp ORDER BY emb <#> ARRAY[3, 1]::float4[] DESC LIMIT 1"
        ).fetchall() == [(3,)]
        plan = "\n".join(r[0] for r in q("EXPLAIN SELECT name FROM ws1.emp WHERE id = 1"))
        assert plan
        with c.cursor().copy("COPY ws1.emp (id, name) TO STDOUT") as cp:
            assert sorted(b"".join(cp).splitlines()) == [b"1\tann", b"2\tbob", b"3\tcat"]
        with c.cursor().copy("COPY (SELECT name FROM ws1.emp WHERE id = 1) TO STDOUT") as cp:
            assert b"".join(cp) == b"ann\n"
    _unchanged(emp)


def test_granted_columns_write(emp: Stack) -> None:
    with _dave(emp) as c:
        # INSERT of granted columns: the others take their defaults
        assert c.execute("INSERT INTO ws1.emp (id, name) VALUES (4, 'dan')").rowcount == 1
        assert c.execute("INSERT INTO ws1.emp (name, id) VALUES ('eve', 5)").rowcount == 1
        assert c.execute(
            "INSERT INTO ws1.emp (id, name) VALUES (6, 'fay') RETURNING id, name"
        ).fetchall() == [(6, "fay")]
        # UPDATE of a granted column, with WHERE and RETURNING on readable ones
        assert c.execute(
            "UPDATE ws1.emp SET name = 'dan2' WHERE id = 4 RETURNING id, name"
        ).fetchall() == [(4, "dan2")]
        assert c.execute("UPDATE ws1.emp SET name = upper(name) WHERE name = 'eve'").rowcount == 1
        # an upsert: INSERT (id, name), SELECT (id) for the conflict target, UPDATE (name)
        c.execute(
            "INSERT INTO ws1.emp (id, name) VALUES (4, 'dan3') "
            "ON CONFLICT (id) DO UPDATE SET name = excluded.name"
        )
        with c.cursor().copy("COPY ws1.emp (id, name) FROM STDIN") as cp:
            cp.write(b"7\tgus\n")
        # a batch of INSERTs (executemany: one statement for all the sets)
        c.cursor().executemany(
            "INSERT INTO ws1.emp (id, name) VALUES (%s, %s)", [(8, "hal"), (9, "ivy")]
        )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.cursor().executemany(
                "INSERT INTO ws1.emp (id, name, salary) VALUES (%s, %s, %s)", [(10, "x", 1)]
            )
    assert emp.admin_sql("SELECT id, name, salary, note FROM ws1.emp WHERE id > 3 ORDER BY id") == [
        (4, "dan3", None, None),
        (5, "EVE", None, None),
        (6, "fay", None, None),
        (7, "gus", None, None),
        (8, "hal", None, None),
        (9, "ivy", None, None),
    ]
    emp.admin_sql("DELETE FROM ws1.emp WHERE id > 3")
    _unchanged(emp)


READS = [
    "SELECT salary FROM ws1.emp",
    "SELECT * FROM ws1.emp",
    "SELECT e.* FROM ws1.emp e",
    "SELECT id FROM ws1.emp WHERE salary > 500",
    "SELECT id FROM ws1.emp ORDER BY salary DESC LIMIT 1",
    "SELECT id FROM ws1.emp GROUP BY id, note",
    "SELECT count(salary) FROM ws1.emp",
    "SELECT count(*) FROM ws1.emp WHERE note LIKE '%secret%'",
    "SELECT max(id) FILTER (WHERE salary > 500) FROM ws1.emp",
    "SELECT (SELECT max(salary) FROM ws1.emp)",
    "SELECT id FROM ws1.emp WHERE id IN (SELECT id FROM ws1.emp WHERE salary > 500)",
    "SELECT (SELECT e.salary) FROM ws1.emp e",
    "SELECT x.s FROM ws1.emp e, LATERAL (SELECT e.salary AS s) x",
    "SELECT id FROM ws1.emp e WHERE EXISTS (SELECT 1 FROM ws1.emp f WHERE f.salary > e.id)",
    "WITH x AS (SELECT salary FROM ws1.emp) SELECT 1",
    "WITH x AS (SELECT * FROM ws1.emp) SELECT id FROM x",
    "SELECT a.id FROM ws1.emp a JOIN ws1.emp b ON a.salary = b.id",
    "SELECT a.id FROM ws1.emp a JOIN ws1.emp b USING (note)",
    "SELECT a.id FROM ws1.emp a NATURAL JOIN ws1.emp b",
    "SELECT id, name FROM ws1.emp UNION SELECT salary, note FROM ws1.emp",
    "SELECT id FROM ws1.emp UNION ALL SELECT id FROM ws1.emp WHERE salary > 0",
    "SELECT * FROM (SELECT * FROM ws1.emp) s",
    "SELECT s.id FROM (SELECT id, salary FROM ws1.emp) s",
    "SELECT count(*) OVER (PARTITION BY salary) FROM ws1.emp",
    # whole rows: every column
    "SELECT emp FROM ws1.emp",
    "SELECT to_jsonb(e) FROM ws1.emp e",
    "SELECT row_to_json(emp) FROM ws1.emp",
    "SELECT id FROM ws1.emp e WHERE to_jsonb(e) IS NOT NULL",
    "SELECT (e).salary FROM ws1.emp e",
    "SELECT e.salary FROM ws1.emp AS e",
    "SELECT sal FROM ws1.emp AS e(i, n, sal)",
    # DuckDB's COLUMNS(pattern) picks columns by name
    "SELECT columns('sal.*') FROM ws1.emp",
    "SELECT columns(*) FROM ws1.emp",
    # DuckDB matches names whatever their case, quoted or not
    'SELECT "SALARY" FROM ws1.emp',
    'SELECT e."Salary" FROM ws1.emp e',
    'SELECT "E".salary FROM ws1.emp e',
    'SELECT "E" FROM ws1.emp e',
    'SELECT id FROM ws1.emp ORDER BY "NOTE"',
    'SELECT name FROM ws1.emp WHERE id = 3 AND "SALARY" > 0',
    # DuckDB's #n: a column by its position
    "SELECT #3 FROM ws1.emp",
    "SELECT id FROM ws1.emp ORDER BY #3",
    # a subquery in FROM naming an item beside it (DuckDB makes it lateral by itself)
    "SELECT s.x FROM ws1.emp e, (SELECT e.salary AS x) s",
    "SELECT e.id FROM ws1.emp e JOIN ws1.emp f ON f.id = e.id JOIN ws1.emp g ON g.salary = e.id",
    "SELECT DISTINCT ON (salary) id FROM ws1.emp",
    "SELECT id FROM ws1.emp HAVING max(salary) > 0",
    "SELECT rank() OVER (ORDER BY salary) FROM ws1.emp",
    "SELECT id FROM ws1.emp WHERE EXISTS (SELECT * FROM ws1.emp)",
    "SELECT id FROM ws1.emp WHERE name IN (SELECT note)",
    "SELECT id FROM ws1.emp e WHERE e.* IS NOT NULL",
    "TABLE ws1.emp",
    # <#> ranking on a column not granted (BM25 over text)
    "SELECT id FROM ws1.emp ORDER BY note <#> 'boss' DESC LIMIT 1",
    "SELECT id, note <#> 'boss' AS s FROM ws1.emp",
    "SELECT id FROM ws1.emp ORDER BY (emb, note) <#> deeplake_hybrid_record("
    "ARRAY[1, 0]::float4[], 'boss', 0.5, 0.5) DESC LIMIT 1",
    "SELECT id FROM ws1.emp ORDER BY emb <#> ARRAY[1, 0]::float4[] DESC LIMIT 1 "
    "OFFSET 0 * (SELECT max(salary) FROM ws1.emp)",
    "EXPLAIN SELECT * FROM ws1.emp",
    "EXPLAIN ANALYZE SELECT salary FROM ws1.emp",
    "EXPLAIN SELECT id FROM ws1.emp WHERE salary = 999",
    # the key lookup fast path
    "SELECT salary FROM ws1.emp WHERE id = 3",
    "SELECT name FROM ws1.emp WHERE id = 3 AND salary > 500",
    "SELECT * FROM ws1.emp WHERE id = 3",
    # an error message that would quote a value (22P02 'boss secret') never comes first
    "SELECT CAST(note AS INT) FROM ws1.emp LIMIT 5",
    # an earlier version of the table (time travel) is the same table
    'SELECT salary FROM ws1."emp@1"',
    'SELECT * FROM ws1."emp@2"',
]

WRITES = [
    "UPDATE ws1.emp SET salary = 0",
    "UPDATE ws1.emp SET name = 'x' WHERE salary > 500",
    "UPDATE ws1.emp SET name = 'x' WHERE id = 3 RETURNING salary",
    "UPDATE ws1.emp SET name = 'x' WHERE id = 3 RETURNING *",
    "UPDATE ws1.emp SET name = note WHERE id = 3",
    "UPDATE ws1.emp SET name = 'x' FROM ws1.emp f WHERE f.salary = 999",
    "INSERT INTO ws1.emp (id, name, salary) VALUES (9, 'x', 1)",
    "INSERT INTO ws1.emp VALUES (9, 'x', 1)",
    "INSERT INTO ws1.emp (id, name) VALUES (9, 'x') RETURNING salary",
    "INSERT INTO ws1.emp (id, name) SELECT id + 100, note FROM ws1.emp",
    "DELETE FROM ws1.emp WHERE id = 3",
    "INSERT INTO ws1.emp (id, name) VALUES (3, 'x') ON CONFLICT (id) DO UPDATE SET salary = 0",
    "INSERT INTO ws1.emp (id, name) VALUES (3, 'x') ON CONFLICT (id) DO UPDATE SET name = 'x' "
    "WHERE emp.salary > 500",
    "INSERT INTO ws1.emp (id, name) VALUES (3, 'x') ON CONFLICT (id) DO UPDATE SET name = emp.note",
    "INSERT INTO ws1.emp (id, name) VALUES (3, 'x') ON CONFLICT (id) DO UPDATE SET name = 'y' "
    "RETURNING salary",
    "EXPLAIN ANALYZE UPDATE ws1.emp SET salary = 0",
    "EXPLAIN UPDATE ws1.emp SET name = 'x' WHERE salary > 0",
    "WITH u AS (UPDATE ws1.emp SET name = name RETURNING salary) SELECT * FROM u",
    "CREATE VIEW ws1.mine AS SELECT id, salary FROM ws1.emp",
    "CREATE TEMP VIEW mine AS SELECT id, salary FROM ws1.emp",
    "CREATE TABLE ws1.mine AS SELECT salary FROM ws1.emp",
    "GRANT SELECT (salary) ON ws1.emp TO dave",
    "GRANT SELECT ON ws1.emp TO dave",
    # FOR UPDATE needs UPDATE on some column besides SELECT on what it reads
    "SELECT salary FROM ws1.emp WHERE id = 1 FOR UPDATE",
]


@pytest.mark.parametrize("fast", ["on", "off"])
def test_columns_not_granted_stay_closed(emp: Stack, fast: str) -> None:
    with _dave(emp) as c:
        c.execute(f"SET tarndb.fast_paths = {fast}")
        for sql in READS + WRITES:
            with pytest.raises(psycopg.errors.InsufficientPrivilege) as e:
                c.execute(sql)
            assert "999" not in str(e.value) and "secret" not in str(e.value), sql
            if not sql.startswith(("CREATE", "GRANT")):
                assert e.value.diag.message_primary == "permission denied for table emp", sql
        # prepared: Parse / Bind / Execute, the same statement twice
        for _ in range(2):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute("SELECT salary FROM ws1.emp WHERE id = %s", (3,), prepare=True)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute("SELECT * FROM ws1.emp WHERE id = %s", (3,), prepare=True)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute(
                    "SELECT CAST(note AS INT) FROM ws1.emp WHERE id > %s LIMIT 5",
                    (0,),
                    prepare=True,
                )
        # Describe of a statement naming an ungranted column answers (PostgreSQL's way:
        # privileges are checked when it runs), Execute refuses
        pg = c.pgconn
        assert pg.prepare(b"desc", b"SELECT salary FROM ws1.emp WHERE id = $1").status == (
            psycopg.pq.ExecStatus.COMMAND_OK
        )
        assert pg.describe_prepared(b"desc").status == psycopg.pq.ExecStatus.COMMAND_OK
        r = pg.exec_prepared(b"desc", [b"3"])
        assert r.status == psycopg.pq.ExecStatus.FATAL_ERROR
        assert r.error_field(psycopg.pq.DiagnosticField.SQLSTATE) == b"42501"
        # a CTE named like the table: the CTE is read, the table is written
        c.execute("SET search_path = ws1")
        assert c.execute(
            "WITH emp AS (SELECT id, name FROM ws1.emp) SELECT * FROM emp ORDER BY id"
        ).fetchall() == [(1, "ann"), (2, "bob"), (3, "cat")]
        for sql in (
            "WITH emp AS (SELECT 1 AS id) UPDATE emp SET salary = 0",
            "WITH emp AS (SELECT 1 AS id) UPDATE emp SET name = 'x' WHERE salary > 0",
            "WITH emp AS (SELECT 1 AS id) DELETE FROM emp",
            "WITH emp AS (SELECT 1 AS id) INSERT INTO emp (id, salary) VALUES (9, 1)",
            "WITH emp AS (SELECT 1 AS id) SELECT salary FROM ws1.emp",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute(sql)
        c.execute("RESET search_path")
        # SQL-level PREPARE is checked when EXECUTE runs it, as in PostgreSQL
        c.execute("PREPARE leak(int) AS SELECT salary FROM ws1.emp WHERE id = $1")
        c.execute("PREPARE raise AS UPDATE ws1.emp SET salary = salary * 2")
        for sql in ("EXECUTE leak(3)", "EXECUTE raise"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute(sql)
        c.execute("DEALLOCATE ALL")
        # a name that no column has is the statement's own error, not a privilege one
        with pytest.raises(psycopg.errors.UndefinedColumn):
            c.execute("SELECT nosuch FROM ws1.emp")
        for sql in (
            "COPY ws1.emp TO STDOUT",
            "COPY ws1.emp (id, salary) TO STDOUT",
            "COPY (SELECT * FROM ws1.emp) TO STDOUT",
            "COPY (SELECT id FROM ws1.emp ORDER BY salary) TO STDOUT",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), c.cursor().copy(sql) as cp:
                cp.read()
        for sql in ("COPY ws1.emp (id, salary) FROM STDIN", "COPY ws1.emp FROM STDIN"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), c.cursor().copy(sql) as cp:
                cp.write(b"9\t1\n")
        with pytest.raises(psycopg.errors.InsufficientPrivilege), c.transaction():
            c.execute("DECLARE cur CURSOR FOR SELECT salary FROM ws1.emp")
    assert _secrets(emp) == [(i, s, t) for i, _, s, t in ROWS]
    _unchanged(emp)


_M = "MERGE INTO ws1.emp e USING (VALUES (3, 'x'), (7, 'new')) s(id, n) ON "

#: MERGEs that name a column dave holds no privilege for there (PostgreSQL's
#: transformMergeStmt: SELECT for what the join condition, the WHEN conditions, the values
#: and RETURNING read, UPDATE for each SET column, INSERT for each column an INSERT fills,
#: DELETE on the table)
MERGES = [
    # reads of the target
    _M + "e.salary = s.id WHEN MATCHED THEN UPDATE SET name = 'x'",
    _M + "e.id = s.id AND e.note LIKE '%secret%' WHEN MATCHED THEN UPDATE SET name = 'x'",
    _M + "e.id = s.id WHEN MATCHED AND e.salary > 500 THEN UPDATE SET name = 'x'",
    _M + "e.id = s.id WHEN MATCHED AND salary > 500 THEN UPDATE SET name = 'x'",
    _M + "e.id = s.id WHEN MATCHED THEN UPDATE SET name = e.note",
    _M + "e.id = s.id WHEN MATCHED THEN UPDATE SET name = note",
    _M + "e.id = s.id WHEN MATCHED THEN UPDATE SET name = CAST(e.salary AS TEXT)",
    _M + "e.id = s.id WHEN MATCHED AND to_jsonb(e) IS NOT NULL THEN UPDATE SET name = 'x'",
    _M + "e.id = s.id WHEN MATCHED AND e.* IS NOT NULL THEN UPDATE SET name = 'x'",
    _M + "e.id = s.id WHEN MATCHED THEN UPDATE SET name = (SELECT max(note) FROM ws1.emp)",
    _M + "e.id = s.id WHEN MATCHED AND EXISTS (SELECT 1 FROM ws1.emp f WHERE f.salary > 500) "
    "THEN UPDATE SET name = 'x'",
    _M + "e.id = s.id WHEN MATCHED THEN UPDATE SET name = 'x' RETURNING e.salary",
    _M + "e.id = s.id WHEN MATCHED THEN UPDATE SET name = 'x' RETURNING e.*",
    _M + "e.id = s.id WHEN NOT MATCHED BY SOURCE AND e.salary > 500 THEN UPDATE SET name = 'x'",
    _M + "e.id = s.id WHEN MATCHED AND 'x' = 'y' THEN DO NOTHING "
    "WHEN MATCHED THEN UPDATE SET name = columns('note')",
    # writes of columns not granted for that
    _M + "e.id = s.id WHEN MATCHED THEN UPDATE SET salary = 0",
    _M + "e.id = s.id WHEN MATCHED THEN UPDATE SET name = 'x', note = 'y'",
    _M + "e.id = s.id WHEN MATCHED THEN UPDATE SET id = 9",
    _M + "e.id = s.id WHEN MATCHED AND s.n = 'never' THEN UPDATE SET salary = 0 "
    "WHEN MATCHED THEN UPDATE SET name = 'x'",
    _M + "e.id = s.id WHEN NOT MATCHED THEN INSERT (id, name, salary) VALUES (s.id, s.n, 1)",
    _M + "e.id = s.id WHEN NOT MATCHED THEN INSERT (id, note) VALUES (s.id, s.n)",
    _M + "e.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.n, 1)",
    _M + "e.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.n, DEFAULT)",
    _M + "e.id = s.id WHEN MATCHED THEN DELETE",
    _M + "e.id = s.id WHEN MATCHED AND s.n = 'never' THEN DELETE "
    "WHEN NOT MATCHED THEN INSERT (id, name) VALUES (s.id, s.n)",
    # the source: a table read through column grants too
    "MERGE INTO ws1.emp e USING ws1.emp s ON e.id = s.id "
    "WHEN MATCHED THEN UPDATE SET name = s.note",
    "MERGE INTO ws1.emp e USING ws1.emp s ON e.id = s.salary "
    "WHEN MATCHED THEN UPDATE SET name = 'x'",
    "MERGE INTO ws1.emp e USING ws1.emp s ON e.id = s.id + 10 "
    "WHEN NOT MATCHED THEN INSERT (id, name) VALUES (s.id + 10, s.note)",
    "MERGE INTO ws1.emp e USING ws1.emp s ON e.id = s.id + 10 "
    "WHEN NOT MATCHED THEN INSERT (id, name) VALUES (s.id + 10, note)",
    "MERGE INTO ws1.emp e USING (SELECT id, salary AS n FROM ws1.emp) s ON e.id = s.id "
    "WHEN MATCHED THEN UPDATE SET name = s.n",
    "MERGE INTO ws1.emp e USING (SELECT * FROM ws1.emp) s ON e.id = s.id "
    "WHEN MATCHED THEN UPDATE SET name = 'x'",
    "MERGE INTO ws1.emp e USING ws1.emp s ON e.id = s.id "
    "WHEN MATCHED THEN UPDATE SET name = 'x' RETURNING s.*",
    "EXPLAIN " + _M + "e.id = s.id WHEN MATCHED THEN UPDATE SET salary = 0",
]


def _merge_refused(
    c: psycopg.Connection[object], emp: Stack, sql: str, params: tuple[object, ...] | None = None
) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as e:
        c.execute(sql, params, prepare=params is not None)
    assert e.value.sqlstate == "42501", sql
    assert e.value.diag.message_primary == "permission denied for table emp", sql
    assert "999" not in str(e.value) and "secret" not in str(e.value), sql
    assert emp.admin_sql("SELECT id, name, salary, note FROM ws1.emp ORDER BY id") == ROWS


@pytest.mark.parametrize("fast", ["on", "off"])
def test_merge_columns_not_granted(emp: Stack, fast: str) -> None:
    with _dave(emp) as c:
        c.execute(f"SET tarndb.fast_paths = {fast}")
        for sql in MERGES:
            _merge_refused(c, emp, sql)
        # Parse / Bind / Execute with parameters, twice (the plan cache)
        for _ in range(2):
            _merge_refused(
                c,
                emp,
                "MERGE INTO ws1.emp e USING (SELECT %s::int AS id) s ON e.id = s.id "
                "WHEN MATCHED THEN UPDATE SET salary = %s",
                (3, 0),
            )
        # SQL-level PREPARE: checked when EXECUTE runs it
        c.execute(
            "PREPARE m(int) AS MERGE INTO ws1.emp e USING (SELECT $1 AS id) s ON e.id = s.id "
            "WHEN MATCHED AND e.salary > 0 THEN UPDATE SET name = 'x'"
        )
        _merge_refused(c, emp, "EXECUTE m(3)")
        c.execute("DEALLOCATE ALL")
        # a table write privilege writes the column, but reading it still needs SELECT
        emp.admin_sql("GRANT UPDATE, DELETE ON ws1.emp TO dave")
        try:
            for sql in (
                _M + "e.id = s.id WHEN MATCHED THEN UPDATE SET salary = e.salary + 1",
                _M + "e.id = s.id WHEN MATCHED AND e.note LIKE '%secret%' THEN DELETE",
                _M + "e.id = s.id WHEN MATCHED THEN DELETE RETURNING e.note",
            ):
                _merge_refused(c, emp, sql)
        finally:
            emp.admin_sql("REVOKE UPDATE, DELETE ON ws1.emp FROM dave")
        # a role with no grant on the source at all
        emp.admin_sql("CREATE TABLE ws1.msrc (id INT, n TEXT)")
        try:
            emp.admin_sql("INSERT INTO ws1.msrc VALUES (3, 'z')")
            _merge_refused(
                c,
                emp,
                "MERGE INTO ws1.emp e USING ws1.msrc s ON e.id = 3 "
                "WHEN MATCHED THEN UPDATE SET name = 'x'",
            )
        finally:
            emp.admin_sql("DROP TABLE ws1.msrc")
    assert _secrets(emp) == [(i, s, t) for i, _, s, t in ROWS]
    _unchanged(emp)


@pytest.mark.parametrize("fast", ["on", "off"])
def test_merge_granted_columns(emp: Stack, fast: str) -> None:
    """What PostgreSQL lets a role with SELECT (id, name, emb), INSERT (id, name) and
    UPDATE (name) MERGE: each runs, with its exact result."""

    def rows() -> list[tuple[object, ...]]:
        return emp.admin_sql("SELECT id, name, salary, note FROM ws1.emp ORDER BY id")

    def reset() -> None:
        emp.admin_sql("DELETE FROM ws1.emp WHERE id > 3")
        emp.admin_sql(
            "UPDATE ws1.emp SET name = CASE id WHEN 1 THEN 'ann' WHEN 2 THEN 'bob' ELSE 'cat' END"
        )
        _unchanged(emp)

    base = [(i, n, s, t) for i, n, s, t in ROWS]
    with _dave(emp) as c:
        c.execute(f"SET tarndb.fast_paths = {fast}")
        # SELECT (id) for the join, UPDATE (name) for SET, INSERT (id, name)
        cur = c.execute(
            _M + "e.id = s.id WHEN MATCHED THEN UPDATE SET name = s.n "
            "WHEN NOT MATCHED THEN INSERT (id, name) VALUES (s.id, s.n)"
        )
        assert cur.statusmessage == "MERGE 2"
        assert rows() == [*base[:2], (3, "x", 999, "boss secret"), (7, "new", None, None)]
        reset()
        # the target's granted columns in conditions and values; INSERT without a column
        # list fills the first columns (id, name), as many as it has values
        cur = c.execute(
            "MERGE INTO ws1.emp e USING (VALUES (1, 'a'), (2, 'b'), (8, 'h')) s(id, n) "
            "ON e.id = s.id "
            "WHEN MATCHED AND e.name = 'bob' THEN UPDATE SET name = upper(e.name) || s.n "
            "WHEN MATCHED THEN DO NOTHING "
            "WHEN NOT MATCHED AND s.n = 'h' THEN INSERT VALUES (s.id, s.n)"
        )
        assert cur.statusmessage == "MERGE 2"
        assert rows() == [
            base[0],
            (2, "BOBb", 200, "loud"),
            base[2],
            (8, "h", None, None),
        ]
        reset()
        # the table itself as the source, through the same column grants; RETURNING
        # granted columns and merge_action()
        cur = c.execute(
            "MERGE INTO ws1.emp e USING ws1.emp s ON e.id = s.id + 1 "
            "WHEN MATCHED THEN UPDATE SET name = s.name || '<' || e.name "
            "RETURNING merge_action(), e.id, e.name, s.id"
        )
        assert sorted(cur.fetchall()) == [  # type: ignore[type-var]
            ("UPDATE", 2, "ann<bob", 1),
            ("UPDATE", 3, "bob<cat", 2),
        ]
        assert rows() == [base[0], (2, "ann<bob", 200, "loud"), (3, "bob<cat", 999, "boss secret")]
        reset()
        # Parse / Bind / Execute with parameters, twice
        for n in ("p", "q"):
            cur = c.execute(
                "MERGE INTO ws1.emp e USING (SELECT %s::int AS id, %s::text AS n) s "
                "ON e.id = s.id WHEN MATCHED THEN UPDATE SET name = s.n",
                (1, n),
                prepare=True,
            )
            assert cur.rowcount == 1
            assert rows()[0] == (1, n, 100, "quiet")
        reset()
        # DO NOTHING alone needs SELECT on some column of the target: id will do
        cur = c.execute(
            "MERGE INTO ws1.emp e USING (SELECT 1 AS id) s ON true WHEN MATCHED THEN DO NOTHING"
        )
        assert cur.statusmessage == "MERGE 0"
        # a table privilege covers the columns: DELETE, and UPDATE of salary (written,
        # not read)
        emp.admin_sql("GRANT UPDATE, DELETE ON ws1.emp TO dave")
        try:
            cur = c.execute(
                _M + "e.id = s.id WHEN MATCHED AND e.name = 'cat' THEN UPDATE SET salary = 0"
            )
            assert cur.statusmessage == "MERGE 1"
            assert rows()[2] == (3, "cat", 0, "boss secret")
            emp.admin_sql("UPDATE ws1.emp SET salary = 999 WHERE id = 3")
            cur = c.execute(
                "MERGE INTO ws1.emp e USING (VALUES (9, 'z')) s(id, n) ON e.id = s.id "
                "WHEN NOT MATCHED THEN INSERT (id, name) VALUES (s.id, s.n)"
            )
            cur = c.execute(
                "MERGE INTO ws1.emp e USING (VALUES (9)) s(id) ON e.id = s.id "
                "WHEN MATCHED THEN DELETE"
            )
            assert cur.statusmessage == "MERGE 1"
        finally:
            emp.admin_sql("REVOKE UPDATE, DELETE ON ws1.emp FROM dave")
    assert _secrets(emp) == [(i, s, t) for i, _, s, t in ROWS]
    _unchanged(emp)


def test_revoke_and_catalogs(emp: Stack) -> None:
    q = emp.admin_sql
    assert q(
        "SELECT has_column_privilege('dave', 'ws1.emp', 'name', 'SELECT'), "
        "has_column_privilege('dave', 'ws1.emp', 'salary', 'SELECT'), "
        "has_column_privilege('dave', 'ws1.emp', 'name', 'UPDATE'), "
        "has_column_privilege('dave', 'ws1.emp', 'id', 'UPDATE'), "
        "has_table_privilege('dave', 'ws1.emp', 'SELECT'), "
        "has_any_column_privilege('dave', 'ws1.emp', 'SELECT'), "
        "has_any_column_privilege('dave', 'ws1.emp', 'DELETE')"
    ) == [(True, False, True, False, False, True, False)]
    assert q(
        "SELECT column_name, privilege_type FROM information_schema.column_privileges "
        "WHERE table_name = 'emp' AND grantee = 'dave' ORDER BY 1, 2"
    ) == [
        ("emb", "SELECT"),
        ("id", "INSERT"),
        ("id", "SELECT"),
        ("name", "INSERT"),
        ("name", "SELECT"),
        ("name", "UPDATE"),
    ]
    acl = dict(
        q(
            "SELECT attname, attacl FROM pg_attribute a JOIN pg_class c ON "
            "c.oid = a.attrelid WHERE c.relname = 'emp' AND a.attnum > 0"
        )
    )
    assert acl == {
        "id": ["dave=ar/postgres"],
        "name": ["dave=arw/postgres"],
        "salary": None,
        "note": None,
        "emb": ["dave=r/postgres"],
    }
    # the column by number
    assert q(
        "SELECT has_column_privilege('dave', 'ws1.emp', 2::smallint, 'SELECT'), "
        "has_column_privilege('dave', 'ws1.emp', 3::smallint, 'SELECT')"
    ) == [(True, False)]
    with _dave(emp) as c:
        assert c.execute(
            "SELECT has_column_privilege('ws1.emp', 'name', 'SELECT'), "
            "has_column_privilege('ws1.emp', 'note', 'SELECT')"
        ).fetchone() == (True, False)
        # a table grant covers every column; REVOKE of it takes the column grants with it,
        # as PostgreSQL does
        q("GRANT SELECT ON ws1.emp TO dave")
        assert len(c.execute("SELECT * FROM ws1.emp").fetchall()) == 3
        q("REVOKE SELECT ON ws1.emp FROM dave")
        for sql in ("SELECT * FROM ws1.emp", "SELECT name FROM ws1.emp"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute(sql)
        q("GRANT SELECT (id, name) ON ws1.emp TO dave")
        assert c.execute("SELECT name FROM ws1.emp WHERE id = 1").fetchall() == [("ann",)]
        q("REVOKE SELECT (name) ON ws1.emp FROM dave")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT name FROM ws1.emp WHERE id = 1")
        assert c.execute("SELECT count(*) FROM ws1.emp").fetchone() == (3,)
        # PUBLIC's column grants count for every role
        q("GRANT SELECT (name) ON ws1.emp TO PUBLIC")
        assert c.execute("SELECT name FROM ws1.emp WHERE id = 1").fetchall() == [("ann",)]
        q("REVOKE SELECT (name) ON ws1.emp FROM PUBLIC")
        q("REVOKE ALL (id) ON ws1.emp FROM dave")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT count(*) FROM ws1.emp")
    with pytest.raises(psycopg.errors.UndefinedColumn):
        q("GRANT SELECT (nosuch) ON ws1.emp TO dave")
    with pytest.raises(psycopg.errors.SyntaxErrorOrAccessRuleViolation):
        q("GRANT DELETE (id) ON ws1.emp TO dave")
    _unchanged(emp)


def test_views_and_column_grants(emp: Stack) -> None:
    q = emp.admin_sql
    q("CREATE VIEW ws1.emp_inv WITH (security_invoker = true) AS SELECT id, name FROM ws1.emp")
    q("CREATE VIEW ws1.emp_all WITH (security_invoker = true) AS SELECT id, salary FROM ws1.emp")
    q("CREATE VIEW ws1.emp_pub AS SELECT id, name, salary FROM ws1.emp")
    q("GRANT SELECT ON ws1.emp_inv, ws1.emp_all TO dave")
    q("GRANT SELECT (id, name) ON ws1.emp_pub TO dave")
    with _dave(emp) as c:
        # a security_invoker view reads with the reader's column grants
        assert c.execute("SELECT name FROM ws1.emp_inv WHERE id = 2").fetchall() == [("bob",)]
        # a plain view reads with its owner's rights; the reader's grants on the view's
        # own columns decide
        assert c.execute("SELECT name FROM ws1.emp_pub WHERE id = 3").fetchall() == [("cat",)]
        # FOR UPDATE of granted columns: UPDATE (name) is enough
        with c.transaction():
            assert c.execute("SELECT name FROM ws1.emp WHERE id = 1 FOR UPDATE").fetchall() == [
                ("ann",)
            ]
        for sql in (
            "SELECT id FROM ws1.emp_all",
            "SELECT * FROM ws1.emp_pub",
            "SELECT salary FROM ws1.emp_pub",
            "SELECT emp_pub FROM ws1.emp_pub",
            "SELECT id FROM ws1.emp_pub ORDER BY salary",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege) as e:
                c.execute(sql)
            assert "999" not in str(e.value)
    assert q(
        "SELECT has_column_privilege('dave', 'ws1.emp_pub', 'name', 'SELECT'), "
        "has_column_privilege('dave', 'ws1.emp_pub', 'salary', 'SELECT')"
    ) == [(True, False)]
    for v in ("ws1.emp_inv", "ws1.emp_all", "ws1.emp_pub"):
        q(f"DROP VIEW {v}")
    _unchanged(emp)


def test_tokens_are_not_roles(emp: Stack) -> None:
    # API tokens (HTTP, and the Postgres protocol with a token) are scoped by workspace
    # and read/write, not by role grants: column grants neither widen nor narrow them
    r = emp.http_sql("read", "SELECT salary FROM emp WHERE id = 3")
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [[999]]
    r = emp.http_sql("read", "UPDATE emp SET name = 'x'")
    assert r.status_code == 403, r.text
    _unchanged(emp)


def test_grants_follow_renamed_and_dropped_columns(emp: Stack) -> None:
    q = emp.admin_sql
    with _dave(emp) as c:
        # a renamed column keeps its grants (PostgreSQL keeps them by column number)
        q("ALTER TABLE ws1.emp RENAME COLUMN name TO nm")
        assert c.execute("SELECT nm FROM ws1.emp WHERE id = 1").fetchall() == [("ann",)]
        q("ALTER TABLE ws1.emp RENAME COLUMN nm TO name")
        assert c.execute("SELECT name FROM ws1.emp WHERE id = 1").fetchall() == [("ann",)]
        # a dropped column's grants go with it: a new column of its name has none
        q("ALTER TABLE ws1.emp ADD COLUMN extra TEXT")
        q("GRANT SELECT (extra) ON ws1.emp TO dave")
        assert c.execute("SELECT extra FROM ws1.emp WHERE id = 1").fetchall() == [(None,)]
        q("ALTER TABLE ws1.emp DROP COLUMN extra")
        q("ALTER TABLE ws1.emp ADD COLUMN extra TEXT")
        q("UPDATE ws1.emp SET extra = 'new secret'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT extra FROM ws1.emp")
        q("ALTER TABLE ws1.emp DROP COLUMN extra")
    _unchanged(emp)


def test_set_role_takes_the_roles_column_grants(emp: Stack) -> None:
    with emp.pg() as c:
        c.execute("SET ROLE dave")
        assert c.execute("SELECT name FROM ws1.emp WHERE id = 2").fetchall() == [("bob",)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT salary FROM ws1.emp WHERE id = 2")
        c.execute("RESET ROLE")
        assert c.execute("SELECT salary FROM ws1.emp WHERE id = 2").fetchall() == [(200,)]
    _unchanged(emp)
