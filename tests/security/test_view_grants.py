"""GRANT / REVOKE on views, PostgreSQL's way: a role reads a view it holds SELECT on; a plain
view (``security_invoker = false``) reads its tables with its owner's (a superuser's)
privileges, so a role can be given some columns and rows of a table without the table; a
``security_invoker`` view needs the reader's own privileges on what it reads. The
workspaces a session may reach are never widened by a view.

Every attack is a real client against the shared seeded ``tarndb serve`` (see
_security_support): the refusal is checked (42501, or PostgreSQL's own code) and that nothing
changed."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from _security_support import Stack

CAROL = "carol-pw-2468"
STAFF = [(1, "1", 100, False), (2, "2", 200, False), (3, "boss secret", 999, True)]


@pytest.fixture
def staff(stack: Stack) -> Iterator[Stack]:
    stack.admin_sql("CREATE TABLE ws1.staff (id INT PRIMARY KEY, name TEXT, salary INT, "
                    "hidden BOOLEAN)")
    stack.admin_sql("INSERT INTO ws1.staff VALUES " + ", ".join(
        f"({i}, '{n}', {s}, {str(h).lower()})" for i, n, s, h in STAFF))
    # some columns and rows of ws1.staff, read with the owner's privileges
    stack.admin_sql("CREATE VIEW ws1.staff_pub AS SELECT id, name FROM ws1.staff "
                    "WHERE NOT hidden")
    stack.admin_sql("CREATE VIEW ws1.staff_inv WITH (security_invoker = true) AS "
                    "SELECT id, name FROM ws1.staff")
    stack.admin_sql("CREATE VIEW ws1.staff_chain AS SELECT id FROM ws1.staff_inv")
    stack.admin_sql("CREATE VIEW ws1.over_ws2 AS SELECT id, body FROM ws2.t")
    stack.admin_sql("CREATE VIEW ws1.staff_names AS SELECT id, name FROM ws1.staff")
    stack.admin_sql(f"CREATE ROLE carol LOGIN PASSWORD '{CAROL}'")
    stack.admin_sql("GRANT USAGE ON SCHEMA ws1 TO carol")
    stack.admin_sql("GRANT SELECT ON ws1.staff_pub, ws1.staff_inv, ws1.staff_chain, "
                    "ws1.over_ws2, ws1.staff_names TO carol")
    try:
        yield stack
    finally:
        stack.admin_sql("REVOKE ALL ON SCHEMA ws1 FROM carol")
        stack.admin_sql("REVOKE ALL ON ALL TABLES IN SCHEMA ws1 FROM carol")
        stack.admin_sql("DROP ROLE carol")
        for v in ("ws1.staff_names", "ws1.over_ws2", "ws1.staff_chain", "ws1.staff_inv",
                  "ws1.staff_pub", "ws1.mine"):
            stack.admin_sql(f"DROP VIEW IF EXISTS {v}")
        stack.admin_sql("DROP TABLE IF EXISTS ws1.staff")


def _carol(stack: Stack) -> psycopg.Connection[object]:
    return stack.pg(user="carol", password=CAROL)


def _unchanged(stack: Stack) -> None:
    assert stack.admin_sql("SELECT id, name, salary, hidden FROM ws1.staff ORDER BY id") \
        == STAFF
    assert stack.admin_sql("SELECT table_name FROM information_schema.tables WHERE "
                           "table_schema = 'ws1' ORDER BY 1") == \
        [("over_ws2",), ("staff",), ("staff_chain",), ("staff_inv",), ("staff_names",),
         ("staff_pub",), ("t",)]


def test_a_role_reads_a_view_without_its_table(staff: Stack) -> None:
    with _carol(staff) as c:
        assert c.execute("SELECT * FROM ws1.staff_pub ORDER BY id").fetchall() == \
            [(1, "1"), (2, "2")]
        assert c.execute("SELECT count(*) FROM ws1.staff_pub p JOIN ws1.staff_pub q "
                         "USING (id)").fetchone() == (2,)
        # prepared, and with the reader's own filter
        assert c.execute("SELECT name FROM ws1.staff_pub WHERE id = %s", (2,),
                         prepare=True).fetchall() == [("2",)]
        assert c.execute("SELECT name FROM ws1.staff_pub WHERE id = %s", (3,),
                         prepare=True).fetchall() == []
        # a plain view reading a security_invoker one: checked as the outer view's owner
        assert c.execute("SELECT id FROM ws1.staff_chain ORDER BY id").fetchall() == \
            [(1,), (2,), (3,)]
        with c.cursor().copy("COPY (SELECT * FROM ws1.staff_pub ORDER BY id) TO STDOUT") as cp:
            assert b"".join(cp) == b"1\t1\n2\t2\n"
        # the reader's filter runs on the rows the view gives: an error it raises never
        # shows a row the view hides (the fence under the view)
        assert c.execute("SELECT id FROM ws1.staff_pub WHERE CAST(name AS INT) > 0 "
                         "ORDER BY id").fetchall() == [(1,), (2,)]
        assert c.execute("SELECT sum(CAST(name AS INT)) FROM ws1.staff_pub").fetchone() == \
            (3,)
        # the fence is there for a view that leaves rows out, not for one that only picks
        # columns (every row it reads is shown: its filters keep their pushdown)
        def plan(sql: str) -> str:
            return "\n".join(r[0] for r in c.execute("EXPLAIN " + sql))

        assert "LIMIT" in plan("SELECT * FROM ws1.staff_pub WHERE id = 1").upper()
        assert "LIMIT" not in plan("SELECT * FROM ws1.staff_names WHERE id = 1").upper()
        assert c.execute("SELECT name FROM ws1.staff_names WHERE id = 3").fetchall() == \
            [("boss secret",)]
    _unchanged(staff)


def test_the_table_behind_a_view_stays_closed(staff: Stack) -> None:
    attacks = [
        "SELECT * FROM ws1.staff",
        "SELECT salary FROM ws1.staff WHERE id = 1",  # the key lookup fast path
        "SELECT * FROM ws1.staff_pub WHERE id IN (SELECT id FROM ws1.staff WHERE hidden)",
        "SELECT p.id, s.salary FROM ws1.staff_pub p JOIN ws1.staff s USING (id)",
        "WITH s AS (SELECT * FROM ws1.staff) SELECT * FROM s",
        "SELECT (SELECT max(salary) FROM ws1.staff)",
        "EXPLAIN SELECT * FROM ws1.staff",
        "SELECT * FROM ws1.staff_pub UNION ALL SELECT id, name FROM ws1.staff",
        # a security_invoker view needs the reader's own SELECT on the table
        "SELECT * FROM ws1.staff_inv",
        # a view never widens the schemas a role may reach (carol has no USAGE on ws2)
        "SELECT * FROM ws1.over_ws2",
        # the role cannot make a view (or a table) of its own over the table
        "CREATE VIEW ws1.mine AS SELECT * FROM ws1.staff",
        "CREATE TEMP VIEW mine AS SELECT * FROM ws1.staff",
        "CREATE TABLE ws1.mine AS SELECT * FROM ws1.staff_pub",
        # nor change the view or the table, nor grant
        "CREATE OR REPLACE VIEW ws1.staff_pub AS SELECT id, name FROM ws1.staff",
        "DROP VIEW ws1.staff_pub",
        "ALTER VIEW ws1.staff_pub RENAME TO p2",
        "ALTER VIEW ws1.staff_inv SET (security_invoker = false)",
        "ALTER VIEW ws1.staff_inv RESET (security_invoker)",
        "GRANT SELECT ON ws1.staff TO carol",
        "GRANT SELECT ON ws1.staff_pub TO alice",
        "UPDATE ws1.staff SET salary = 0",
        "DELETE FROM ws1.staff",
        "INSERT INTO ws1.staff VALUES (9, 'x', 1, false)",
        "SELECT salary FROM ws1.staff WHERE id = %s",
    ]
    with _carol(staff) as c:
        for sql in attacks:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                if "%s" in sql:  # prepared: Parse / Bind / Execute
                    c.execute(sql, (1,), prepare=True)
                else:
                    c.execute(sql)
        c.execute("SET search_path = ws1")
        for sql in ("SELECT * FROM staff", "SELECT salary FROM staff WHERE id = 3"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute(sql)
        for sql in ("COPY ws1.staff TO STDOUT", "COPY (SELECT * FROM ws1.staff) TO STDOUT"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), \
                    c.cursor().copy(sql) as cp:
                cp.read()
        # DuckDB's functions that read a relation named by a string are not there, nor are
        # the names the statement's scope gives the tables it reads (tests/engine/
        # test_view_owner_rights.py aims at them exactly)
        for sql in ("SELECT x.* FROM ws1.staff_pub p, query_table('ws1.staff') x",
                    "SELECT * FROM query('SELECT * FROM ws1.staff')"):
            with pytest.raises(psycopg.errors.UndefinedFunction):
                c.execute(sql)
        with pytest.raises(psycopg.errors.UndefinedTable):
            c.execute("SELECT x.* FROM ws1.staff_pub p, __t1 x")
        # the view has only its own columns
        with pytest.raises(psycopg.errors.UndefinedColumn):
            c.execute("SELECT salary FROM ws1.staff_pub")
        # writing through the view: no INSERT privilege on it, and views are read-only
        with pytest.raises((psycopg.errors.InsufficientPrivilege,
                            psycopg.errors.WrongObjectType)):
            c.execute("INSERT INTO ws1.staff_pub VALUES (9, 'x')")
    _unchanged(staff)


def test_revoke_and_grant_on_a_view(staff: Stack) -> None:
    with _carol(staff) as c:
        assert c.execute("SELECT count(*) FROM ws1.staff_pub").fetchone() == (2,)
        staff.admin_sql("REVOKE SELECT ON ws1.staff_pub FROM carol")
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as e:
            c.execute("SELECT count(*) FROM ws1.staff_pub")
        assert e.value.diag.message_primary == "permission denied for view staff_pub"
        # ALL on a view, and ALL TABLES IN SCHEMA takes in views (as in PostgreSQL)
        staff.admin_sql("GRANT ALL ON ws1.staff_pub TO carol")
        assert c.execute("SELECT count(*) FROM ws1.staff_pub").fetchone() == (2,)
        staff.admin_sql("REVOKE ALL ON ws1.staff_pub FROM carol")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT count(*) FROM ws1.staff_pub")
        staff.admin_sql("GRANT SELECT ON ALL TABLES IN SCHEMA ws1 TO carol")
        assert c.execute("SELECT count(*) FROM ws1.staff_pub").fetchone() == (2,)
        # now with SELECT on the table too, the security_invoker view opens
        assert c.execute("SELECT count(*) FROM ws1.staff_inv").fetchone() == (3,)
        staff.admin_sql("REVOKE SELECT ON ALL TABLES IN SCHEMA ws1 FROM carol")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT count(*) FROM ws1.staff_pub")
        staff.admin_sql("GRANT SELECT ON ws1.staff_pub TO PUBLIC")
        assert c.execute("SELECT count(*) FROM ws1.staff_pub").fetchone() == (2,)
        staff.admin_sql("REVOKE SELECT ON ws1.staff_pub FROM PUBLIC")
        # ALTER VIEW SET / RESET (security_invoker) switches whose privileges read it
        staff.admin_sql("GRANT SELECT ON ws1.staff_pub TO carol")
        staff.admin_sql("ALTER VIEW ws1.staff_pub SET (security_invoker = true)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT count(*) FROM ws1.staff_pub")
        staff.admin_sql("ALTER VIEW ws1.staff_pub RESET (security_invoker)")
        assert c.execute("SELECT count(*) FROM ws1.staff_pub").fetchone() == (2,)
    with pytest.raises(psycopg.errors.UndefinedTable):
        staff.admin_sql("GRANT SELECT ON ws1.no_such_view TO carol")
    # a column list grants those columns, never the whole table (test_column_grants.py)
    staff.admin_sql("GRANT SELECT (id, name) ON ws1.staff TO carol")
    with _carol(staff) as c:
        assert c.execute("SELECT id FROM ws1.staff ORDER BY id").fetchall() == \
            [(1,), (2,), (3,)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT salary FROM ws1.staff")
    staff.admin_sql("REVOKE SELECT (id, name) ON ws1.staff FROM carol")
    with _carol(staff) as c, pytest.raises(psycopg.errors.InsufficientPrivilege):
        c.execute("SELECT id FROM ws1.staff")
    _unchanged(staff)


def test_tokens_read_views_within_their_workspaces(staff: Stack) -> None:
    # API tokens have no per-table grants: a view in ws1 is theirs as ws1's tables are,
    # and a view over ws2 is refused whatever its security_invoker, through both protocols
    r = staff.http_sql("read", "SELECT id, name FROM staff_pub ORDER BY id")
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [[1, "1"], [2, "2"]]
    for sql in ("SELECT * FROM over_ws2", "SELECT * FROM ws1.over_ws2 WHERE id = 1",
                "SELECT count(*) FROM (SELECT * FROM ws1.over_ws2) s",
                "WITH x AS (SELECT * FROM ws1.over_ws2) SELECT * FROM x",
                "SELECT p.id FROM staff_pub p JOIN over_ws2 o USING (id)",
                "SELECT * FROM staff_pub WHERE id IN (SELECT id FROM ws2.t)",
                "EXPLAIN SELECT * FROM over_ws2",
                "SELECT * FROM ws2.t",
                "CREATE VIEW ws1.mine AS SELECT * FROM ws1.over_ws2",
                "CREATE VIEW ws1.mine AS SELECT * FROM ws2.t",
                "GRANT SELECT ON ws1.staff_pub TO carol"):
        for token in ("read", "write"):
            r = staff.http_sql(token, sql)
            assert r.status_code == 403, (sql, r.text)
            assert "ws2 row" not in r.text
    with staff.pg_token("read") as c:
        assert c.execute("SELECT count(*) FROM ws1.staff_pub").fetchone() == (2,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT * FROM ws1.over_ws2")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("GRANT SELECT ON ws1.staff_pub TO carol")
    _unchanged(staff)


def test_catalogs_show_view_grants(staff: Stack) -> None:
    acl = dict(staff.admin_sql(
        "SELECT relname, relacl FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE nspname = 'ws1' AND relname LIKE 'staff%' AND relkind IN ('r', 'v')"))
    assert acl == {"staff": None, "staff_pub": ["postgres=arwdDxt/postgres", "carol=r/postgres"],
                   "staff_inv": ["postgres=arwdDxt/postgres", "carol=r/postgres"],
                   "staff_chain": ["postgres=arwdDxt/postgres", "carol=r/postgres"],
                   "staff_names": ["postgres=arwdDxt/postgres", "carol=r/postgres"]}
    assert dict(staff.admin_sql(
        "SELECT relname, reloptions FROM pg_class WHERE relname IN ('staff_pub', "
        "'staff_inv')")) == {"staff_pub": None, "staff_inv": ["security_invoker=true"]}
    assert staff.admin_sql(
        "SELECT has_table_privilege('carol', 'ws1.staff_pub', 'SELECT'), "
        "has_table_privilege('carol', 'ws1.staff', 'SELECT'), "
        "has_table_privilege('carol', 'ws1.staff_pub', 'INSERT'), "
        "has_table_privilege('ws1.staff', 'DELETE')") == [(True, False, False, True)]
    with _carol(staff) as c:
        assert c.execute(
            "SELECT has_table_privilege('ws1.staff_pub', 'SELECT'), "
            "has_table_privilege('ws1.staff_pub'::regclass, 'select'), "
            "has_table_privilege('ws1.staff', 'SELECT'), "
            "has_table_privilege('ws1.staff_pub', 'UPDATE'), "
            "has_table_privilege('pg_catalog.pg_class', 'SELECT')").fetchone() == \
            (True, True, False, False, True)
        assert c.execute(
            "SELECT table_name, grantee, privilege_type FROM "
            "information_schema.table_privileges WHERE table_schema = 'ws1' "
            "ORDER BY 1").fetchall() == [
                ("over_ws2", "carol", "SELECT"), ("staff_chain", "carol", "SELECT"),
                ("staff_inv", "carol", "SELECT"), ("staff_names", "carol", "SELECT"),
                ("staff_pub", "carol", "SELECT")]
    rows = staff.admin_sql("SELECT grantee, privilege_type FROM "
                           "information_schema.table_privileges WHERE table_name = 'staff_pub'")
    assert ("carol", "SELECT") in rows and ("postgres", "DELETE") in rows
