"""A scoped token stays in its workspaces whichever way a session names another one:
startup options and parameters, the database name, ``user@workspace``, ``SET search_path``,
qualified names, ``_files`` and ``deep_memory()``. Refusals are 42501 and the other
workspace keeps its rows and tables."""

from __future__ import annotations

import psycopg
import pytest
from _security_support import ALICE_PASSWORD, Stack, token_login

WS2_ROWS = [(1, "ws2 row 1"), (2, "ws2 row 2"), (3, "ws2 row 3")]


def _ws2_unchanged(stack: Stack) -> None:
    assert stack.rows("ws2") == WS2_ROWS
    assert stack.tables("ws2") == ["t"]


@pytest.mark.parametrize("login", [
    {"options": "-c search_path=ws2"},
    {"options": "-csearch_path=ws2,ws1"},
    {"options": "--search_path=ws2"},
    {"dbname": "ws2"},
    {"user": "tokenuser@ws2"},
    {"options": "-c role=postgres"},
    {"options": "-c session_authorization=postgres"},
])
@pytest.mark.parametrize("token", ["write", "read"])
def test_scoped_token_login_cannot_name_another_workspace(
        stack: Stack, token: str, login: dict[str, str]) -> None:
    params = dict(login)
    user = params.pop("user", "tokenuser")
    if "dbname" in params:
        params["database"] = params.pop("dbname")
    err = token_login(stack, stack.tokens[token], user=user, **params)
    assert (err.get("S"), err.get("C")) == ("FATAL", "42501"), err
    # and libpq clients see the refusal too
    with pytest.raises(psycopg.OperationalError, match="permission denied"):
        stack.pg_token(token, **login).close()
    _ws2_unchanged(stack)


def test_unknown_workspace_is_refused_before_it_is_looked_up(stack: Stack) -> None:
    # The same answer for a workspace that does not exist: nothing is revealed.
    assert token_login(stack, stack.tokens["read"], database="no_such_ws")["C"] == "42501"
    assert token_login(stack, stack.tokens["read"], database="ws2")["C"] == "42501"
    assert token_login(stack, stack.tokens["admin"], database="no_such_ws")["C"] == "3D000"


@pytest.mark.parametrize("login", [{}, {"dbname": "ws1"}, {"user": "someone@ws1"},
                                   {"options": "-c search_path=ws1"}])
def test_own_workspace_is_the_default(stack: Stack, login: dict[str, str]) -> None:
    with stack.pg_token("write", **login) as c:
        assert c.execute("SELECT id, body FROM t ORDER BY id").fetchall() == \
            [(1, "ws1 row 1"), (2, "ws1 row 2")]
        assert c.execute("SELECT current_schema()").fetchone() == ("ws1",)


def test_database_and_user_name_select_a_roles_workspace(stack: Stack) -> None:
    with stack.pg(user="alice", password=ALICE_PASSWORD, dbname="ws1") as c:
        assert c.execute("SELECT count(*) FROM t").fetchone() == (2,)
    with stack.pg(user="alice@ws1", password=ALICE_PASSWORD) as c:
        assert c.execute("SELECT current_user").fetchone() == ("alice",)
        assert c.execute("SELECT count(*) FROM t").fetchone() == (2,)
    # alice has no USAGE on ws2: she cannot connect to it, by either spelling
    for login in ({"dbname": "ws2"}, {"user": "alice@ws2"}, {"options": "-c search_path=ws2"}):
        params = {"user": "alice", "password": ALICE_PASSWORD, **login}
        with pytest.raises(psycopg.OperationalError, match="permission denied"):
            stack.pg(**params).close()
    with stack.pg(dbname="ws2") as c:  # the superuser connects anywhere
        assert c.execute("SELECT count(*) FROM t").fetchone() == (3,)


def test_scoped_session_cannot_reach_ws2_by_sql(stack: Stack) -> None:
    with stack.pg_token("write") as c:
        for sql in ("SET search_path = ws2", 'SELECT * FROM "ws2"."t"',
                    'SELECT count(*) FROM "ws2"."_files"', "CREATE TABLE ws2.planted (x INT)",
                    "INSERT INTO ws2.t VALUES (9, 'planted', NULL)",
                    "SELECT deep_memory('ws2.t', 'emb', ARRAY[1, 1]::float4[])",
                    # functions and statements that take table names
                    "SELECT count(*) FROM tarndb_versions('ws2.t')",
                    "SELECT tarndb_tag('ws2.t', 'mine')", "SELECT tarndb_cleanup('ws2.t')",
                    'SELECT * FROM "ws2"."t@1"', "EXPLAIN SELECT * FROM ws2.t",
                    "CREATE INDEX planted ON ws2.t USING deeplake_index (body)",
                    "ALTER TABLE ws2.t ADD COLUMN planted INT", "TRUNCATE ws2.t",
                    "DROP TABLE ws2.t", "CREATE VIEW peek AS SELECT * FROM ws2.t",
                    "CREATE TABLE stolen AS SELECT * FROM ws2.t"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute(sql)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            with c.cursor().copy('COPY "ws2"."t" TO STDOUT') as cp:
                for _ in cp:
                    pass
        # regclass answers as for a table that does not exist: nothing is revealed
        with pytest.raises(psycopg.Error) as e:
            c.execute("SELECT 'ws2.t'::regclass")
        with pytest.raises(psycopg.Error) as e2:
            c.execute("SELECT 'ws2.nope'::regclass")
        assert (e.value.sqlstate, str(e.value).replace("ws2.t", "X")) == \
            (e2.value.sqlstate, str(e2.value).replace("ws2.nope", "X"))
        # set_config() is SET (engine/setconfig.py): refused as SET is, and unqualified
        # names never fall through to ws2
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT set_config('search_path', 'ws2', false)")
        assert c.execute("SELECT count(*) FROM t").fetchone() == (2,)
    _ws2_unchanged(stack)


@pytest.mark.parametrize("sql", [
    'SELECT * FROM "ws2"."t"',
    'SELECT count(*) FROM "ws2"."_files"',
    "SELECT deep_memory('ws2.t', 'emb', ARRAY[1, 1]::float4[])",
    "SET search_path = ws2",
    "CREATE TABLE ws2.planted (x INT)",
])
def test_scoped_token_over_http_stays_in_its_workspace(stack: Stack, sql: str) -> None:
    r = stack.http_sql("write", sql)
    assert r.status_code == 403, r.text
    assert r.json()["error"]["sqlstate"] == "42501"
    r = requests_ws2(stack)
    assert r.status_code == 403
    _ws2_unchanged(stack)


def requests_ws2(stack: Stack):  # type: ignore[no-untyped-def]
    import requests

    return requests.get(f"{stack.http_url}/workspaces/ws2/files/{stack.ws2_file}/content",
                        headers=stack.headers("write"), timeout=30)


def test_deep_memory_in_own_workspace_is_not_a_privilege_error(stack: Stack) -> None:
    # No model was trained: 42704 (not found), proving the call got past the check.
    r = stack.http_sql("write", "SELECT deep_memory('t', 'emb', ARRAY[1, 1]::float4[])")
    assert r.status_code == 404 and r.json()["error"]["sqlstate"] == "42704", r.text
