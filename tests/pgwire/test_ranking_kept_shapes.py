"""The direct ranking path keeps each statement's shape (engine/planner.py ``_SHAPES``, keyed
by its serialized parse tree) and binds only the table, parameters and data per call. These
tests run the same statement texts again and again, with different parameters, on a
connection with fast paths on and on one with ``SET tarndb.fast_paths = off`` (the general
path through DuckDB), and compare rows, order, column descriptions and errors, so the kept
shape cannot drift from what the statement means (issue 17 / 18).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pgvector.psycopg as pgvector_psycopg
import psycopg
import pytest

from .conftest import Server

N, DIM = 240, 8


@pytest.fixture(scope="module")
def table(pg_server: Server) -> Iterator[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((N, DIM)) * rng.uniform(0.5, 2.0, (N, 1))).astype(np.float32)
    t = f"kept_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        pgvector_psycopg.register_vector(c)
        c.execute("CREATE EXTENSION IF NOT EXISTS vector")
        c.execute(f"CREATE TABLE {t} (id BIGINT PRIMARY KEY, cat INT, tag TEXT, w FLOAT8, "
                  f"emb vector({DIM}), el vector({DIM}), f REAL[])")
        with c.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {t} VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [(i, None if i % 11 == 10 else i % 6, f"t{i % 4}", i / 8, x[i], x[i],
                  x[i].tolist()) for i in range(N)])
        c.execute(f"CREATE INDEX ON {t} USING hnsw (emb vector_cosine_ops)")
        c.execute(f"CREATE INDEX ON {t} USING hnsw (el vector_l2_ops)")
    yield t, x


@pytest.fixture
def both(pg_server: Server) -> Iterator[tuple[Any, Any]]:
    fast = psycopg.connect(pg_server.dsn(), autocommit=True)
    general = psycopg.connect(pg_server.dsn(), autocommit=True)
    for c in (fast, general):
        pgvector_psycopg.register_vector(c)
    general.execute("SET tarndb.fast_paths = off")
    try:
        yield fast, general
    finally:
        fast.close()
        general.close()


def _run(c: Any, sql: str, params: tuple[Any, ...]) -> tuple[str, Any]:
    try:
        cur = c.execute(sql, params)
        return "ok", ([(d.name, d.type_code) for d in cur.description], cur.fetchall())
    except psycopg.Error as e:
        return "error", e.sqlstate


def _same(a: tuple[str, Any], b: tuple[str, Any]) -> None:
    assert a[0] == b[0], (a, b)
    if a[0] == "error":
        assert a[1] == b[1]
        return
    (desc1, rows1), (desc2, rows2) = a[1], b[1]
    assert desc1 == desc2
    assert len(rows1) == len(rows2)
    for r1, r2 in zip(rows1, rows2, strict=True):
        for u, v in zip(r1, r2, strict=True):
            if isinstance(u, float):
                assert u == pytest.approx(v, rel=1e-5, abs=1e-6)
            elif hasattr(u, "to_numpy") or isinstance(u, np.ndarray):
                np.testing.assert_allclose(np.asarray(u.to_numpy() if hasattr(u, "to_numpy")
                                                      else u), np.asarray(
                    v.to_numpy() if hasattr(v, "to_numpy") else v), rtol=1e-6)
            else:
                assert u == v


def _queries(x: np.ndarray) -> list[np.ndarray]:
    rng = np.random.default_rng(9)
    return [(x[i] + 0.1 * rng.standard_normal(DIM)).astype(np.float32) for i in (3, 50, 77)]


@pytest.mark.parametrize(("sql", "make"), [
    # LIMIT as a parameter
    ("SELECT id FROM {t} ORDER BY emb <=> %s LIMIT %s",
     lambda q, i: (q, (1, 5, 10, 0)[i % 4])),
    # int equality with a parameter, OFFSET as a parameter
    ("SELECT id, cat FROM {t} WHERE cat = %s ORDER BY emb <=> %s LIMIT 5 OFFSET %s",
     lambda q, i: (i % 6, q, i % 3)),
    # the equality written the other way round, a value no row has, NULL
    ("SELECT id FROM {t} WHERE %s = cat ORDER BY el <-> %s LIMIT 4",
     lambda q, i: ((2, 99, None, 0)[i % 4], q)),
    # the score in the select list: the ranking's own parameter, or another one
    ("SELECT id, emb <=> %s AS d FROM {t} ORDER BY emb <=> %s LIMIT 4",
     lambda q, i: (q, q) if i % 2 == 0 else (q[::-1].copy(), q)),
    ("SELECT id, el <-> %s FROM {t} ORDER BY 2 LIMIT 6", lambda q, i: (q,)),
    # filters DuckDB evaluates (kept per table version by the filter cache)
    ("SELECT * FROM {t} WHERE cat IN (1, 2) AND tag <> %s ORDER BY el <-> %s LIMIT 3",
     lambda q, i: (f"t{i % 4}", q)),
    ("SELECT t.id, t.w FROM {t} t WHERE t.w BETWEEN %s AND 20 ORDER BY t.emb <=> %s LIMIT 7",
     lambda q, i: (float(i), q)),
    # pg_deeplake's <#> on float4[]: a similarity, DESC
    ("SELECT id FROM {t} ORDER BY f <#> %s DESC LIMIT 5", lambda q, i: (q.tolist(),)),
    # errors and the general path's answers: a wrong dimension, a NULL query, zero vector
    ("SELECT id FROM {t} ORDER BY emb <=> %s LIMIT 3",
     lambda q, i: ((q, np.ones(DIM + 1, np.float32), None, np.zeros(DIM, np.float32))[i % 4],)),
])
def test_kept_shapes_answer_like_the_general_path(
        table: tuple[str, np.ndarray], both: tuple[Any, Any], sql: str, make: Any) -> None:
    t, x = table
    fast, general = both
    text = sql.format(t=t)
    qs = _queries(x)
    # Eight calls: psycopg prepares the statement after five, so both the simple and the
    # prepared (Parse once, Bind per call) forms meet the kept shape.
    for i in range(8):
        params = make(qs[i % len(qs)], i)
        _same(_run(fast, text, params), _run(general, text, params))


def test_kept_shapes_follow_ddl(pg_server: Server, both: tuple[Any, Any]) -> None:
    """A kept shape holds no table facts: after the table changes under the same statement
    text (a column dropped or added, an index replaced by one of another metric, the table
    dropped) the answers and errors are the general path's."""
    fast, general = both
    rng = np.random.default_rng(2)
    x = rng.standard_normal((40, 4)).astype(np.float32)
    t = f"kddl_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        pgvector_psycopg.register_vector(c)
        c.execute(f"CREATE TABLE {t} (id BIGINT, cat INT, emb vector(4))")
        with c.cursor() as cur:
            cur.executemany(f"INSERT INTO {t} VALUES (%s, %s, %s)",
                            [(i, i % 3, x[i]) for i in range(40)])
        c.execute(f"CREATE INDEX {t}_ix ON {t} USING hnsw (emb vector_l2_ops)")
        q = x[7] + 0.01
        star = f"SELECT * FROM {t} ORDER BY emb <-> %s LIMIT 3"
        filt = f"SELECT id FROM {t} WHERE cat = %s ORDER BY emb <-> %s LIMIT 3"

        def check() -> None:
            for _ in range(2):
                _same(_run(fast, star, (q,)), _run(general, star, (q,)))
                _same(_run(fast, filt, (1, q)), _run(general, filt, (1, q)))

        check()
        c.execute(f"ALTER TABLE {t} ADD COLUMN note TEXT DEFAULT 'n'")
        check()
        assert len(fast.execute(star, (q,)).fetchone()) == 4  # the new column shows
        c.execute(f"ALTER TABLE {t} DROP COLUMN cat")
        check()
        assert _run(fast, filt, (1, q))[0] == "error"
        c.execute(f"DROP INDEX {t}_ix")
        c.execute(f"CREATE INDEX {t}_ix ON {t} USING hnsw (emb vector_cosine_ops)")
        check()  # <-> without an l2 index: the general path, exactly
        c.execute(f"DROP TABLE {t}")
        check()
        assert _run(fast, star, (q,)) == ("error", "42P01")


def test_which_kept_shapes_take_the_direct_path(session: Any) -> None:
    """Parameters decide per call whether the kept shape answers (LIMIT 0, a non-integer
    LIMIT, a select-list score of another query vector go the general way), and one
    statement text answers the same whichever path its first call took."""
    from tarndb.engine.planner import _SHAPES, try_direct
    from tarndb.sql import ast

    session.execute("CREATE EXTENSION IF NOT EXISTS vector")
    session.execute("CREATE TABLE ks (id INT, cat INT, ec vector(2))")
    session.execute("INSERT INTO ks VALUES (1, 1, '[1,0]'), (2, 2, '[0,1]'), (3, 1, '[1,1]')")
    session.execute("CREATE INDEX ON ks USING hnsw (ec vector_cosine_ops)")
    q, q2 = np.array([1, 0.2], np.float32), np.array([0.2, 1], np.float32)

    def direct(sql: str, params: list[Any]) -> Any:
        stmt = ast.parse(sql).stmts[0].stmt
        return try_direct(session, stmt, params)

    sql = "SELECT id FROM ks ORDER BY ec <=> $1 LIMIT $2"
    assert direct(sql, [q, 0]) is None  # LIMIT 0: the general path
    assert direct(sql, [q, "2"]) is None  # not an integer
    r = direct(sql, [q, 2])
    assert r is not None and [row[0] for row in r.rows] == [1, 3]
    assert any(v is not None for v in _SHAPES.values())
    score = "SELECT id, ec <=> $1 AS d FROM ks ORDER BY ec <=> $2 LIMIT 2"
    r = direct(score, [q, q])
    assert r is not None and r.rows[0][0] == 1 and r.rows[0][1] == pytest.approx(
        1 - 1 / np.sqrt(1.04), abs=1e-6)
    assert direct(score, [q2, q]) is None  # a different vector: not the ranking's score
    flt = "SELECT id FROM ks WHERE cat = $1 ORDER BY ec <=> $2 LIMIT 1"
    r = direct(flt, [2, q])
    assert r is not None and r.rows == [(2,)]
    r = direct(flt, [1, q2])
    assert r is not None and r.rows == [(3,)]
    assert direct("SELECT id FROM ks ORDER BY ec <=> $1, id LIMIT 1", [q]) is None
