"""INSERT ... ON CONFLICT through psycopg against a real server process."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest

from .conftest import Server

psycopg = pytest.importorskip("psycopg")


def _table(server: Server, ddl: str) -> str:
    name = f"up_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server.dsn(), autocommit=True) as c:
        c.execute(ddl.format(t=name))
    return name


def test_do_nothing_and_do_update_with_returning_and_tags(pg_server: Server) -> None:
    t = _table(pg_server, "CREATE TABLE {t} (k INT PRIMARY KEY, n INT, v TEXT, u TEXT UNIQUE)")
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        cur = c.execute(f"INSERT INTO {t} VALUES (1, 1, 'a', 'u1'), (2, 2, 'b', 'u2')")
        assert cur.statusmessage == "INSERT 0 2"
        cur = c.execute(f"INSERT INTO {t} VALUES (1, 9, 'x', 'u9'), (3, 3, 'c', 'u3') "
                        "ON CONFLICT DO NOTHING RETURNING k, n")
        assert cur.statusmessage == "INSERT 0 1"
        assert cur.fetchall() == [(3, 3)]
        cur = c.execute(f"INSERT INTO {t} VALUES (1, 10, 'y', 'u1'), (4, 4, 'd', 'u4') "
                        "ON CONFLICT (k) DO UPDATE SET n = t2.n + excluded.n, v = EXCLUDED.v "
                        "RETURNING k, n, v".replace("t2", t))
        assert cur.statusmessage == "INSERT 0 2"
        assert cur.fetchall() == [(1, 11, "y"), (4, 4, "d")]
        # Unqualified columns in SET name the target row; WHERE can skip the update.
        cur = c.execute(f"INSERT INTO {t} AS x VALUES (1, 0, 'z', 'u1'), (2, 0, 'z', 'u2') "
                        "ON CONFLICT ON CONSTRAINT " + t + "_pkey DO UPDATE SET n = n + 100 "
                        "WHERE x.n > 5 RETURNING k, n")
        assert cur.statusmessage == "INSERT 0 1"
        assert cur.fetchall() == [(1, 111)]
        # The arbiter can be another unique rule; a parameterised upsert.
        cur = c.execute(f"INSERT INTO {t} VALUES (%s, %s, %s, %s) ON CONFLICT (u) "
                        "DO UPDATE SET v = excluded.v || '!'", (99, 0, "w", "u3"))
        assert cur.statusmessage == "INSERT 0 1"
        rows = c.execute(f"SELECT k, n, v, u FROM {t} ORDER BY k").fetchall()
        assert rows == [(1, 111, "y", "u1"), (2, 2, "b", "u2"), (3, 3, "w!", "u3"),
                        (4, 4, "d", "u4")]
        # A conflict on a rule that is not the arbiter is still 23505.
        with pytest.raises(psycopg.errors.UniqueViolation):
            c.execute(f"INSERT INTO {t} VALUES (5, 5, 'e', 'u1') ON CONFLICT (k) DO NOTHING")


def test_conflict_target_errors(pg_server: Server) -> None:
    t = _table(pg_server, "CREATE TABLE {t} (k INT PRIMARY KEY, n INT)")
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        with pytest.raises(psycopg.errors.InvalidColumnReference) as e:
            c.execute(f"INSERT INTO {t} VALUES (1, 1) ON CONFLICT (n) DO NOTHING")
        assert "no unique or exclusion constraint matching the ON CONFLICT" in str(e.value)
        with pytest.raises(psycopg.errors.SyntaxError):
            c.execute(f"INSERT INTO {t} VALUES (1, 1) ON CONFLICT DO UPDATE SET n = 2")
        with pytest.raises(psycopg.errors.UndefinedObject):
            c.execute(f"INSERT INTO {t} VALUES (1, 1) ON CONFLICT ON CONSTRAINT nope "
                      "DO NOTHING")
        with pytest.raises(psycopg.errors.CardinalityViolation):
            c.execute(f"INSERT INTO {t} VALUES (1, 1), (1, 2) ON CONFLICT (k) "
                      "DO UPDATE SET n = excluded.n")
        # DO NOTHING skips the second row of one statement with the same key.
        cur = c.execute(f"INSERT INTO {t} VALUES (1, 1), (1, 2) ON CONFLICT DO NOTHING")
        assert cur.statusmessage == "INSERT 0 1"
        assert c.execute(f"SELECT k, n FROM {t}").fetchall() == [(1, 1)]


def test_upsert_of_a_row_inserted_in_the_same_transaction(pg_server: Server) -> None:
    t = _table(pg_server, "CREATE TABLE {t} (k TEXT PRIMARY KEY, n INT)")
    with psycopg.connect(pg_server.dsn()) as c:
        c.execute(f"INSERT INTO {t} VALUES ('a', 1)")
        cur = c.execute(f"INSERT INTO {t} VALUES ('a', 5) ON CONFLICT (k) "
                        f"DO UPDATE SET n = {t}.n + excluded.n RETURNING n")
        assert cur.fetchall() == [(6,)]
        c.commit()
        assert c.execute(f"SELECT n FROM {t}").fetchall() == [(6,)]


def test_second_upserter_waits_then_updates_the_committed_row(pg_server: Server) -> None:
    t = _table(pg_server, "CREATE TABLE {t} (k INT PRIMARY KEY, n INT)")
    sql = f"INSERT INTO {t} VALUES (7, 1) ON CONFLICT (k) DO UPDATE SET n = {t}.n + 1"
    a = psycopg.connect(pg_server.dsn())
    b = psycopg.connect(pg_server.dsn())
    try:
        a.execute(sql)  # inserts; the key stays locked until COMMIT
        done: list[Any] = []

        def second() -> None:
            try:
                b.execute(sql)
                b.commit()
                done.append("ok")
            except Exception as e:  # noqa: BLE001 - reported below
                done.append(e)

        th = threading.Thread(target=second)
        th.start()
        time.sleep(0.5)
        assert done == []  # waiting for a's key
        a.commit()
        th.join(30)
        assert done == ["ok"]
        with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
            assert c.execute(f"SELECT k, n FROM {t}").fetchall() == [(7, 2)]
    finally:
        a.close()
        b.close()


def test_concurrent_counter_upserts_are_exact(pg_server: Server) -> None:
    t = _table(pg_server, "CREATE TABLE {t} (k TEXT PRIMARY KEY, n BIGINT NOT NULL)")
    threads, each, keys = 6, 12, ["a", "b", "c"]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
                for j in range(each):
                    c.execute(f"INSERT INTO {t} (k, n) VALUES (%s, 1) "
                              f"ON CONFLICT (k) DO UPDATE SET n = {t}.n + 1",
                              (keys[(i + j) % len(keys)],))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for th in ts:
        th.start()
    for th in ts:
        th.join(120)
    assert errors == []
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        rows = c.execute(f"SELECT k, n FROM {t} ORDER BY k").fetchall()
    expected = {k: 0 for k in keys}
    for i in range(threads):
        for j in range(each):
            expected[keys[(i + j) % len(keys)]] += 1
    assert rows == sorted(expected.items())
    assert sum(n for _, n in rows) == threads * each


def test_prepared_upsert_with_parameters_in_set_and_returning(pg_server: Server) -> None:
    t = _table(pg_server, "CREATE TABLE {t} (id TEXT PRIMARY KEY, doc JSONB, n INT)")
    sql = (f"INSERT INTO {t} (id, doc, n) VALUES (%s, %s, %s) ON CONFLICT (id) "
           f"DO UPDATE SET doc = excluded.doc, n = %s RETURNING id, doc, n")
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        cur = c.execute(sql, ("a", '{"x": 1}', 1, 50), prepare=True)
        assert cur.fetchall() == [("a", {"x": 1}, 1)]
        cur = c.execute(sql, ("a", '{"x": 2}', 1, 50), prepare=True)
        assert cur.fetchall() == [("a", {"x": 2}, 50)]
        cur = c.cursor()
        cur.executemany(f"INSERT INTO {t} (id, doc, n) VALUES (%s, %s, %s) "
                        "ON CONFLICT (id) DO NOTHING", [("a", "{}", 0), ("b", "{}", 0)])
        assert c.execute(f"SELECT id, n FROM {t} ORDER BY id").fetchall() == [("a", 50),
                                                                            ("b", 0)]
