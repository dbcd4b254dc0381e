"""INSERT ... VALUES rows whose values already have their columns' stored types go straight
into Arrow in those types (engine/dml.py ``_typed_column``), skipping type inference and the
cast to storage. These tests pin down that nothing else changes: the values read back
exactly, from psycopg 3 (parameters, one row and ``executemany``) and psycopg2 (literals
inlined in the text), and values that do not fit their column still fail with PostgreSQL's
SQLSTATE and wording."""

from __future__ import annotations

import json

import psycopg
import psycopg2
import pytest

from .conftest import Server

DDL = (
    "CREATE TABLE {name} (id INT8 PRIMARY KEY, s INT2, i INT4, t TEXT, c VARCHAR(3), "
    "j JSONB, v FLOAT4[], d FLOAT8[])"
)
INSERT = "INSERT INTO {name} (id, s, i, t, c, j, v, d) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"


def _rows(base: int) -> list[tuple[object, ...]]:
    return [
        (
            base,
            -32768,
            2147483647,
            "plain",
            "abc",
            json.dumps({"k": [1, 2]}),
            [0.5, -1.25],
            [0.1, 1e300],
        ),
        (base + 1, 32767, -2147483648, "", "", "null", [], []),
        (base + 2, None, None, None, None, None, None, None),
        (base + 3, 0, 7, "ünï", "ab ", '"x"', [3.0], [2.0**-1074]),
    ]


def _read(cur: object, name: str) -> list[tuple[object, ...]]:
    cur.execute(f"SELECT id, s, i, t, c, j, v, d FROM {name} ORDER BY id")  # type: ignore[attr-defined]
    return list(cur.fetchall())  # type: ignore[attr-defined]


def _expected(rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return [
        (r[0], r[1], r[2], r[3], r[4], None if r[5] is None else json.loads(str(r[5])), r[6], r[7])
        for r in rows
    ]


def test_values_round_trip_through_psycopg_and_psycopg2(pg_server: Server) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute(DDL.format(name="tv1"))
        one, many = _rows(0), _rows(10)
        for r in one:
            c.execute(INSERT.format(name="tv1"), r)
        with c.cursor() as cur:
            cur.executemany(INSERT.format(name="tv1"), many)
    p2 = psycopg2.connect(pg_server.dsn())
    p2.autocommit = True
    try:
        inlined = _rows(20)
        with p2.cursor() as cur:
            cur.executemany(INSERT.format(name="tv1"), inlined)
            got = _read(cur, "tv1")
    finally:
        p2.close()
    assert got == _expected(one + many + inlined)


@pytest.mark.parametrize(
    ("column", "value", "sqlstate", "message"),
    [
        ("s", 32768, "22003", "smallint out of range"),
        ("s", -32769, "22003", "smallint out of range"),
        ("i", 2147483648, "22003", "integer out of range"),
        ("c", "abcd", "22001", "value too long for type character varying(3)"),
    ],
)
def test_values_that_do_not_fit_fail_as_in_postgres(
    pg_server: Server, column: str, value: object, sqlstate: str, message: str
) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute(
            "CREATE TABLE IF NOT EXISTS tv2 (id INT8 PRIMARY KEY, s INT2, i INT4, c VARCHAR(3))"
        )
        with pytest.raises(psycopg.Error) as e:
            c.execute(f"INSERT INTO tv2 (id, {column}) VALUES (%s, %s)", (1, value))
        assert (e.value.sqlstate, e.value.diag.message_primary) == (sqlstate, message)
        # psycopg2 inlines the value as a literal: the same error.
        p2 = psycopg2.connect(pg_server.dsn())
        p2.autocommit = True
        try:
            with pytest.raises(psycopg2.Error) as e2, p2.cursor() as cur:
                cur.execute(f"INSERT INTO tv2 (id, {column}) VALUES (%s, %s)", (1, value))
            assert (e2.value.pgcode, e2.value.diag.message_primary) == (sqlstate, message)
        finally:
            p2.close()
        assert c.execute("SELECT count(*) FROM tv2").fetchone() == (0,)


def test_not_null_and_bad_json_are_still_refused(pg_server: Server) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute("CREATE TABLE tv3 (id INT8 PRIMARY KEY, t TEXT NOT NULL, j JSONB)")
        with pytest.raises(psycopg.errors.NotNullViolation) as e:
            c.execute("INSERT INTO tv3 (id, t, j) VALUES (%s, %s, %s)", (1, None, "{}"))
        assert (
            e.value.diag.message_primary
            == 'null value in column "t" of relation "tv3" violates not-null constraint'
        )
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            c.execute("INSERT INTO tv3 (id, t, j) VALUES (%s, %s, %s)", (2, "x", "{nope"))
        c.execute("INSERT INTO tv3 (id, t, j) VALUES (%s, %s, %s)", (3, "x", '{"a": 1}'))
        assert c.execute("SELECT id, t, j FROM tv3").fetchall() == [(3, "x", {"a": 1})]
