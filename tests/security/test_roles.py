"""A token must not become a superuser: role and privilege statements over both protocols.

Each attack is refused with PostgreSQL's SQLSTATE (42501) and leaves the roles as they were.
"""

from __future__ import annotations

import psycopg
import pytest
from _security_support import ALICE_PASSWORD, PASSWORD, Stack

ATTACKS = [
    "CREATE ROLE mallory LOGIN SUPERUSER PASSWORD 'mallory-pw'",
    "CREATE USER mallory PASSWORD 'mallory-pw'",
    "ALTER ROLE postgres PASSWORD 'taken-over'",
    "ALTER ROLE alice SUPERUSER",
    "ALTER ROLE alice CREATEROLE",
    "DROP ROLE alice",
    "GRANT ALL ON ALL TABLES IN SCHEMA ws2 TO PUBLIC",
    "REVOKE ALL ON ws1.t FROM PUBLIC",
    "SET ROLE postgres",
    "SET SESSION AUTHORIZATION postgres",
]


def _nothing_changed(stack: Stack, roles_before: list[tuple[object, ...]]) -> None:
    assert stack.roles() == roles_before
    with stack.pg() as c:  # the owner's password still works
        assert c.execute("SELECT current_user").fetchone() == ("postgres",)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        stack.pg(user="mallory", password="mallory-pw").close()


@pytest.mark.parametrize("token", ["write", "read"])
@pytest.mark.parametrize("sql", ATTACKS)
def test_token_over_http_cannot_manage_roles(stack: Stack, token: str, sql: str) -> None:
    before = stack.roles()
    r = stack.http_sql(token, sql)
    assert r.status_code == 403, r.text
    assert r.json()["error"]["sqlstate"] == "42501"
    _nothing_changed(stack, before)


@pytest.mark.parametrize("sql", ATTACKS)
def test_write_token_over_pgwire_cannot_manage_roles(stack: Stack, sql: str) -> None:
    before = stack.roles()
    with stack.pg_token("write") as c:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute(sql)
        # the session is still itself, limited as before
        assert c.execute("SELECT current_user").fetchone()[0].startswith("pg_token_")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute('SELECT * FROM "ws2"."t"')
    _nothing_changed(stack, before)


@pytest.mark.parametrize("sql", ATTACKS)
def test_role_without_createrole_cannot_manage_roles(stack: Stack, sql: str) -> None:
    before = stack.roles()
    with stack.pg(user="alice", password=ALICE_PASSWORD) as c:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute(sql)
        assert c.execute("SELECT current_user").fetchone() == ("alice",)
    _nothing_changed(stack, before)


def test_refusals_use_postgres_wording(stack: Stack) -> None:
    with stack.pg_token("write") as c:
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as e:
            c.execute("CREATE ROLE mallory SUPERUSER")
        assert e.value.diag.message_primary == "permission denied to create role"
        assert e.value.diag.message_detail == \
            "Only roles with the CREATEROLE attribute may create roles."
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as e:
            c.execute("SET ROLE postgres")
        assert e.value.diag.message_primary == 'permission denied to set role "postgres"'


def test_http_sessions_are_not_the_superuser(stack: Stack) -> None:
    for token in ("write", "read"):
        r = stack.http_sql(token, "SELECT current_user")
        assert r.status_code == 200, r.text
        user = r.json()["rows"][0][0]
        assert user.startswith("pg_token_") and user != "postgres"
    r = stack.http_sql("admin", "SELECT current_user")
    assert r.json()["rows"] == [["postgres"]]


def test_createrole_role_manages_ordinary_roles_only(stack: Stack) -> None:
    stack.admin_sql("CREATE ROLE manager LOGIN CREATEROLE PASSWORD 'mgr-pw'")
    try:
        with stack.pg(user="manager", password="mgr-pw") as c:
            c.execute("CREATE ROLE helper LOGIN PASSWORD 'helper-pw'")
            c.execute("ALTER ROLE helper PASSWORD 'helper-pw2'")
            with pytest.raises(psycopg.errors.InsufficientPrivilege) as e:
                c.execute("CREATE ROLE boss SUPERUSER")
            assert e.value.diag.message_detail == ("Only roles with the SUPERUSER attribute "
                                                   "may create roles with the SUPERUSER "
                                                   "attribute.")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute(f"ALTER ROLE postgres PASSWORD '{PASSWORD}x'")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute("ALTER ROLE helper SUPERUSER")
            with pytest.raises(psycopg.errors.ReservedName):
                c.execute("CREATE ROLE pg_token_0123456789abcdef")
            c.execute("DROP ROLE helper")
        assert [r[0] for r in stack.roles()] == ["alice", "manager", "postgres"]
    finally:
        stack.admin_sql("DROP ROLE IF EXISTS helper")
        stack.admin_sql("DROP ROLE manager")


def test_superuser_still_manages_roles(stack: Stack) -> None:
    with stack.pg() as c:
        c.execute("CREATE ROLE temp_su SUPERUSER LOGIN PASSWORD 'temp-pw'")
        c.execute("GRANT ALL ON ALL TABLES IN SCHEMA ws1 TO temp_su")
        c.execute("SET ROLE alice")
        assert c.execute("SELECT current_user").fetchone() == ("alice",)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("CREATE ROLE nope")
        c.execute("RESET ROLE")
        assert c.execute("SELECT current_user").fetchone() == ("postgres",)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("ALTER ROLE postgres NOSUPERUSER")
        with pytest.raises(psycopg.errors.DependentObjectsStillExist):
            c.execute("DROP ROLE temp_su")  # it holds privileges, as PostgreSQL refuses
        c.execute("DROP OWNED BY temp_su")
        c.execute("DROP ROLE temp_su")
    assert [r[0] for r in stack.roles()] == ["alice", "postgres"]


def test_role_lists_hide_other_roles(stack: Stack) -> None:
    with stack.pg_token("read") as c:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT rolname, rolsuper FROM pg_authid")
    with stack.pg_token("read") as c:
        rows = c.execute("SELECT rolname, rolsuper FROM pg_roles").fetchall()
        assert len(rows) == 1 and rows[0][0].startswith("pg_token_") and rows[0][1] is False
        assert c.execute("SELECT count(*) FROM pg_user WHERE usename = 'postgres'"
                         ).fetchone() == (0,)
    with stack.pg(user="alice", password=ALICE_PASSWORD) as c:
        assert c.execute("SELECT rolname, rolsuper FROM pg_roles").fetchall() == \
            [("alice", False)]
    r = stack.http_sql("write", "SELECT rolname FROM pg_authid")
    assert r.status_code == 403 and r.json()["error"]["sqlstate"] == "42501"
    assert [r[0] for r in stack.admin_sql("SELECT rolname FROM pg_authid ORDER BY 1")] == \
        ["alice", "postgres"]
