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


HAS_TABLE = ("SELECT pg_catalog.pg_class.relname FROM pg_catalog.pg_class JOIN "
             "pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = "
             "pg_catalog.pg_class.relnamespace WHERE pg_catalog.pg_class.relname = %s "
             "AND pg_catalog.pg_table_is_visible(pg_catalog.pg_class.oid)")


def test_catalog_answers_follow_the_catalog_and_the_session(pg_server: Server) -> None:
    """Catalog queries are kept per catalog version and session state: a repeated one gives
    the same rows, and DDL and the search path show through at once."""
    import uuid

    name = f"cat_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        assert c.execute(HAS_TABLE, (name,)).fetchall() == []
        assert c.execute(HAS_TABLE, (name,)).fetchall() == []
        c.execute(f"CREATE SCHEMA {name}_ws")
        c.execute(f"CREATE TABLE {name}_ws.{name} (id INT)")
        assert c.execute(HAS_TABLE, (name,)).fetchall() == []  # not on the search path
        c.execute(f"SET search_path = {name}_ws, public")
        assert c.execute(HAS_TABLE, (name,)).fetchall() == [(name,)]
        c.execute("SET search_path = public")
        assert c.execute(HAS_TABLE, (name,)).fetchall() == []
        c.execute(f"CREATE TABLE {name} (id INT)")
        assert c.execute(HAS_TABLE, (name,)).fetchall() == [(name,)]
        cols = ("SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
                "ORDER BY attnum")
        assert c.execute(cols, (name,)).fetchall() == [("id",)]
        c.execute(f"ALTER TABLE {name} ADD COLUMN note TEXT")
        assert c.execute(cols, (name,)).fetchall() == [("id",), ("note",)]
        for fast in ("off", "on"):  # the general path gives the same answers
            c.execute(f"SET tarndb.fast_paths = {fast}")
            assert c.execute(cols, (name,)).fetchall() == [("id",), ("note",)]
        c.execute(f"DROP TABLE {name}")
        assert c.execute(HAS_TABLE, (name,)).fetchall() == []



def test_key_lookups_follow_writes(pg_server: Server) -> None:
    """``WHERE key = $1`` finds the key in the kept key column (engine/colcache.py): inserts,
    updates (rows move to new fragments), deletes and keys out of the type's range."""
    import uuid

    t = f"keys_{uuid.uuid4().hex[:8]}"
    q = f"SELECT id, n, body FROM {t} WHERE id = %s"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, n BIGINT, body TEXT)")
        with c.cursor() as cur:
            cur.executemany(f"INSERT INTO {t} VALUES (%s, %s, %s)",
                            [(i, i * 3, f"row {i}") for i in range(200)])
        assert c.execute(q, (17,)).fetchall() == [(17, 51, "row 17")]
        assert c.execute(f"SELECT n FROM {t} WHERE id = 18").fetchall() == [(54,)]
        assert c.execute(q, (500,)).fetchall() == []
        assert c.execute(q, (-1,)).fetchall() == []
        c.execute(f"UPDATE {t} SET n = -5, body = 'moved' WHERE id = 17")
        assert c.execute(q, (17,)).fetchall() == [(17, -5, "moved")]
        c.execute(f"DELETE FROM {t} WHERE id = 18")
        assert c.execute(q, (18,)).fetchall() == []
        c.execute(f"INSERT INTO {t} VALUES (1018, 1, 'new')")
        assert c.execute(q, (1018,)).fetchall() == [(1018, 1, "new")]
        assert c.execute(f"SELECT id, n FROM {t} WHERE id = %s", (199,)).fetchall() == \
            [(199, 597)]
        # Beyond int4: no row (PostgreSQL compares int4 with int8).
        assert c.execute(f"SELECT id FROM {t} WHERE id = 99999999999").fetchall() == []
        assert c.execute(q, (2**40,)).fetchall() == []


def test_a_deleted_key_can_be_inserted_again(pg_server: Server) -> None:
    """After an UPDATE moved a row, a DELETEd key is free again and its lookup finds the new
    row (a regression of 72d4783, fixed in 02d0b95)."""
    import uuid

    t = f"rekey_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, n INT)")
        with c.cursor() as cur:
            cur.executemany(f"INSERT INTO {t} VALUES (%s, 0)", [(i,) for i in range(3)])
        c.execute(f"UPDATE {t} SET n = 5 WHERE id = 0")
        c.execute(f"DELETE FROM {t} WHERE id = 1")
        c.execute(f"INSERT INTO {t} VALUES (1, 7)")
        assert c.execute(f"SELECT id, n FROM {t} WHERE id = 1").fetchall() == [(1, 7)]


def test_set_reports_parameter_status(pg_server: Server) -> None:
    """A SET of a reported setting sends ParameterStatus (the client's view follows)."""
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute("SET application_name = 'reporter'")
        assert c.info.parameter_status("application_name") == "reporter"
        c.execute("SET DateStyle = 'ISO, DMY'")
        assert c.info.parameter_status("DateStyle") == "ISO, DMY"
        assert c.execute("SELECT 1").fetchone() == (1,)  # nothing else changes
        assert c.info.parameter_status("application_name") == "reporter"


def test_a_statement_text_kept_across_table_changes(pg_server: Server) -> None:
    """The key-lookup fast path keeps what a statement's text decides (its shape) by the
    text: the same text, prepared and run again after the table was dropped and created
    with other columns, or under another search path, reads the table as it is now."""
    import uuid

    t = f"kept_{uuid.uuid4().hex[:8]}"
    q = f"SELECT id, v FROM {t} WHERE id = %s"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, v TEXT)")
        c.execute(f"INSERT INTO {t} VALUES (1, 'one'), (2, 'two')")
        for _ in range(6):  # psycopg prepares the statement from its fifth run
            assert c.execute(q, (1,)).fetchall() == [(1, "one")]
        c.execute(f"DROP TABLE {t}")
        with pytest.raises(psycopg.errors.UndefinedTable):
            c.execute(q, (1,))
        c.execute(f"CREATE TABLE {t} (id BIGINT PRIMARY KEY, v DOUBLE PRECISION)")
        c.execute(f"INSERT INTO {t} VALUES (1, 1.5)")
        for _ in range(3):
            assert c.execute(q, (1,)).fetchall() == [(1, 1.5)]
        c.execute(f"CREATE SCHEMA {t}_ws")
        c.execute(f"CREATE TABLE {t}_ws.{t} (id INT PRIMARY KEY, v TEXT)")
        c.execute(f"INSERT INTO {t}_ws.{t} VALUES (1, 'other')")
        c.execute(f"SET search_path = {t}_ws, public")
        assert c.execute(q, (1,)).fetchall() == [(1, "other")]
        c.execute("SET search_path = public")
        assert c.execute(q, (1,)).fetchall() == [(1, 1.5)]


@pytest.mark.parametrize("sslmode", ["require", "disable"])
def test_large_messages_across_many_reads(pg_server: Server, sslmode: str) -> None:
    """Requests larger than one socket read (the server reads into one buffer per
    connection and copies each read out): a COPY of a few MB with values larger than the
    buffer, and a single statement of ~600 KB, with and without TLS."""
    import uuid

    t = f"big_{uuid.uuid4().hex[:8]}"
    big = "x" * 300_000 + "end"
    with psycopg.connect(pg_server.dsn(sslmode=sslmode), autocommit=True) as c:
        c.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, body TEXT)")
        with c.cursor() as cur, cur.copy(f"COPY {t} (id, body) FROM STDIN") as cp:
            for i in range(2000):
                cp.write_row((i, big if i % 500 == 0 else f"row {i} " * 100))
        assert c.execute(f"SELECT count(*), sum(length(body)) FROM {t}").fetchone() == \
            (2000, 4 * len(big) + sum(len(f"row {i} " * 100) for i in range(2000)
                                      if i % 500))
        assert c.execute(f"SELECT body FROM {t} WHERE id = %s", (500,)).fetchone() == (big,)
        literal = "y" * 600_000
        assert c.execute(f"SELECT length('{literal}')").fetchone() == (600_000,)
        assert c.execute("SELECT 1").fetchone() == (1,)  # the stream is still in step


def test_known_catalog_query_sees_its_own_transaction(pg_server: Server) -> None:
    """A catalog query whose text ran before is answered from the kept answers without
    parsing it (engine/lookup.py known_catalog), but not inside a transaction with its own
    DDL: that transaction sees its uncommitted table, and no one else does."""
    import uuid

    name = f"own_{uuid.uuid4().hex[:8]}"
    q = "SELECT relname FROM pg_catalog.pg_class WHERE relname = %s"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as other, \
            psycopg.connect(pg_server.dsn()) as c:
        for _ in range(6):  # known, and prepared by psycopg from the fifth run
            assert c.execute(q, (name,)).fetchall() == []
            assert other.execute(q, (name,)).fetchall() == []
        c.commit()
        c.execute(f"CREATE TABLE {name} (id INT)")
        assert c.execute(q, (name,)).fetchall() == [(name,)]
        assert other.execute(q, (name,)).fetchall() == []
        c.rollback()
        assert c.execute(q, (name,)).fetchall() == []
        c.execute(f"CREATE TABLE {name} (id INT)")
        c.commit()
        assert other.execute(q, (name,)).fetchall() == [(name,)]
        assert c.execute(q, (name,)).fetchall() == [(name,)]


@pytest.mark.parametrize("simple", [False, True])
def test_known_constant_select_keeps_the_statement_rules(pg_server: Server,
                                                         simple: bool) -> None:
    """A constant select whose text ran before is answered without parsing it again
    (engine/lookup.py known_constant): same values, types and tag as the general path, refused
    in a failed transaction, and not taken under ``tarndb.fast_paths = off``."""
    sql = "SELECT 'known' AS k, 7 AS n, NULL AS z"
    with psycopg.connect(pg_server.dsn()) as c:
        cur = psycopg.ClientCursor(c) if simple else c.cursor()
        for fast in ("on", "off", "on"):
            c.execute(f"SET tarndb.fast_paths = {fast}")
            for _ in range(6):
                cur.execute(sql)
                assert cur.fetchall() == [("known", 7, None)]
                assert [d.type_code for d in cur.description] == [25, 23, 25]
                assert cur.statusmessage == "SELECT 1"
        with pytest.raises(psycopg.errors.DivisionByZero):
            cur.execute("SELECT 1 / 0")
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            cur.execute(sql)
        c.rollback()
        cur.execute(sql)
        assert cur.fetchall() == [("known", 7, None)]
