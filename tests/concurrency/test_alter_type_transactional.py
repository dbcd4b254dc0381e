"""``ALTER TABLE ... ALTER COLUMN ... TYPE`` is transactional DDL, through psycopg against a
real ``tarndb serve``: ROLLBACK undoes it (types and values as before), other sessions see
the old type until COMMIT, writers of the table wait for the altering transaction (as for
PostgreSQL's ACCESS EXCLUSIVE lock) and their rows take the new type, a failed conversion
leaves the table as it was, and a second server on the lake sees the change after COMMIT."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import psycopg
import pytest

from .conftest import Serve


def _types(c: psycopg.Connection, table: str) -> dict[str, str]:
    return dict(c.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = %s", (table,)).fetchall())


def test_alter_type_rollback_and_visibility(servers: Callable[[int], list[Serve]]) -> None:
    srv, second = servers(2)
    with srv.connect() as setup:
        setup.execute("CREATE TABLE items (id INT PRIMARY KEY, qty INT, price REAL, "
                      "note VARCHAR(5))")
        setup.execute("INSERT INTO items VALUES (1, 10, 2.5, 'a'), (2, 20, 3.5, 'bb')")
        for i in range(3, 40):  # some rows in the write-ahead log, some in Lance
            setup.execute("INSERT INTO items VALUES (%s, %s, 1.25, 'x')", (i, i * 10))
    before = None
    with srv.connect(autocommit=False) as c, srv.connect() as other:
        before = other.execute("SELECT * FROM items ORDER BY id").fetchall()
        c.execute("ALTER TABLE items ALTER COLUMN qty TYPE TEXT")
        c.execute("ALTER TABLE items ALTER COLUMN price TYPE NUMERIC(10,2)")
        assert c.execute("SELECT qty, price FROM items WHERE id = 1").fetchone() == \
            ("10", pytest.approx(2.5))
        assert _types(c, "items")["qty"] == "text"
        # others: the old types and values, never the new ones before COMMIT
        assert other.execute("SELECT qty FROM items WHERE id = 1").fetchone() == (10,)
        assert _types(other, "items")["qty"] == "integer"
        c.rollback()
        assert c.execute("SELECT * FROM items ORDER BY id").fetchall() == before
        c.commit()
    with srv.connect() as c:
        assert _types(c, "items") == {"id": "integer", "qty": "integer", "price": "real",
                                      "note": "character varying"}
        assert c.execute("SELECT * FROM items ORDER BY id").fetchall() == before
        # a savepoint rolled back undoes an ALTER TYPE in it
        with c.transaction():
            c.execute("SAVEPOINT s")
            c.execute("ALTER TABLE items ALTER COLUMN qty TYPE BIGINT")
            c.execute("ROLLBACK TO SAVEPOINT s")
        assert _types(c, "items")["qty"] == "integer"
        # a value that does not convert: 22P02, nothing changes
        c.execute("INSERT INTO items VALUES (100, 1, 1, 'zz')")
        with pytest.raises(psycopg.errors.StringDataRightTruncation):
            c.execute("ALTER TABLE items ALTER COLUMN note TYPE VARCHAR(1)")
        c.execute("DELETE FROM items WHERE id = 100")
    # COMMIT: everyone, on both servers, sees the new type and the converted values
    with srv.connect(autocommit=False) as c:
        c.execute("ALTER TABLE items ALTER COLUMN price TYPE INT")
        c.execute("INSERT INTO items VALUES (50, 500, 7, 'n')")
        assert c.execute("SELECT price FROM items WHERE id IN (1, 2, 50) ORDER BY id"
                         ).fetchall() == [(2,), (4,), (7,)]  # rounded half to even
        c.commit()
    for s in (srv, second):
        with s.connect() as c:
            deadline = time.monotonic() + 10
            while _types(c, "items")["price"] != "integer" and time.monotonic() < deadline:
                time.sleep(0.2)
            assert _types(c, "items")["price"] == "integer"
            assert c.execute("SELECT price FROM items WHERE id IN (1, 2, 3, 50) ORDER BY id"
                             ).fetchall() == [(2,), (4,), (1,), (7,)]
            assert c.execute("SELECT count(*) FROM items").fetchone() == (40,)


def test_writers_wait_for_the_altering_transaction(
        servers: Callable[[int], list[Serve]]) -> None:
    (srv,) = servers(1)
    with srv.connect() as setup:
        setup.execute("CREATE TABLE w (id INT PRIMARY KEY, n INT)")
        setup.execute("INSERT INTO w VALUES (1, 1), (2, 2)")
    done: list[float] = []
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            with srv.connect() as other:
                t0 = time.monotonic()
                other.execute("INSERT INTO w VALUES (3, 3000000)")
                other.execute("UPDATE w SET n = n + 1 WHERE id = 1")
                done.append(time.monotonic() - t0)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    with srv.connect(autocommit=False) as c:
        c.execute("ALTER TABLE w ALTER COLUMN n TYPE BIGINT")
        t = threading.Thread(target=writer)
        t.start()
        time.sleep(1.5)
        assert not done and not errors, "a writer went ahead of ALTER COLUMN TYPE"
        with srv.connect() as reader:  # readers do not wait: they see the old table
            assert reader.execute("SELECT n FROM w WHERE id = 1").fetchone() == (1,)
        c.execute("UPDATE w SET n = n * 10000000000 WHERE id = 2")  # fits bigint only
        c.commit()
        t.join(30)
    assert not errors, errors
    assert done and done[0] >= 1.0
    with srv.connect() as c:
        assert c.execute("SELECT * FROM w ORDER BY id").fetchall() == \
            [(1, 2), (2, 20000000000), (3, 3000000)]
        assert _types(c, "w")["n"] == "bigint"
    # lock_timeout bounds the wait, with PostgreSQL's 55P03
    with srv.connect(autocommit=False) as c, srv.connect() as other:
        c.execute("ALTER TABLE w ALTER COLUMN n TYPE NUMERIC")
        other.execute("SET lock_timeout = '300ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            other.execute("INSERT INTO w VALUES (9, 9)")
        c.rollback()
        other.execute("INSERT INTO w VALUES (9, 9)")
    with srv.connect() as c:
        assert _types(c, "w")["n"] == "bigint"
        assert c.execute("SELECT count(*) FROM w").fetchone() == (4,)


def test_key_column_type_change(servers: Callable[[int], list[Serve]]) -> None:
    (srv,) = servers(1)
    with srv.connect() as c:
        c.execute("CREATE TABLE k (id INT PRIMARY KEY, n INT)")
        for i in range(10):
            c.execute("INSERT INTO k VALUES (%s, %s)", (i, i))
        c.execute("ALTER TABLE k ALTER COLUMN id TYPE BIGINT")
        c.execute("INSERT INTO k VALUES (30000000000, 1)")
        with pytest.raises(psycopg.errors.UniqueViolation):
            c.execute("INSERT INTO k VALUES (3, 0)")
        c.execute("ALTER TABLE k ALTER COLUMN id TYPE TEXT")
        # the key index holds the keys as text now: lookups, updates and uniqueness
        assert c.execute("SELECT n FROM k WHERE id = '5'").fetchone() == (5,)
        c.execute("UPDATE k SET n = 99 WHERE id = '7'")
        assert c.execute("SELECT n FROM k WHERE id = '7'").fetchone() == (99,)
        with pytest.raises(psycopg.errors.UniqueViolation):
            c.execute("INSERT INTO k VALUES ('5', 0)")
        c.execute("INSERT INTO k VALUES ('x', 0)")
        assert c.execute("SELECT count(*) FROM k").fetchone() == (12,)
