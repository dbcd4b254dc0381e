"""Describe never runs a statement: the extended protocol's Describe (a prepared statement's,
or the portal's of a statement that is not a plain read) learns the result columns from
DuckDB's binder, so nothing the statement would do happens then: no scan, no nextval(), no
advisory lock. Through psycopg against a real server, with the shapes that a describe by
``SELECT * FROM (<statement>) LIMIT 0`` could not take (FOR UPDATE / SHARE: it fell back to
running the statement's own text) or renamed the columns of (a name given twice), and with
ORDER BY / LIMIT / OFFSET, set operations, CTEs and VALUES; each statement's result when it
runs is checked too."""

from __future__ import annotations

import uuid

import psycopg

from .conftest import Server

INT8, INT4, TEXT = 20, 23, 25


def _setup(c: psycopg.Connection[tuple[object, ...]]) -> tuple[str, str]:
    t = f"d_{uuid.uuid4().hex[:8]}"
    sq = f"{t}_sq"
    c.execute(f"CREATE TABLE {t} (id INT, v TEXT)")
    c.execute(f"INSERT INTO {t} SELECT i, 'v' || i FROM generate_series(1, 50) AS g(i)")
    c.execute(f"CREATE SEQUENCE {sq}")
    return t, sq


def _statements(t: str, sq: str) -> list[tuple[str, list[tuple[str, int]]]]:
    """(a statement calling nextval() on every row it reads, the columns it describes)."""
    n = f"nextval('{sq}')"
    both = [("id", INT4), ("nextval", INT8)]
    return [
        (f"SELECT id, {n} FROM {t}", both),
        (f"SELECT id, {n} FROM {t} WHERE id > $1", both),
        (f"SELECT id, {n} FROM {t} ORDER BY id LIMIT 5", both),
        (f"SELECT id, {n} FROM {t} ORDER BY id LIMIT $1 OFFSET 3", both),
        (f"SELECT id, {n} FROM {t} OFFSET 10", both),
        (f"SELECT id, {n} FROM {t} FETCH FIRST 2 ROWS ONLY", both),
        (f"SELECT id, {n} FROM {t} FOR UPDATE", both),
        (f"SELECT id, {n} FROM {t} WHERE id < $1 ORDER BY id LIMIT 2 FOR UPDATE", both),
        (f"SELECT id, {n} FROM {t} FOR SHARE SKIP LOCKED", both),
        (f"SELECT id, {n} AS x FROM {t} UNION ALL SELECT 0, 0 ORDER BY 1 LIMIT 3",
         [("id", INT4), ("x", INT8)]),
        (f"WITH c AS (SELECT id, {n} AS x FROM {t}) SELECT * FROM c LIMIT 1",
         [("id", INT4), ("x", INT8)]),
        (f"SELECT * FROM (VALUES (1), (2)) AS v(k), LATERAL (SELECT {n} AS x) s LIMIT 1",
         [("k", INT4), ("x", INT8)]),
        # "limit" in a string literal and in a name, where no LIMIT clause is
        (f"SELECT id, {n} AS \"limit\" FROM {t} WHERE v <> 'no limit'",
         [("id", INT4), ("limit", INT8)]),
        (f"SELECT count({n}) FROM {t}", [("count", INT8)]),
    ]


def test_describe_does_not_run_the_statement(pg_server: Server) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        t, sq = _setup(c)
        pg = c.pgconn
        for i, (sql, cols) in enumerate(_statements(t, sq)):
            name = f"d{i}".encode()
            r = pg.prepare(name, sql.encode())
            assert r.status == psycopg.pq.ExecStatus.COMMAND_OK, (sql, r.error_message)
            d = pg.describe_prepared(name)
            assert d.status == psycopg.pq.ExecStatus.COMMAND_OK, (sql, d.error_message)
            assert [(d.fname(j), d.ftype(j)) for j in range(d.nfields)] == [
                (n.encode(), o) for n, o in cols], sql
        # not one row was read: the sequence was never called
        assert c.execute(f"SELECT nextval('{sq}')").fetchone() == (1,)
        # and each runs as it should (values come from the sequence as rows are read)
        r = pg.exec_prepared(b"d2", [])
        assert [r.get_value(j, 0) for j in range(r.ntuples)] == [b"1", b"2", b"3", b"4", b"5"]
        r = pg.exec_prepared(b"d7", [b"10"])
        assert [r.get_value(j, 0) for j in range(r.ntuples)] == [b"1", b"2"]
        r = pg.exec_prepared(b"d9", [])
        assert [r.get_value(j, 0) for j in range(r.ntuples)] == [b"0", b"1", b"2"]
        c.execute("DEALLOCATE ALL")


def test_extended_protocol_runs_a_statement_once(pg_server: Server) -> None:
    """``cursor.execute`` with parameters (Parse, Bind, Describe portal, Execute): the
    statement runs once, by Execute, however Describe learns its columns. (Each statement
    calls nextval() on exactly the rows its WHERE keeps: DuckDB computes a volatile select
    list before ORDER BY ... LIMIT cuts the rows, so those are checked without it.)"""
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        t, sq = _setup(c)
        n = f"nextval('{sq}')"
        for prepare, first in ((False, 1), (True, 3)):
            with c.transaction():
                cur = c.execute(f"SELECT id, {n} FROM {t} WHERE id <= %s FOR UPDATE", (2,),
                                prepare=prepare)
                assert [d.name for d in cur.description or []] == ["id", "nextval"]
                assert sorted(cur.fetchall()) == [(1, first), (2, first + 1)]
        cur = c.execute(f"SELECT id, {n} AS x FROM {t} WHERE id = %s UNION ALL "
                        "SELECT %s, 0 ORDER BY 1", (3, 0))
        assert cur.fetchall() == [(0, 0), (3, 5)]
        cur = c.execute(f"WITH w AS (SELECT id FROM {t} WHERE id < %s) "
                        f"SELECT id, {n} > 0 FROM w ORDER BY id", (4,))
        assert cur.fetchall() == [(1, True), (2, True), (3, True)]
        assert c.execute(f"SELECT nextval('{sq}')").fetchone() == (9,)
        # ORDER BY / LIMIT / OFFSET, FOR UPDATE, VALUES: their rows, plain and prepared
        for prepare in (False, True):
            with c.transaction():
                assert c.execute(
                    f"SELECT id, v FROM {t} WHERE id > %s ORDER BY id DESC LIMIT 2 OFFSET 1 "
                    "FOR UPDATE", (40,), prepare=prepare).fetchall() == [(49, "v49"), (48, "v48")]
            assert c.execute("SELECT * FROM (VALUES (1, 'a'), (2, %s)) AS v(k, w) ORDER BY k "
                             "LIMIT %s", ("b", 5), prepare=prepare).fetchall() == [
                (1, "a"), (2, "b")]


def test_describe_keeps_repeated_names(pg_server: Server) -> None:
    """A name given twice is described as the statement returns it (a wrapping
    ``SELECT *`` made DuckDB rename the second ``a_1``)."""
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        t, _ = _setup(c)
        pg = c.pgconn
        for i, (sql, names) in enumerate((
            ("SELECT 1 AS a, 'x' AS a", [b"a", b"a"]),
            (f"SELECT * FROM {t} x, {t} y WHERE x.id = $1 AND y.id = x.id",
             [b"id", b"v", b"id", b"v"]),
            (f"SELECT x.id, y.id FROM {t} x, {t} y WHERE x.id = $1 AND y.id = x.id",
             [b"id", b"id"]),
        )):
            r = pg.prepare(b"r%d" % i, sql.encode())
            assert r.status == psycopg.pq.ExecStatus.COMMAND_OK, r.error_message
            d = pg.describe_prepared(b"r%d" % i)
            assert [d.fname(j) for j in range(d.nfields)] == names, sql
            got = c.execute(sql.replace("$1", "%s"), (2,) if "$1" in sql else None,
                            prepare=True)
            assert [x.name.encode() for x in got.description or []] == names, sql


def test_describe_takes_no_lock(pg_server: Server) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c, \
            psycopg.connect(pg_server.dsn(), autocommit=True) as other:
        t, _ = _setup(c)
        pg = c.pgconn
        for name, sql in (
            (b"l1", f"SELECT pg_advisory_lock(4242) FROM {t} LIMIT 1"),
            (b"l2", f"SELECT id, pg_advisory_lock(4243) FROM {t} WHERE id = $1 FOR UPDATE"),
        ):
            assert pg.prepare(name, sql.encode()).status == psycopg.pq.ExecStatus.COMMAND_OK
            d = pg.describe_prepared(name)
            assert d.status == psycopg.pq.ExecStatus.COMMAND_OK, d.error_message
            assert d.nfields == (1 if name == b"l1" else 2)
        # nobody holds the locks: another session takes them at once
        for key in (4242, 4243):
            assert other.execute(f"SELECT pg_try_advisory_lock({key})").fetchone() == (True,)
            assert other.execute(f"SELECT pg_advisory_unlock({key})").fetchone() == (True,)
        # run for real, it takes it
        assert pg.exec_prepared(b"l1", []).status == psycopg.pq.ExecStatus.TUPLES_OK
        assert other.execute("SELECT pg_try_advisory_lock(4242)").fetchone() == (False,)
        assert c.execute("SELECT pg_advisory_unlock(4242)").fetchone() == (True,)
        c.execute("DEALLOCATE ALL")
