"""What a role holds, as PostgreSQL reports and drops it. DROP ROLE and DROP OWNED BY: a
role that still holds privileges cannot be dropped (2BP01, the privileges listed), or a role
made later under its name would inherit them; DROP OWNED BY takes them away, and only a
superuser or the role itself may run it. Every refusal is checked to have changed nothing.
The privilege functions tools call (has_schema_privilege, has_table_privilege with a
regclass) answer from the grants."""

from __future__ import annotations

import psycopg
import pytest
from _security_support import Stack

EVE, MALLORY = "eve-pw-5521", "mallory-pw-7710"


def _grants(stack: Stack, role: str) -> list[tuple[object, ...]]:
    return stack.admin_sql(
        "SELECT has_table_privilege('" + role + "', 'ws1.t', 'SELECT'), "
        "has_column_privilege('" + role + "', 'ws1.t', 'body', 'UPDATE')")


def test_a_role_holding_privileges_is_not_dropped_until_they_go(stack: Stack) -> None:
    stack.admin_sql(f"CREATE ROLE eve LOGIN PASSWORD '{EVE}'")
    stack.admin_sql(f"CREATE ROLE mallory LOGIN PASSWORD '{MALLORY}'")
    try:
        stack.admin_sql("GRANT USAGE ON SCHEMA ws1 TO eve")
        stack.admin_sql("GRANT SELECT ON ws1.t TO eve")
        stack.admin_sql("GRANT UPDATE (body) ON ws1.t TO eve")
        before = _grants(stack, "eve")
        assert before == [(True, True)]

        with pytest.raises(psycopg.errors.DependentObjectsStillExist) as e:
            stack.admin_sql("DROP ROLE eve")
        assert e.value.diag.message_primary == \
            'role "eve" cannot be dropped because some objects depend on it'
        assert e.value.diag.message_detail is not None
        assert set(e.value.diag.message_detail.splitlines()) == {
            "privileges for schema ws1", "privileges for table ws1.t",
            "privileges for column body of table ws1.t"}
        assert "eve" in [r[0] for r in stack.roles()]
        assert _grants(stack, "eve") == before
        with stack.pg(user="eve", password=EVE) as c:  # nothing changed: eve still reads
            assert c.execute("SELECT count(*) FROM ws1.t").fetchone() == (2,)

        # Another role may not strip eve's privileges.
        with stack.pg(user="mallory", password=MALLORY) as c:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute("DROP OWNED BY eve")
        assert _grants(stack, "eve") == before

        # eve may drop what is hers; then the role goes, and a new eve starts with nothing.
        with stack.pg(user="eve", password=EVE) as c:
            c.execute("DROP OWNED BY eve")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute("SELECT count(*) FROM ws1.t")
        assert _grants(stack, "eve") == [(False, False)]
        stack.admin_sql("DROP ROLE eve")  # the schema's USAGE went too, or this would list it
        stack.admin_sql(f"CREATE ROLE eve LOGIN PASSWORD '{EVE}'")
        assert _grants(stack, "eve") == [(False, False)]
        with pytest.raises(psycopg.errors.UndefinedObject):
            stack.admin_sql("DROP OWNED BY nobody")
    finally:
        stack.admin_sql("DROP OWNED BY eve")
        stack.admin_sql("DROP ROLE IF EXISTS eve")
        stack.admin_sql("DROP ROLE IF EXISTS mallory")


def test_grants_on_a_dropped_table_do_not_hold_a_role(stack: Stack) -> None:
    stack.admin_sql(f"CREATE ROLE eve LOGIN PASSWORD '{EVE}'")
    stack.admin_sql("CREATE TABLE ws1.gone (x INT)")
    stack.admin_sql("GRANT SELECT ON ws1.gone TO eve")
    stack.admin_sql("DROP TABLE ws1.gone")
    stack.admin_sql("DROP ROLE eve")
    assert "eve" not in [r[0] for r in stack.roles()]


def test_has_schema_privilege_follows_the_grants(stack: Stack) -> None:
    """``has_schema_privilege`` answers from the schema grants (it answered true for every
    role and schema): for the role asking, and for a role named by the superuser."""
    stack.admin_sql(f"CREATE ROLE eve LOGIN PASSWORD '{EVE}'")
    try:
        def ask(sql: str) -> list[tuple[object, ...]]:
            with stack.pg(user="eve", password=EVE) as c:
                return c.execute(sql).fetchall()

        mine = ("SELECT has_schema_privilege('ws1', 'USAGE'), "
                "has_schema_privilege('public', 'USAGE'), "
                "has_schema_privilege('pg_catalog', 'USAGE'), "
                "has_schema_privilege('ws1', 'CREATE')")
        assert ask(mine) == [(False, True, True, False)]
        named = "SELECT has_schema_privilege('eve', 'ws1', 'USAGE'), " \
                "has_schema_privilege('eve', 'ws2', 'usage'), " \
                "has_schema_privilege('postgres', 'ws2', 'CREATE')"
        assert stack.admin_sql(named) == [(False, False, True)]
        stack.admin_sql("GRANT USAGE ON SCHEMA ws1 TO eve")
        assert ask(mine) == [(True, True, True, False)]
        assert stack.admin_sql(named) == [(True, False, True)]
        assert stack.admin_sql(
            "SELECT has_schema_privilege('eve', n.oid, 'USAGE') FROM pg_namespace n "
            "WHERE nspname = 'ws1'") == [(True,)]
        with pytest.raises(psycopg.Error):
            stack.admin_sql("SELECT has_schema_privilege('eve', 'nope', 'USAGE')")
    finally:
        stack.admin_sql("DROP OWNED BY eve")
        stack.admin_sql("DROP ROLE IF EXISTS eve")


def test_privilege_functions_take_a_regclass_argument(stack: Stack) -> None:
    """``has_table_privilege`` / ``has_column_privilege`` with ``'t'::regclass``, as tools
    write them, answer right and at once (DuckDB copied the regclass CASE into every WHEN of
    the oid lookup: 9-37 s)."""
    import time

    stack.admin_sql(f"CREATE ROLE eve LOGIN PASSWORD '{EVE}'")
    try:
        stack.admin_sql("GRANT SELECT (body) ON ws1.t TO eve")
        t0 = time.monotonic()
        got = stack.admin_sql(
            "SELECT has_table_privilege('eve', 'ws1.t'::regclass, 'SELECT'), "
            "has_column_privilege('eve', 'ws1.t'::regclass, 'body', 'SELECT'), "
            "has_column_privilege('eve', 'ws1.t'::regclass, 'id', 'SELECT'), "
            "has_any_column_privilege('eve', 'ws1.t'::regclass, 'SELECT')")
        assert got == [(False, True, False, True)]
        assert time.monotonic() - t0 < 5
    finally:
        stack.admin_sql("DROP OWNED BY eve")
        stack.admin_sql("DROP ROLE IF EXISTS eve")
