"""GRANT and REVOKE for roles that log in with a password, checked as PostgreSQL checks them:
schema USAGE (from the next login), table SELECT/INSERT/UPDATE/DELETE/TRUNCATE (at once),
owners only for DDL, and only superusers own and grant."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from _security_support import Stack

BOB = "bob-pw-8910"


@pytest.fixture
def bob(stack: Stack) -> Iterator[Stack]:
    stack.admin_sql(f"CREATE ROLE bob LOGIN PASSWORD '{BOB}'")
    try:
        yield stack
    finally:
        stack.admin_sql("REVOKE ALL ON SCHEMA ws1 FROM bob")
        stack.admin_sql("REVOKE ALL ON ALL TABLES IN SCHEMA ws1 FROM bob")
        stack.admin_sql("DELETE FROM ws1.t WHERE id >= 100")
        stack.admin_sql("DROP TABLE IF EXISTS public.pt")
        stack.admin_sql("DROP ROLE bob")


def _bob(stack: Stack) -> psycopg.Connection[object]:
    return stack.pg(user="bob", password=BOB)


def test_a_new_role_reaches_nothing(bob: Stack) -> None:
    with _bob(bob) as c:
        for sql in ("SELECT * FROM ws1.t", "SELECT * FROM ws2.t",
                    "INSERT INTO ws1.t VALUES (100, 'x', NULL)", "SELECT count(*) FROM ws1._files",
                    "CREATE TABLE ws1.mine (x INT)", "CREATE TABLE mine (x INT)",
                    "CREATE SCHEMA bobs", "DROP TABLE ws1.t"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute(sql)
        assert [r[0] for r in c.execute(
            "SELECT DISTINCT table_schema FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')")] == []
    assert bob.rows("ws1") == [(1, "ws1 row 1"), (2, "ws1 row 2")]
    assert bob.tables("ws1") == ["t"]


def test_grants_open_exactly_what_they_name(bob: Stack) -> None:
    bob.admin_sql("GRANT USAGE ON SCHEMA ws1 TO bob")
    with _bob(bob) as c:  # USAGE from this login on; no table privilege yet
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as e:
            c.execute("SELECT * FROM ws1.t")
        assert e.value.diag.message_primary == "permission denied for table t"
        bob.admin_sql("GRANT SELECT ON ws1.t TO bob")  # table grants apply at once
        assert c.execute("SELECT count(*) FROM ws1.t").fetchone() == (2,)
        assert c.execute("SELECT count(*) FROM ws1._files").fetchone() == (0,)
        for sql in ("INSERT INTO ws1.t VALUES (100, 'x', NULL)", "UPDATE ws1.t SET body = 'x'",
                    "DELETE FROM ws1.t", "TRUNCATE ws1.t", "SELECT * FROM ws2.t",
                    "CREATE INDEX i ON ws1.t USING deeplake_index (body)",
                    "ALTER TABLE ws1.t ADD COLUMN x INT", "GRANT SELECT ON ws1.t TO alice"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute(sql)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            with c.cursor().copy("COPY ws1.t (id, body) FROM STDIN") as cp:
                cp.write_row((101, "copied"))
        bob.admin_sql("GRANT INSERT ON ws1.t TO bob")
        c.execute("INSERT INTO ws1.t VALUES (100, 'inserted by bob', NULL)")
        with c.cursor().copy("COPY ws1.t (id, body) FROM STDIN") as cp:
            cp.write_row((101, "copied by bob"))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # DELETE not granted
            c.execute("DELETE FROM ws1.t WHERE id >= 100")
        # INSERT ... SELECT needs SELECT on the source: revoke it and the copy fails
        bob.admin_sql("REVOKE SELECT ON ws1.t FROM bob")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("INSERT INTO ws1.t SELECT id + 100, body, emb FROM ws1.t")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT count(*) FROM ws1.t")
    assert bob.rows("ws1") == [(1, "ws1 row 1"), (2, "ws1 row 2"),
                               (100, "inserted by bob"), (101, "copied by bob")]
    assert bob.rows("ws2") == [(1, "ws2 row 1"), (2, "ws2 row 2"), (3, "ws2 row 3")]


def test_public_schema_and_grants_to_public(bob: Stack) -> None:
    bob.admin_sql("CREATE TABLE public.pt (x INT)")
    bob.admin_sql("INSERT INTO public.pt VALUES (7)")
    with _bob(bob) as c:  # public: USAGE for PUBLIC by default, but no table privilege
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT x FROM pt")
        bob.admin_sql("GRANT SELECT ON pt TO PUBLIC")
        assert c.execute("SELECT x FROM pt").fetchone() == (7,)
    # a table dropped and made again under its name starts without grants
    bob.admin_sql("DROP TABLE public.pt")
    bob.admin_sql("CREATE TABLE public.pt (x INT)")
    with _bob(bob) as c, pytest.raises(psycopg.errors.InsufficientPrivilege):
        c.execute("SELECT x FROM pt")


def test_grant_on_a_table_created_in_the_same_transaction(bob: Stack) -> None:
    """pg_restore --single-transaction creates a table and grants on it in one transaction:
    the grant holds once committed, and goes with the table when it rolls back."""
    with bob.pg() as c:
        with c.transaction():
            c.execute("CREATE TABLE public.pt (x INT)")
            c.execute("INSERT INTO public.pt VALUES (7)")
            c.execute("GRANT SELECT ON public.pt TO bob")
            c.execute("GRANT SELECT, INSERT ON public.pt TO bob")
            c.execute("REVOKE INSERT ON public.pt FROM bob")
        assert c.execute("SELECT has_table_privilege('bob', 'public.pt', 'SELECT'), "
                         "has_table_privilege('bob', 'public.pt', 'INSERT')").fetchone() == \
            (True, False)
        with pytest.raises(psycopg.errors.UndefinedTable), c.transaction():
            c.execute("CREATE TABLE public.gone (x INT)")
            c.execute("GRANT SELECT ON public.gone TO bob")
            c.execute("SELECT * FROM nope")
    with _bob(bob) as c:
        assert c.execute("SELECT x FROM pt").fetchone() == (7,)
    bob.admin_sql("CREATE TABLE public.gone (x INT)")
    try:
        assert bob.admin_sql("SELECT has_table_privilege('bob', 'public.gone', 'SELECT')") \
            == [(False,)]
    finally:
        bob.admin_sql("DROP TABLE public.gone")


def test_grant_errors(bob: Stack) -> None:
    with bob.pg() as c:
        with pytest.raises(psycopg.errors.UndefinedObject):
            c.execute("GRANT SELECT ON ws1.t TO nobody_here")
        with pytest.raises(psycopg.errors.UndefinedTable):
            c.execute("GRANT SELECT ON ws1.nope TO bob")
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            c.execute("GRANT CREATE ON SCHEMA ws1 TO bob")
        with pytest.raises(psycopg.errors.SyntaxErrorOrAccessRuleViolation):
            c.execute("GRANT USAGE ON ws1.t TO bob")
        # accepted, nothing to keep: sequences, the database
        c.execute("GRANT CONNECT ON DATABASE postgres TO bob")
    with bob.pg_token("write") as c, pytest.raises(psycopg.errors.InsufficientPrivilege):
        c.execute("GRANT SELECT ON t TO bob")


def test_set_role_takes_on_the_roles_privileges(bob: Stack) -> None:
    with bob.pg() as c:
        c.execute("SET ROLE bob")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT count(*) FROM ws1.t")
        c.execute("RESET ROLE")
        assert c.execute("SELECT count(*) FROM ws1.t").fetchone() == (2,)
