"""Constraint and input errors carry Postgres SQLSTATEs, and a failed statement changes nothing."""

from __future__ import annotations

import pytest

import tarndb
from tarndb import errors as E


@pytest.fixture
def t(session: tarndb.Session) -> tarndb.Session:
    session.execute("CREATE TABLE t (id INT PRIMARY KEY, name TEXT NOT NULL, n NUMERIC, "
                    "u UUID, j JSONB, m FLOAT4[][], e FLOAT4[])")
    session.execute("INSERT INTO t (id, name) VALUES (1, 'one')")
    return session


@pytest.mark.parametrize("sql, error, sqlstate", [
    ("INSERT INTO t (id, name) VALUES (1, 'again')", E.UniqueViolation, "23505"),
    ("INSERT INTO t (id, name) VALUES (2, 'a'), (2, 'b')", E.UniqueViolation, "23505"),
    ("INSERT INTO t (id, name) VALUES (3, NULL)", E.NotNullViolation, "23502"),
    ("INSERT INTO t (name) VALUES ('no id')", E.NotNullViolation, "23502"),
    ("INSERT INTO t (id, name, n) VALUES (4, 'x', 'abc')", E.InvalidTextRepresentation, "22P02"),
    ("INSERT INTO t (id, name, u) VALUES (4, 'x', 'not-a-uuid')", E.InvalidTextRepresentation,
     "22P02"),
    ("INSERT INTO t (id, name, j) VALUES (4, 'x', '{broken')", E.InvalidTextRepresentation,
     "22P02"),
    ("INSERT INTO t (id, name, m) VALUES (4, 'x', ARRAY[ARRAY[1,2],ARRAY[3]])", E.DataError,
     "22000"),
    ("SELECT * FROM nope", E.UndefinedTable, "42P01"),
    ("SELECT nope FROM t", E.UndefinedColumn, "42703"),
    ("INSERT INTO t (id, nope) VALUES (1, 2)", E.UndefinedColumn, "42703"),
    ("UPDATE t SET nope = 1", E.UndefinedColumn, "42703"),
    ("SELEC * FROM t", E.SyntaxError_, "42601"),
    ("UPDATE t SET id = 5 WHERE id = 1; INSERT INTO t (id, name) VALUES (5, 'x')",
     E.UniqueViolation, "23505"),
    ("SELECT e <#> ARRAY[1,2,3]::float4[] FROM t", None, None),
])
def test_errors_have_sqlstate(t: tarndb.Session, sql: str, error: type | None,
                              sqlstate: str | None) -> None:
    before = t.execute("SELECT * FROM t ORDER BY id").rows
    if error is None:
        t.execute(sql)  # no rows with embeddings: nothing to compare, no error
        return
    with pytest.raises(error) as info:
        t.execute(sql)
    assert info.value.sqlstate == sqlstate
    assert info.value.message
    if "UPDATE t SET id = 5" not in sql:
        assert t.execute("SELECT * FROM t ORDER BY id").rows == before


def test_syntax_error_position(session: tarndb.Session) -> None:
    with pytest.raises(E.SyntaxError_) as info:
        session.execute("SELECT * FROM t WHERE")
    assert info.value.position == len("SELECT * FROM t WHERE") + 1


def test_position_maps_back_over_lifted_literal(session: tarndb.Session) -> None:
    vec = "ARRAY[" + ",".join(["0.5"] * 100) + "]::float4[]"
    sql = f"SELECT {vec} FROM WHERE"
    with pytest.raises(E.SyntaxError_) as info:
        session.execute(sql)
    assert info.value.position == sql.index("WHERE") + 1


def test_duplicate_table_and_messages_name_things(session: tarndb.Session) -> None:
    session.execute("CREATE TABLE x (a INT NOT NULL)")
    with pytest.raises(E.DuplicateTable):
        session.execute("CREATE TABLE x (a INT)")
    with pytest.raises(E.NotNullViolation) as info:
        session.execute("INSERT INTO x VALUES (NULL)")
    assert '"a"' in info.value.message and info.value.column == "a"


def test_dimension_mismatch_is_a_data_error(session: tarndb.Session) -> None:
    session.execute("CREATE TABLE v (e FLOAT4[])")
    session.execute("INSERT INTO v VALUES (ARRAY[1,2,3])")
    with pytest.raises(E.DataError) as info:
        session.execute("SELECT e <#> ARRAY[1,2]::float4[] FROM v")
    assert info.value.sqlstate.startswith("22")


def test_error_shape_for_http() -> None:
    err = E.UniqueViolation("dup", detail="Key (id)=(1) already exists.")
    assert err.to_dict() == {"code": "unique_violation", "sqlstate": "23505",
                             "message": "dup", "detail": "Key (id)=(1) already exists."}
    assert err.http_status == 409


@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM read_blob('/etc/hostname')",
])
def test_sql_cannot_touch_server_files(session: tarndb.Session, sql: str) -> None:
    with pytest.raises(E.InsufficientPrivilege) as info:
        session.execute(sql)
    assert info.value.sqlstate == "42501"


def test_bytea_hex_literal(session: tarndb.Session) -> None:
    assert session.execute("SELECT '\\x00ff'::bytea").scalar() == b"\x00\xff"


def test_unknown_column_error_points_at_the_name(session: tarndb.Session) -> None:
    session.execute("CREATE TABLE pos (a INT)")
    sql = "SELECT a,\n  nope FROM pos"
    with pytest.raises(E.UndefinedColumn) as info:
        session.execute(sql)
    assert info.value.position == sql.index("nope") + 1
