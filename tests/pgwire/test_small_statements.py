"""Small statements through psycopg over TLS, on their fast paths (issue 18): constant
selects answered without DuckDB give what the general path gives (values, type OIDs, names,
command tags), over both the extended and the simple protocol."""

from __future__ import annotations

import pytest

from .conftest import Server

psycopg = pytest.importorskip("psycopg")


@pytest.mark.parametrize("sql, names, oids, row", [
    ("SELECT 1", ["?column?"], [23], (1,)),
    ("select 1;", ["?column?"], [23], (1,)),
    ("SELECT -7 AS n", ["n"], [23], (-7,)),
    ("SELECT 2147483648", ["?column?"], [20], (2147483648,)),
    ("SELECT 'it''s', true, NULL", ["?column?", "?column?", "?column?"], [25, 16, 25],
     ("it's", True, None)),
    # Not constant literals the fast path knows: the general path answers.
    ("SELECT 1.5", ["?column?"], [1700], (__import__("decimal").Decimal("1.5"),)),
    ("SELECT 1::int8 AS big", ["big"], [20], (1,)),
    ("SELECT 1 + 1", ["?column?"], [23], (2,)),
])
@pytest.mark.parametrize("simple", [False, True])
def test_constant_selects(pg_server: Server, sql: str, names: list[str], oids: list[int],
                          row: tuple[object, ...], simple: bool) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        # A ClientCursor sends the statement through the simple protocol; a plain cursor
        # through the extended one (Parse, Bind, Describe, Execute).
        cur = psycopg.ClientCursor(c) if simple else c.cursor()
        cur.execute(sql)
        assert [d.name for d in cur.description] == names
        assert [d.type_code for d in cur.description] == oids
        assert cur.fetchall() == [row]
        assert cur.statusmessage == "SELECT 1"


def test_constant_select_in_a_failed_transaction_is_refused(pg_server: Server) -> None:
    with psycopg.connect(pg_server.dsn()) as c:
        with pytest.raises(psycopg.errors.DivisionByZero):
            c.execute("SELECT 1 / 0")
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            c.execute("SELECT 1")
        c.rollback()
        assert c.execute("SELECT 1").fetchone() == (1,)
