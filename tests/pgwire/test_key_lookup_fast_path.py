"""Primary-key lookups on their fast path (engine/lookup.py, issue 18) give what the general
path gives (``SET tarndb.fast_paths = off``), through psycopg over TLS: rows, column names and
type OIDs, command tags, SQLSTATEs. Cases: present, missing and out-of-range keys, NULL and
mistyped parameters, aliases and LIMIT, updated and deleted rows, rows only in the
write-ahead log, the session's own uncommitted writes, a REPEATABLE READ snapshot, another
server's commits on the same lake, GRANTs, and keys the fast path does not take (composite,
text)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

import tarndb
from tarndb.engine import colcache
from tarndb.pgwire.server import ServerThread

from .conftest import PASSWORD, Server


def _name() -> str:
    return f"kl_{uuid.uuid4().hex[:8]}"


def _answer(c: psycopg.Connection[Any], sql: str, args: Any) -> Any:
    """What a statement gives: (names, type OIDs, rows, command tag), or its SQLSTATE."""
    try:
        cur = c.execute(sql, args)
        return ([d.name for d in cur.description or []],
                [d.type_code for d in cur.description or []], cur.fetchall(),
                cur.statusmessage)
    except psycopg.Error as e:
        if not c.autocommit:
            c.rollback()
        return ("error", e.sqlstate, str(e))


class Pair:
    """Two connections to one server: fast paths on, and off (the general path)."""

    def __init__(self, dsn: str, autocommit: bool = True) -> None:
        self.fast = psycopg.connect(dsn, autocommit=autocommit)
        self.off = psycopg.connect(dsn, autocommit=True)
        self.off.execute("SET tarndb.fast_paths = off")
        self.off.autocommit = autocommit

    def same(self, sql: str, args: Any = None) -> Any:
        got = _answer(self.fast, sql, args)
        slow = _answer(self.off, sql, args)
        assert got == slow, (sql, args, got, slow)
        return got

    def commit(self) -> None:
        self.fast.commit()
        self.off.commit()

    def isolation(self, level: psycopg.IsolationLevel) -> None:
        for c in (self.fast, self.off):
            c.isolation_level = level

    def close(self) -> None:
        self.fast.close()
        self.off.close()


@pytest.fixture
def pair(pg_server: Server) -> Iterator[Pair]:
    p = Pair(pg_server.dsn())
    yield p
    p.close()


def _docs(c: psycopg.Connection[Any], rows: int = 400, key: str = "INT") -> str:
    t = _name()
    c.execute(f"CREATE TABLE {t} (id {key} PRIMARY KEY, cat INT, body TEXT, emb float4[])")
    c.execute(f"INSERT INTO {t} SELECT i, i % 10, CASE WHEN i % 50 = 49 THEN NULL ELSE "
              f"'body ' || i END, ARRAY[i::float4, 0.5, -1] FROM range(0, {rows}) r(i)")
    return t


def _rows(got: Any) -> Any:
    return got[2]


def test_lookups_match_the_general_path(pair: Pair) -> None:
    t = _docs(pair.fast)
    q = f"SELECT id, cat, body FROM {t} WHERE id = %s"
    assert _rows(pair.same(q, [17])) == [(17, 7, "body 17")]
    assert _rows(pair.same(q, [49])) == [(49, 9, None)]  # a NULL text value
    for key in (0, 399, 400, -1, 2**31 - 1, -(2**31), 2**40, -(2**40)):
        pair.same(q, [key])
    assert pair.same(q, [400])[3] == "SELECT 0"
    star = pair.same(f"SELECT * FROM {t} WHERE id = %s", [12])
    assert star[0] == ["id", "cat", "body", "emb"]
    assert star[2] == [(12, 2, "body 12", [12.0, 0.5, -1.0])]
    # Shapes: alias, constant on the left, a literal, LIMIT, a column twice, a renamed one.
    pair.same(f"SELECT d.body, d.id AS k FROM {t} d WHERE d.id = %s", [5])
    pair.same(f"SELECT body FROM {t} WHERE %s = id", [6])
    pair.same(f"SELECT body, id FROM {t} WHERE id = 8")
    pair.same(f"SELECT body FROM {t} WHERE id = %s LIMIT 1", [9])
    assert _rows(pair.same(f"SELECT body FROM {t} WHERE id = %s LIMIT 0", [9])) == []
    pair.same(f"SELECT id, id, body AS b, cat FROM {t} WHERE id = %s", [10])
    pair.same(f"SELECT cat FROM {t} WHERE cat = %s", [4])  # not the key: the general path
    pair.same(f"SELECT * FROM {t} WHERE id = %s LIMIT -1", [4])


def test_parameters_of_other_types(pair: Pair) -> None:
    t = _docs(pair.fast, rows=50)
    q = f"SELECT id, body FROM {t} WHERE id = %s"
    assert _rows(pair.same(q, [None])) == []
    assert _rows(pair.same(q, ["12"])) == [(12, "body 12")]  # unknown-typed text: cast
    for bad in ("abc", "1.5", "--5", "", " 7"):
        pair.same(q, [bad])
    pair.same(q, [1.5])
    pair.same(q, [7.0])
    pair.same(q, [True])
    pair.same(f"SELECT id FROM {t} WHERE id = 'x'")
    pair.same(f"SELECT nope FROM {t} WHERE id = %s", [1])  # an unknown column: 42703
    pair.same(f"SELECT id FROM {t} WHERE nope = %s", [1])
    pair.same(f"SELECT id FROM {_name()} WHERE id = %s", [1])  # an unknown table: 42P01


def test_updates_deletes_and_rows_in_the_log(pair: Pair) -> None:
    t = _docs(pair.fast, rows=200, key="BIGINT")
    q = f"SELECT * FROM {t} WHERE id = %s"
    pair.fast.execute(f"SELECT count(*) FROM {t}")
    for i in range(6):  # small writes: the write-ahead log holds them until a fold
        pair.fast.execute(f"UPDATE {t} SET body = %s, cat = cat + 100 WHERE id = %s",
                          [f"new {i}", i])
    pair.fast.execute(f"DELETE FROM {t} WHERE id IN (10, 11)")
    pair.fast.execute(f"INSERT INTO {t} VALUES (1000, 1, 'late', NULL)")
    pair.fast.execute(f"DELETE FROM {t} WHERE id = 12")
    pair.fast.execute(f"INSERT INTO {t} VALUES (12, 5, 'reused key', '{{1,2}}')")
    for key in (0, 3, 5, 6, 10, 11, 12, 13, 1000, 1001):
        pair.same(q, [key])
    assert _rows(pair.same(q, [3]))[0][2] == "new 3"
    assert _rows(pair.same(q, [10])) == []
    assert _rows(pair.same(q, [12])) == [(12, 5, "reused key", [1.0, 2.0])]
    # A bulk UPDATE (a Lance commit): rows move to a new fragment.
    pair.fast.execute(f"UPDATE {t} SET body = 'bulk ' || id WHERE cat = 7")
    # (rows after the moved ones now sit at other live positions of their fragment)
    pair.fast.execute(f"SELECT count(*) FROM {t}")
    for key in (7, 17, 27, 3, 12, 8, 28, 150, 199, 1000):
        pair.same(q, [key])
    assert _rows(pair.same(q, [150])) == [(150, 0, "body 150", [150.0, 0.5, -1.0])]
    assert _rows(pair.same(q, [17]))[0][2] == "bulk 17"


def test_own_uncommitted_writes_and_snapshots(pg_server: Server) -> None:
    p = Pair(pg_server.dsn(), autocommit=False)
    writer = psycopg.connect(pg_server.dsn(), autocommit=True)
    try:
        t = _docs(writer, rows=100)
        q = f"SELECT id, cat, body FROM {t} WHERE id = %s"
        # Inside a transaction, a connection sees its own uncommitted writes (one
        # connection at a time: the second would wait for the first's row locks).
        seen = []
        for c in (p.fast, p.off):
            c.execute(f"UPDATE {t} SET body = 'mine' WHERE id = 1")
            c.execute(f"DELETE FROM {t} WHERE id = 2")
            c.execute(f"INSERT INTO {t} VALUES (500, 0, 'mine too', NULL)")
            seen.append([_answer(c, q, [k]) for k in (1, 2, 500, 6)])
            assert _rows(_answer(writer, q, [1])) == [(1, 1, "body 1")]
            c.rollback()
        assert seen[0] == seen[1]
        assert [_rows(a) for a in seen[0]] == [[(1, 1, "mine")], [], [(500, 0, "mine too")],
                                               [(6, 6, "body 6")]]
        assert _rows(p.same(q, [1])) == [(1, 1, "body 1")]
        p.commit()
        # REPEATABLE READ: the first read pins the snapshot; a later commit is not seen.
        p.isolation(psycopg.IsolationLevel.REPEATABLE_READ)
        assert _rows(p.same(q, [3])) == [(3, 3, "body 3")]
        writer.execute(f"UPDATE {t} SET body = 'later' WHERE id = 3")
        writer.execute(f"DELETE FROM {t} WHERE id = 4")
        assert _rows(p.same(q, [3])) == [(3, 3, "body 3")]
        assert _rows(p.same(q, [4])) == [(4, 4, "body 4")]
        p.commit()
        assert _rows(p.same(q, [3])) == [(3, 3, "later")]
        assert _rows(p.same(q, [4])) == []
        p.commit()
        # READ COMMITTED inside a transaction: each statement sees the newest commit.
        p.isolation(psycopg.IsolationLevel.READ_COMMITTED)
        assert _rows(p.same(q, [5])) == [(5, 5, "body 5")]
        writer.execute(f"UPDATE {t} SET body = 'seen' WHERE id = 5")
        assert _rows(p.same(q, [5])) == [(5, 5, "seen")]
        p.commit()
    finally:
        writer.close()
        p.close()


def test_grants_are_checked(pg_server: Server) -> None:
    role = f"reader_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        t, hidden = _docs(c, rows=20), _docs(c, rows=20)
        c.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'reader-pw-1'")
        c.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        c.execute(f"GRANT SELECT ON {t} TO {role}")
    p = Pair(pg_server.dsn(user=role, password="reader-pw-1"))
    try:
        assert _rows(p.same(f"SELECT body FROM {t} WHERE id = %s", [4])) == [("body 4",)]
        assert p.same(f"SELECT body FROM {hidden} WHERE id = %s", [4])[:2] == ("error", "42501")
    finally:
        p.close()


def test_keys_the_fast_path_does_not_take(pair: Pair) -> None:
    comp, text = _name(), _name()
    pair.fast.execute(f"CREATE TABLE {comp} (a INT, b INT, v TEXT, PRIMARY KEY (a, b))")
    pair.fast.execute(f"INSERT INTO {comp} SELECT i % 5, i, 'v' || i FROM range(0, 40) r(i)")
    assert len(_rows(pair.same(f"SELECT * FROM {comp} WHERE a = %s", [2]))) == 8
    pair.same(f"SELECT v FROM {comp} WHERE b = %s", [7])
    pair.fast.execute(f"CREATE TABLE {text} (k TEXT PRIMARY KEY, n INT)")
    pair.fast.execute(f"INSERT INTO {text} VALUES ('a', 1), ('b''c', 2), ('', 3)")
    for k in ("a", "b'c", "", "zz", None):
        pair.same(f"SELECT n, k FROM {text} WHERE k = %s", [k])
    pair.same(f"SELECT n FROM {text} WHERE k = 5")


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[tuple[Server, Server, tarndb.Database]]:
    """Two servers (processes' worth of state: own databases and caches) on one lake."""
    lake = str(tmp_path / "lake")
    dbs = [tarndb.open(lake), tarndb.open(lake)]
    srvs = [ServerThread(db, port=0, password=PASSWORD, data_dir=tmp_path / f"s{i}").start()
            for i, db in enumerate(dbs)]
    yield (Server("127.0.0.1", srvs[0].port, PASSWORD, tmp_path),
           Server("127.0.0.1", srvs[1].port, PASSWORD, tmp_path), dbs[0])
    for s in srvs:
        s.stop()
    for db in dbs:
        db.close()


def test_another_servers_commits_are_seen(two_servers: tuple[Server, Server, Any]) -> None:
    one, two, db = two_servers
    p = Pair(one.dsn())
    try:
        with psycopg.connect(two.dsn(), autocommit=True) as other:
            t = _docs(other, rows=300)
            q = f"SELECT id, cat, body FROM {t} WHERE id = %s"
            assert _rows(p.same(q, [7])) == [(7, 7, "body 7")]
            # Proof that the fast path answered: the lookup keeps the text column per
            # fragment (the general path never fills colcache).
            assert any(f"/{t}-" in k[0] and k[3] == "body"
                       for k in colcache._fragments), "the fast path did not answer"
            other.execute(f"UPDATE {t} SET body = 'theirs' WHERE id = 7")
            other.execute(f"DELETE FROM {t} WHERE id = 8")
            other.execute(f"INSERT INTO {t} VALUES (900, 9, 'new there', NULL)")
            assert _rows(p.same(q, [7])) == [(7, 7, "theirs")]
            assert _rows(p.same(q, [8])) == []
            assert _rows(p.same(q, [900])) == [(900, 9, "new there")]
            other.execute(f"UPDATE {t} SET body = 'bulk' WHERE cat = 1")
            assert _rows(p.same(q, [11])) == [(11, 1, "bulk")]
            other.execute(f"DROP TABLE {t}")
            time.sleep(0.3)  # servers read each other's catalog changes every 0.25 s
            assert p.same(q, [7])[:2] == ("error", "42P01")
    finally:
        p.close()


def test_ddl_and_search_path_are_seen(pg_server: Server) -> None:
    """What a statement binds to (the table, its columns) is kept per catalog version and
    name resolution: DDL, another schema on the search path and a transaction's own
    uncommitted DDL change the answer at once."""
    p = Pair(pg_server.dsn())
    try:
        t, schema = _docs(p.fast, rows=30), _name()
        star, q = f"SELECT * FROM {t} WHERE id = %s", f"SELECT body FROM {t} WHERE id = %s"
        assert p.same(star, [4])[0] == ["id", "cat", "body", "emb"]
        p.fast.execute(f"ALTER TABLE {t} ADD COLUMN extra INT")
        p.fast.execute(f"UPDATE {t} SET extra = id * 2 WHERE id = 4")
        got = p.same(star, [4])
        assert got[0] == ["id", "cat", "body", "emb", "extra"] and got[2][0][4] == 8
        p.fast.execute(f"ALTER TABLE {t} RENAME COLUMN body TO b2")
        assert p.same(q, [4])[:2] == ("error", "42703")
        assert _rows(p.same(f"SELECT b2 FROM {t} WHERE id = %s", [4])) == [("body 4",)]
        p.fast.execute(f"ALTER TABLE {t} RENAME COLUMN b2 TO body")
        # The same name in another schema, first on the search path.
        p.fast.execute(f"CREATE SCHEMA {schema}")
        p.fast.execute(f"CREATE TABLE {schema}.{t} (id INT PRIMARY KEY, body TEXT)")
        p.fast.execute(f"INSERT INTO {schema}.{t} VALUES (4, 'other schema')")
        for _ in range(3):
            assert _rows(p.same(q, [4])) == [("body 4",)]
        for c in (p.fast, p.off):
            c.execute(f"SET search_path = {schema}, public")
        assert _rows(p.same(q, [4])) == [("other schema",)]
        for c in (p.fast, p.off):
            c.execute("SET search_path = public")
        assert _rows(p.same(q, [4])) == [("body 4",)]
        # A table found through the second schema of the path, then not on it any more.
        only = f"SELECT body FROM {schema}_only WHERE id = %s"
        p.fast.execute(f"CREATE TABLE {schema}.{schema}_only (id INT PRIMARY KEY, body TEXT)")
        p.fast.execute(f"INSERT INTO {schema}.{schema}_only VALUES (1, 'found')")
        for c in (p.fast, p.off):
            c.execute(f"SET search_path = public, {schema}")
        for _ in range(3):
            assert _rows(p.same(only, [1])) == [("found",)]
        for c in (p.fast, p.off):
            c.execute("SET search_path = public")
        assert p.same(only, [1])[:2] == ("error", "42P01")
        # A transaction's own uncommitted DDL (one connection at a time: it locks the table).
        seen = []
        for c in (p.fast, p.off):
            c.execute("BEGIN")
            c.execute(f"ALTER TABLE {t} DROP COLUMN cat")
            seen.append(_answer(c, star, [4]))
            c.execute("ROLLBACK")
        assert seen[0] == seen[1] and seen[0][0] == ["id", "body", "emb", "extra"]
        assert p.same(star, [4])[0] == ["id", "cat", "body", "emb", "extra"]
    finally:
        p.close()
