"""``set_config(name, value, is_local)`` is SET (engine/setconfig.py): ``SHOW`` and
``current_setting()`` see the value afterwards and the client gets a ParameterStatus for a
reported setting; ``is_local`` lasts until the transaction ends (for an autocommit
statement, the statement); and SET itself follows PostgreSQL's transaction rules (undone
by a rollback; SET LOCAL undone either way, the SET before it kept by a commit). Through
psycopg against a real server."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from .conftest import Server


def _show(c: Any, name: str) -> str:
    row = c.execute(f"SHOW {name}").fetchone()
    assert row is not None
    return str(row[0])


def _reported(c: Any) -> bytes | None:
    value: bytes | None = c.pgconn.parameter_status(b"application_name")
    return value


def test_set_config_is_set(pg_server: Server) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        assert c.execute("SELECT set_config('application_name', 'tool-x', false)"
                         ).fetchone() == ("tool-x",)
        assert _show(c, "application_name") == "tool-x"
        assert _reported(c) == b"tool-x"
        assert c.execute("SELECT current_setting('application_name')").fetchone() == ("tool-x",)
        # pg_catalog-qualified, with parameters (the extended protocol), a custom setting
        assert c.execute("SELECT pg_catalog.set_config(%s, %s, %s)",
                         ["app.user_id", "42", False]).fetchone() == ("42",)
        assert _show(c, "app.user_id") == "42"
        # a NULL value resets the setting
        c.execute("SELECT set_config('application_name', NULL, false)")
        assert _show(c, "application_name") == ""
        assert _reported(c) == b""
        with pytest.raises(psycopg.errors.NullValueNotAllowed,
                           match="SET requires parameter name"):
            c.execute("SELECT set_config(NULL, 'x', false)")
        # a value SET refuses is refused here too, and nothing changes
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            c.execute("SELECT set_config('statement_timeout', 'soon', false)")
        assert _show(c, "statement_timeout") == "0"


def test_is_local_lasts_until_the_transaction_ends(pg_server: Server) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute("SET application_name = 'before'")
        with c.transaction():
            assert c.execute("SELECT set_config('application_name', 'local', true)"
                             ).fetchone() == ("local",)
            assert _show(c, "application_name") == "local"
            assert _reported(c) == b"local"
        assert _show(c, "application_name") == "before"
        assert _reported(c) == b"before"
        # outside a transaction block it lasts for its own statement only
        assert c.execute("SELECT set_config('application_name', 'gone', true)"
                         ).fetchone() == ("gone",)
        assert _show(c, "application_name") == "before"
        # rolled back: gone too
        with pytest.raises(psycopg.errors.DivisionByZero), c.transaction():
            c.execute("SELECT set_config('application_name', 'local', true)")
            c.execute("SELECT 1 / 0")
        assert _show(c, "application_name") == "before"


def test_set_follows_the_transaction(pg_server: Server) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute("SET application_name = 'kept'")
        # SET in a transaction that rolls back is undone (set_config(..., false) too)
        c.execute("BEGIN")
        c.execute("SET application_name = 'undone'")
        c.execute("SELECT set_config('app.flag', 'on', false)")
        assert _show(c, "application_name") == "undone"
        c.execute("ROLLBACK")
        assert _show(c, "application_name") == "kept"
        with pytest.raises(psycopg.errors.UndefinedObject):
            c.execute("SHOW app.flag")
        # SET then SET LOCAL in one transaction: the SET LOCAL value until COMMIT, the SET
        # one after
        c.execute("BEGIN")
        c.execute("SET application_name = 'session'")
        c.execute("SET LOCAL application_name = 'local'")
        assert _show(c, "application_name") == "local"
        c.execute("COMMIT")
        assert _show(c, "application_name") == "session"
        assert _reported(c) == b"session"
        # ROLLBACK TO SAVEPOINT undoes what was SET since the savepoint, and only that
        c.execute("BEGIN")
        c.execute("SET application_name = 'first'")
        c.execute("SAVEPOINT sp")
        c.execute("SET application_name = 'second'")
        c.execute("SELECT set_config('app.sp', 'x', false)")
        c.execute("ROLLBACK TO SAVEPOINT sp")
        assert _show(c, "application_name") == "first"
        with pytest.raises(psycopg.errors.UndefinedObject):
            c.execute("SHOW app.sp")
        c.execute("ROLLBACK TO SAVEPOINT sp")
        c.execute("SET LOCAL application_name = 'third'")
        c.execute("COMMIT")
        assert _show(c, "application_name") == "first"
        c.execute("SET application_name = 'session'")
        # SET LOCAL outside a transaction block: a warning, no effect
        cur = c.execute("SET LOCAL application_name = 'nothing'")
        assert cur.statusmessage == "SET"
        assert _show(c, "application_name") == "session"


def test_describing_sets_nothing(pg_server: Server) -> None:
    """Parse and Describe of a statement calling set_config() do not run it."""
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute("SET application_name = 'unchanged'")
        assert c.pgconn.prepare(b"sc1", b"SELECT set_config('application_name', 'ran', false)"
                                ).status == psycopg.pq.ExecStatus.COMMAND_OK
        d = c.pgconn.describe_prepared(b"sc1")
        assert d.nfields == 1 and d.fname(0) == b"set_config"
        assert _show(c, "application_name") == "unchanged"
        r = c.pgconn.exec_prepared(b"sc1", [])
        assert r.status == psycopg.pq.ExecStatus.TUPLES_OK and r.get_value(0, 0) == b"ran"
        assert _show(c, "application_name") == "ran"
        c.execute("DEALLOCATE sc1")
