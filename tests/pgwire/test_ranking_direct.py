"""Ranking queries on the direct path (issue 18), through psycopg over TLS.

``SELECT cols[, score] FROM t [WHERE simple filter] ORDER BY col <#> q LIMIT k`` is answered
from the search and one take of the selected columns, without DuckDB. Each case here is
checked against the same query on the general path: a second sort key (``, id``) keeps the
planner's top-k search but sends the statement through DuckDB.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from .conftest import Server

psycopg = pytest.importorskip("psycopg")

N, DIM = 300, 16
WORDS = ["alpha", "beta", "gamma", "delta", "omega", "kappa", "sigma", "theta"]


@pytest.fixture(scope="module")
def table(pg_server: Server) -> Iterator[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(11)
    x = rng.standard_normal((N, DIM)).astype(np.float32)
    t = f"rank_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute(f"CREATE TABLE {t} (id BIGINT PRIMARY KEY, cat INT, body TEXT, "
                  "meta JSONB, emb FLOAT4[])")
        with c.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {t} (id, cat, body, meta, emb) VALUES (%s, %s, %s, %s, %s)",
                [(i, i % 7, " ".join(WORDS[(i * j) % len(WORDS)] for j in range(1, 4 + i % 3)),
                  f'{{"k": {i % 5}}}', x[i].tolist()) for i in range(N)])
        c.execute(f"CREATE INDEX {t}_emb ON {t} USING deeplake_index (emb DESC)")
        c.execute(f"CREATE INDEX {t}_body ON {t} USING deeplake_index (body) "
                  "WITH (index_type = 'bm25')")
    yield t, x


def _both(c: Any, direct: str, general: str, params: tuple[Any, ...]
          ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], Any, Any]:
    cur1 = c.execute(direct, params)
    rows1, desc1 = cur1.fetchall(), [(d.name, d.type_code) for d in cur1.description]
    cur2 = c.execute(general, params)
    rows2, desc2 = cur2.fetchall(), [(d.name, d.type_code) for d in cur2.description]
    return rows1, rows2, desc1, desc2


def _same(rows1: list[tuple[Any, ...]], rows2: list[tuple[Any, ...]]) -> None:
    assert len(rows1) == len(rows2)
    for a, b in zip(rows1, rows2, strict=True):
        assert len(a) == len(b)
        for u, v in zip(a, b, strict=True):
            if isinstance(u, float):
                assert u == pytest.approx(v, rel=1e-5, abs=1e-6)
            else:
                assert u == v


@pytest.mark.parametrize("select, where, tail", [
    ("id, emb <#> %s AS s", "", "ORDER BY s DESC LIMIT 10"),
    ("id, emb <#> %s", "", "ORDER BY 2 DESC LIMIT 10"),
    ("*", "WHERE cat = 3 ", "ORDER BY emb <#> %s LIMIT 5 OFFSET 2"),
    ("body, id AS key", "WHERE cat BETWEEN 1 AND 4 AND id <> 7 ", "ORDER BY emb <#> %s LIMIT 8"),
    ("id", "WHERE cat IN (1, 2) OR body IS NULL ", "ORDER BY emb <#> %s DESC LIMIT 4"),
])
def test_vector_rankings_match_the_general_path(pg_server: Server, table: Any, select: str,
                                                where: str, tail: str) -> None:
    t, x = table
    q = (x[5] + 0.05).tolist()
    direct = f"SELECT {select} FROM {t} {where}{tail}"
    general = direct.replace("LIMIT", ", id LIMIT", 1)
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        rows1, rows2, d1, d2 = _both(c, direct, general, (q,) * direct.count("%s"))
    assert d1 == d2
    assert rows1  # something came back
    _same(rows1, rows2)


def test_vector_top_rows_are_the_exact_nearest(pg_server: Server, table: Any) -> None:
    t, x = table
    q = x[42] + 0.01
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        rows = c.execute(f"SELECT id, emb <#> %s AS s FROM {t} ORDER BY s LIMIT 5",
                         (q.tolist(),)).fetchall()
    cos = (x @ q) / (np.linalg.norm(x, axis=1) * np.linalg.norm(q))
    assert [r[0] for r in rows] == np.argsort(-cos)[:5].tolist()
    assert [r[1] for r in rows] == pytest.approx(np.sort(cos)[::-1][:5].tolist(), rel=1e-5)


def test_ascending_ranking_still_notices(pg_server: Server, table: Any) -> None:
    t, x = table
    notices: list[str] = []
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        rows = c.execute(f"SELECT id FROM {t} ORDER BY emb <#> %s ASC LIMIT 3",
                         (x[9].tolist(),)).fetchall()
    assert rows[0] == (9,)
    assert any("ASC was treated as DESC" in n for n in notices)


@pytest.mark.parametrize("where", ["", "WHERE cat < 3 "])
def test_bm25_rankings_match_the_general_path(pg_server: Server, table: Any,
                                              where: str) -> None:
    t, _ = table
    direct = f"SELECT id, body <#> %s AS s FROM {t} {where}ORDER BY s DESC LIMIT 12"
    general = direct.replace("LIMIT", ", id LIMIT")
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        rows1, rows2, d1, d2 = _both(c, direct, general, ("gamma omega",))
    assert d1 == d2 and len(rows1) == 12
    # Ties (equal texts score equally) may come in any order: compare scores, then rows.
    assert [r[1] for r in rows1] == pytest.approx([r[1] for r in rows2], rel=1e-5)
    top1 = {r[0] for r in rows1 if r[1] > rows1[-1][1]}
    top2 = {r[0] for r in rows2 if r[1] > rows2[-1][1]}
    assert top1 == top2


def test_a_filter_the_direct_path_does_not_take_still_answers(pg_server: Server,
                                                              table: Any) -> None:
    t, x = table
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        rows = c.execute(f"SELECT id FROM {t} WHERE meta->>'k' = '2' "
                         "ORDER BY emb <#> %s LIMIT 5", (x[12].tolist(),)).fetchall()
    assert rows[0] == (12,) and len(rows) == 5
    assert all(i % 5 == 2 for (i,) in rows)


def test_repeatable_read_keeps_its_snapshot(pg_server: Server, table: Any) -> None:
    t, x = table
    qv = x[3] + 0.3 * x[4]
    q = qv.tolist()
    best = int(np.argmax((x @ qv) / np.linalg.norm(x, axis=1)))
    sql = f"SELECT id FROM {t} ORDER BY emb <#> %s LIMIT 1"
    with psycopg.connect(pg_server.dsn()) as a, \
            psycopg.connect(pg_server.dsn(), autocommit=True) as b:
        a.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        assert a.execute(sql, (q,)).fetchall() == [(best,)]
        b.execute(f"INSERT INTO {t} (id, cat, body, emb) VALUES (9001, 0, 'x', %s)", (q,))
        assert a.execute(sql, (q,)).fetchall() == [(best,)]  # the snapshot, not the new row
        a.rollback()
        assert a.execute(sql, (q,)).fetchall() == [(9001,)]
        a.rollback()
        # Inside a transaction that wrote to the table, its own row is ranked too.
        a.execute(f"DELETE FROM {t} WHERE id = 9001")
        a.execute(f"INSERT INTO {t} (id, cat, body, emb) VALUES (9002, 0, 'y', %s)", (q,))
        assert a.execute(sql, (q,)).fetchall() == [(9002,)]
        a.rollback()
        b.execute(f"DELETE FROM {t} WHERE id = 9001")


def test_which_shapes_take_the_direct_path(session: Any) -> None:
    """The shapes above that should skip DuckDB do (the comparisons above hold either way)."""
    from tarndb.engine.planner import try_direct
    from tarndb.sql import ast

    session.execute("CREATE TABLE d (id BIGINT PRIMARY KEY, cat INT, body TEXT, meta JSONB, "
                    "emb FLOAT4[])")
    session.execute("INSERT INTO d VALUES (1, 1, 'a b', '{}', ARRAY[1,0]), "
                    "(2, 2, 'b c', '{}', ARRAY[0,1])")
    q = [1.0, 0.2]

    def direct(sql: str, params: list[Any]) -> bool:
        stmt = ast.parse(sql).stmts[0].stmt
        return try_direct(session, stmt, params) is not None

    assert direct("SELECT id, emb <#> $1 AS s FROM d ORDER BY s DESC LIMIT 10", [q])
    assert direct("SELECT * FROM d WHERE cat = 1 ORDER BY emb <#> $1 LIMIT 1", [q])
    assert direct("SELECT id FROM d ORDER BY body <#> 'b' LIMIT 2", [])
    assert not direct("SELECT id FROM d ORDER BY emb <#> $1, id LIMIT 1", [q])
    assert not direct("SELECT id FROM d WHERE meta->>'k' = 'x' ORDER BY emb <#> $1 LIMIT 1",
                      [q])
    assert not direct("SELECT id, cat + 1 FROM d ORDER BY emb <#> $1 LIMIT 1", [q])
    assert not direct("SELECT id FROM d ORDER BY emb <#> $1", [q])  # no LIMIT: every row
    session.execute("BEGIN")
    session.execute("INSERT INTO d VALUES (3, 3, 'c', '{}', ARRAY[1,1])")
    assert not direct("SELECT id FROM d ORDER BY emb <#> $1 LIMIT 1", [q])  # own changes
    session.execute("ROLLBACK")


def test_kept_columns_follow_updates_and_deletes(pg_server: Server) -> None:
    """Ids and numbers of the ranked rows come from memory (engine/colcache.py): after an
    UPDATE (rows move to new fragments) and a DELETE (a deletion file) they are current."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((60, 8)).astype(np.float32)
    t = f"kept_{uuid.uuid4().hex[:8]}"
    sql = f"SELECT id, n, w FROM {t} ORDER BY emb <#> %s LIMIT 3"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute(f"CREATE TABLE {t} (id BIGINT PRIMARY KEY, n INT, w FLOAT8, emb FLOAT4[])")
        with c.cursor() as cur:
            cur.executemany(f"INSERT INTO {t} VALUES (%s, %s, %s, %s)",
                            [(i, i * 10, i / 4, x[i].tolist()) for i in range(60)])
        q = x[7].tolist()
        assert c.execute(sql, (q,)).fetchall()[0] == (7, 70, 1.75)
        c.execute(f"UPDATE {t} SET n = -1, w = 0.5 WHERE id = 7")
        assert c.execute(sql, (q,)).fetchall()[0] == (7, -1, 0.5)
        c.execute(f"DELETE FROM {t} WHERE id = 7")
        rows = c.execute(sql, (q,)).fetchall()
        assert 7 not in [r[0] for r in rows]
        assert all(r[1] == r[0] * 10 and r[2] == r[0] / 4 for r in rows)
        general = c.execute(sql.replace("LIMIT", ", id LIMIT"), (q,)).fetchall()
        assert rows == general
