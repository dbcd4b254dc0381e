"""pgvector's expression indexes through psycopg against a real server:
``USING hnsw ((emb::halfvec(n)) halfvec_cosine_ops)`` and
``((binary_quantize(emb)::bit(n)) bit_hamming_ops)`` are accepted (pgvector's checks and
errors), shown in pg_indexes, and the queries that order by the expression answer exactly
what an exact scan answers (checked against numpy's float16 / sign-bit arithmetic)."""

from __future__ import annotations

import uuid

import numpy as np
import psycopg
import pytest

from .conftest import Server

DIM = 16
N = 400


def _vec(v: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.6f}" for x in v) + "]"


@pytest.fixture(scope="module")
def table(pg_server: Server) -> tuple[str, np.ndarray, np.ndarray]:
    name = f"exprix_{uuid.uuid4().hex[:8]}"
    rng = np.random.default_rng(7)
    embs = rng.standard_normal((N, DIM)).astype(np.float32)
    cats = rng.integers(0, 4, N)
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS vector")
        c.execute(f"CREATE TABLE {name} (id INT PRIMARY KEY, cat INT, emb vector({DIM}))")
        with c.cursor() as cur:
            cur.executemany(f"INSERT INTO {name} VALUES (%s, %s, %s::vector)",
                            [(i, int(cats[i]), _vec(embs[i])) for i in range(N)])
        # rounded as the server stores them (text with 6 decimals)
        stored = np.array([[float(f"{x:.6f}") for x in row] for row in embs], np.float32)
    return name, stored, cats


def _cosine_half(embs: np.ndarray, q: np.ndarray) -> np.ndarray:
    h = embs.astype(np.float16).astype(np.float64)
    qh = q.astype(np.float16).astype(np.float64)
    return 1 - (h @ qh) / (np.linalg.norm(h, axis=1) * np.linalg.norm(qh))


def test_halfvec_expression_index(pg_server: Server,
                                  table: tuple[str, np.ndarray, np.ndarray]) -> None:
    name, embs, cats = table
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute(f"CREATE INDEX {name}_half ON {name} USING hnsw "
                  f"((emb::halfvec({DIM})) halfvec_cosine_ops) WITH (m = 16, "
                  "ef_construction = 64)")
        indexdef = c.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s",
                             (f"{name}_half",)).fetchone()
        assert indexdef is not None and f"USING hnsw ((emb::halfvec({DIM})) " \
            "halfvec_cosine_ops)" in indexdef[0]
        rng = np.random.default_rng(11)
        for _ in range(5):
            q = rng.standard_normal(DIM).astype(np.float32)
            rows = c.execute(
                f"SELECT id, emb::halfvec({DIM}) <=> %s::halfvec({DIM}) FROM {name} "
                f"ORDER BY emb::halfvec({DIM}) <=> %s::halfvec({DIM}) LIMIT 10",
                (_vec(q), _vec(q))).fetchall()
            want = np.argsort(_cosine_half(embs, q.round(6)), kind="stable")[:10]
            assert [r[0] for r in rows] == want.tolist()
            # with a filter: never under-filled, the exact answer among the allowed rows
            rows = c.execute(
                f"SELECT id FROM {name} WHERE cat = 2 ORDER BY emb::halfvec({DIM}) <=> "
                f"%s::halfvec({DIM}) LIMIT 10", (_vec(q),)).fetchall()
            d = _cosine_half(embs, q.round(6))
            d[cats != 2] = np.inf
            assert [r[0] for r in rows] == np.argsort(d, kind="stable")[:10].tolist()
        # pgvector's checks
        with pytest.raises(psycopg.errors.DataException, match="expected 8 dimensions"):
            c.execute(f"CREATE INDEX ON {name} USING hnsw ((emb::halfvec(8)) "
                      "halfvec_cosine_ops)")
        with pytest.raises(psycopg.errors.DatatypeMismatch):
            c.execute(f"CREATE INDEX ON {name} USING hnsw ((emb::halfvec({DIM})) "
                      "vector_cosine_ops)")
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            c.execute(f"CREATE INDEX ON {name} USING hnsw ((emb::text))")
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            c.execute(f"CREATE INDEX ON {name} USING hnsw ((emb::halfvec({DIM})) "
                      "halfvec_l2_ops) WITH (lists = 3)")
        c.execute(f"DROP INDEX {name}_half")


def test_binary_quantize_expression_index(pg_server: Server,
                                          table: tuple[str, np.ndarray, np.ndarray]) -> None:
    name, embs, _cats = table
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute(f"CREATE INDEX {name}_bits ON {name} USING hnsw "
                  f"((binary_quantize(emb)::bit({DIM})) bit_hamming_ops)")
        bits = embs > 0
        rng = np.random.default_rng(5)
        for _ in range(5):
            q = rng.standard_normal(DIM).astype(np.float32)
            rows = c.execute(
                f"SELECT id, binary_quantize(emb)::bit({DIM}) <~> binary_quantize(%s::vector)"
                f" FROM {name} ORDER BY binary_quantize(emb)::bit({DIM}) <~> "
                f"binary_quantize(%s::vector), id LIMIT 20", (_vec(q), _vec(q))).fetchall()
            dist = (bits != (q > 0)).sum(axis=1)
            want = sorted(range(N), key=lambda i: (dist[i], i))[:20]
            assert [r[0] for r in rows] == want
            assert [r[1] for r in rows] == [float(dist[i]) for i in want]
        with pytest.raises(psycopg.errors.DatatypeMismatch):
            c.execute(f"CREATE INDEX ON {name} USING hnsw "
                      f"((binary_quantize(emb)::bit({DIM})) halfvec_l2_ops)")
        c.execute(f"DROP INDEX {name}_bits")
