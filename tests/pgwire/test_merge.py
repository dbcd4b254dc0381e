"""MERGE (PostgreSQL 15's syntax, and 17's WHEN NOT MATCHED BY SOURCE and RETURNING) through
psycopg against a real server: every WHEN clause, parameters, the errors PostgreSQL gives
(23505, 21000, 23503, 42501), and concurrent MERGEs that update one row without losing an
update."""

from __future__ import annotations

import threading
import uuid

import pytest

from .conftest import Server

psycopg = pytest.importorskip("psycopg")

_MERGE = """
MERGE INTO {t} AS t
USING (VALUES (1, 'x'), (2, 'del'), (4, 'new'), (5, 'skip')) AS s(id, v) ON t.id = s.id
WHEN MATCHED AND s.v = 'del' THEN DELETE
WHEN MATCHED THEN UPDATE SET v = s.v, n = t.n + 1
WHEN NOT MATCHED AND s.v = 'skip' THEN DO NOTHING
WHEN NOT MATCHED THEN INSERT (id, v) VALUES (s.id, s.v)
"""


def _table(c: psycopg.Connection[tuple[object, ...]]) -> str:
    t = f"m_{uuid.uuid4().hex[:8]}"
    c.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, v TEXT, n INT DEFAULT 5)")
    c.execute(f"INSERT INTO {t} (id, v) VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    return t


def test_merge_clauses_in_order(pg_server: Server) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        t = _table(c)
        cur = c.execute(_MERGE.format(t=t))
        assert cur.statusmessage == "MERGE 3" and cur.rowcount == 3
        assert c.execute(f"SELECT id, v, n FROM {t} ORDER BY id").fetchall() == [
            (1, "x", 6), (3, "c", 5), (4, "new", 5)]
        # Values without a column list fill the first columns; DEFAULT; only-NOT-MATCHED.
        c.execute(f"MERGE INTO {t} t USING (VALUES (8, 'e')) s(id, v) ON t.id = s.id "
                  "WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.v, DEFAULT)")
        # A table as the source, a join condition on an expression, target columns in SET.
        c.execute(f"MERGE INTO {t} t USING {t} s ON t.id = s.id + 1 "
                  "WHEN MATCHED THEN UPDATE SET v = s.v || '<' || t.v")
        assert c.execute(f"SELECT id, v, n FROM {t} ORDER BY id").fetchall() == [
            (1, "x", 6), (3, "c", 5), (4, "c<new", 5), (8, "e", 5)]
        # Nothing matches any clause: MERGE 0.
        cur = c.execute(f"MERGE INTO {t} t USING (SELECT 99 AS id) s ON t.id = s.id "
                        "WHEN MATCHED THEN DELETE")
        assert cur.statusmessage == "MERGE 0"


def test_merge_not_matched_by_source_and_returning(pg_server: Server) -> None:
    """PostgreSQL 17: target rows that no source row matches, and RETURNING with
    merge_action(), the target's new (INSERT, UPDATE) or old (DELETE) contents and the
    source's values, one row per action in the order of the join."""
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        t = f"mr_{uuid.uuid4().hex[:8]}"
        c.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, v TEXT, n SERIAL)")
        c.execute(f"INSERT INTO {t} (id, v) VALUES (1, 'a'), (2, 'b'), (4, 'd'), (5, 'e')")
        cur = c.execute(
            f"MERGE INTO {t} AS t USING (VALUES (2, 'bb'), (3, 'c')) AS s(id, v) "
            "ON t.id = s.id "
            "WHEN MATCHED THEN UPDATE SET v = s.v "
            "WHEN NOT MATCHED BY TARGET THEN INSERT (id, v) VALUES (s.id, s.v) "
            "WHEN NOT MATCHED BY SOURCE AND t.id = 4 THEN DELETE "
            "WHEN NOT MATCHED BY SOURCE THEN UPDATE SET v = t.v || '!' "
            "RETURNING merge_action(), t.*, s.v AS sv")
        assert cur.statusmessage == "MERGE 5" and cur.rowcount == 5
        assert [d.name for d in cur.description] == ["merge_action", "id", "v", "n", "sv"]
        got = sorted(cur.fetchall(), key=lambda r: r[1])
        assert got == [("UPDATE", 1, "a!", 1, None), ("UPDATE", 2, "bb", 2, "bb"),
                       ("INSERT", 3, "c", 5, "c"), ("DELETE", 4, "d", 3, None),
                       ("UPDATE", 5, "e!", 4, None)]
        assert c.execute(f"SELECT id, v FROM {t} ORDER BY id").fetchall() == [
            (1, "a!"), (2, "bb"), (3, "c"), (5, "e!")]
        # only BY SOURCE clauses; RETURNING of the source's columns; nothing affected
        cur = c.execute(f"MERGE INTO {t} t USING (SELECT 3 AS id) s ON t.id = s.id "
                        "WHEN NOT MATCHED BY SOURCE AND t.id > 2 THEN DELETE "
                        "RETURNING s.*, t.id, lower(merge_action())")
        assert cur.fetchall() == [(None, 5, "delete")]
        cur = c.execute(f"MERGE INTO {t} t USING (SELECT 3 AS id, 'x' AS v) s "
                        "ON t.id = s.id WHEN MATCHED AND false THEN DELETE RETURNING t.id")
        assert cur.fetchall() == [] and cur.statusmessage == "MERGE 0"
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            c.execute(f"MERGE INTO {t} t USING (SELECT 9 AS id) s ON t.id = s.id "
                      "WHEN NOT MATCHED THEN INSERT (id) VALUES (s.id) RETURNING *")
        assert c.execute(f"SELECT count(*) FROM {t} WHERE id = 9").fetchone() == (0,)


def test_merge_with_bound_parameters_inside_a_transaction(pg_server: Server) -> None:
    with psycopg.connect(pg_server.dsn()) as c:
        t = _table(c)
        c.commit()
        sql = (f"MERGE INTO {t} t USING (SELECT %s::int AS id, %s::text AS v) s "
               "ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v "
               "WHEN NOT MATCHED THEN INSERT (id, v, n) VALUES (s.id, s.v, %s)")
        c.execute(sql, (2, "two", 0))
        c.execute(sql, (10, "ten", 42))
        assert c.execute(f"SELECT id, v, n FROM {t} WHERE id IN (2, 10) ORDER BY id"
                         ).fetchall() == [(2, "two", 5), (10, "ten", 42)]
        c.rollback()
        assert c.execute(f"SELECT id, v FROM {t} ORDER BY id").fetchall() == [
            (1, "a"), (2, "b"), (3, "c")]


def test_merge_errors_are_postgresqls(pg_server: Server) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        t = _table(c)
        with pytest.raises(psycopg.errors.UniqueViolation):
            c.execute(f"MERGE INTO {t} t USING (VALUES (7, 'a'), (7, 'b')) s(id, v) "
                      "ON t.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.v)")
        with pytest.raises(psycopg.errors.CardinalityViolation,
                           match="cannot affect row a second time"):
            c.execute(f"MERGE INTO {t} t USING (VALUES (3), (3)) s(id) ON t.id = s.id "
                      "WHEN MATCHED THEN UPDATE SET n = 0")
        with pytest.raises(psycopg.errors.UniqueViolation):  # an UPDATE onto a taken key
            c.execute(f"MERGE INTO {t} t USING (SELECT 1 AS id) s ON t.id = s.id "
                      "WHEN MATCHED THEN UPDATE SET id = 2")
        with pytest.raises(psycopg.errors.NotNullViolation):
            c.execute(f"MERGE INTO {t} t USING (SELECT 50 AS id) s ON t.id = s.id "
                      "WHEN NOT MATCHED THEN INSERT DEFAULT VALUES")
        with pytest.raises(psycopg.errors.UndefinedColumn):
            c.execute(f"MERGE INTO {t} t USING (SELECT 1 AS id) s ON t.id = s.id "
                      "WHEN MATCHED THEN UPDATE SET nope = 1")
        # Nothing of the failed statements was written.
        assert c.execute(f"SELECT id, v, n FROM {t} ORDER BY id").fetchall() == [
            (1, "a", 5), (2, "b", 5), (3, "c", 5)]
        parent = f"p_{uuid.uuid4().hex[:8]}"
        child = f"c_{uuid.uuid4().hex[:8]}"
        c.execute(f"CREATE TABLE {parent} (id INT PRIMARY KEY)")
        c.execute(f"CREATE TABLE {child} (id INT PRIMARY KEY, "
                  f"pid INT REFERENCES {parent}(id))")
        c.execute(f"INSERT INTO {parent} VALUES (1)")
        c.execute(f"INSERT INTO {child} VALUES (1, 1)")
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            c.execute(f"MERGE INTO {child} t USING (SELECT 2 AS id, 9 AS pid) s "
                      "ON t.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.pid)")
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            c.execute(f"MERGE INTO {parent} t USING (SELECT 1 AS id) s ON t.id = s.id "
                      "WHEN MATCHED THEN DELETE")
        assert c.execute(f"SELECT count(*) FROM {parent}").fetchone() == (1,)


def test_merge_needs_the_privileges_of_its_actions(pg_server: Server) -> None:
    role = f"merger_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        t = _table(c)
        c.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'merge-pw-1'")
        c.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        c.execute(f"GRANT SELECT, UPDATE ON {t} TO {role}")
    with psycopg.connect(pg_server.dsn(user=role, password="merge-pw-1"),
                         autocommit=True) as r:
        r.execute(f"MERGE INTO {t} t USING (SELECT 1 AS id) s ON t.id = s.id "
                  "WHEN MATCHED THEN UPDATE SET v = 'by role'")
        for action in ("WHEN MATCHED THEN DELETE",
                       "WHEN NOT MATCHED THEN INSERT (id) VALUES (s.id)"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                r.execute(f"MERGE INTO {t} t USING (SELECT 1 AS id) s ON t.id = s.id {action}")
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        assert c.execute(f"SELECT id, v FROM {t} ORDER BY id").fetchall() == [
            (1, "by role"), (2, "b"), (3, "c")]
        c.execute(f"DROP TABLE {t}")
        c.execute(f"REVOKE ALL ON SCHEMA public FROM {role}")
        c.execute(f"DROP ROLE {role}")


def test_concurrent_merges_lose_no_update(pg_server: Server) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        t = f"mc_{uuid.uuid4().hex[:8]}"
        c.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, n INT)")
        c.execute(f"INSERT INTO {t} VALUES (1, 0)")
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with psycopg.connect(pg_server.dsn(), autocommit=True) as w:
                for _ in range(5):
                    w.execute(f"MERGE INTO {t} t USING (SELECT 1 AS id) s ON t.id = s.id "
                              "WHEN MATCHED THEN UPDATE SET n = t.n + 1 "
                              "WHEN NOT MATCHED THEN INSERT VALUES (s.id, 1)")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        assert c.execute(f"SELECT n FROM {t} WHERE id = 1").fetchone() == (20,)
