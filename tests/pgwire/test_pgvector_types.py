"""pgvector's halfvec(n), sparsevec(n) and bit(n) through pgvector-python and psycopg 3
against a real server: text and binary I/O, typmod checks, casts to and from real[], and the
operators <->, <=>, <#>, <+>, <~>, <%> checked against numpy."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pytest

from .conftest import Server

psycopg = pytest.importorskip("psycopg")
pgvector_psycopg = pytest.importorskip("pgvector.psycopg")
utils = pytest.importorskip("pgvector.utils")

N, DIM = 60, 8


def _dists(x: np.ndarray, q: np.ndarray, op: str) -> np.ndarray:
    x64, q64 = x.astype(np.float64), q.astype(np.float64)
    if op == "<->":
        return np.linalg.norm(x64 - q64, axis=1)
    if op == "<=>":
        return 1 - (x64 @ q64) / (np.linalg.norm(x64, axis=1) * np.linalg.norm(q64))
    if op == "<#>":
        return -(x64 @ q64)
    return np.abs(x64 - q64).sum(axis=1)


@pytest.fixture(scope="module")
def table(pg_server: Server) -> tuple[str, np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(3)
    half = rng.standard_normal((N, DIM)).astype(np.float16).astype(np.float32)
    sparse = rng.standard_normal((N, DIM)).astype(np.float32)
    sparse[rng.random((N, DIM)) < 0.6] = 0
    sparse[:, 0] = 1.0  # no all-zero rows (cosine distance of a zero vector is NaN)
    bits = ["".join(rng.choice(["0", "1"], DIM)) for _ in range(N)]
    t = f"pvt_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS vector")
        pgvector_psycopg.register_vector(c)
        c.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, h halfvec({DIM}), "
                  f"s sparsevec({DIM}), b bit({DIM}))")
        with c.cursor() as cur:
            # half the rows over the binary protocol, half as text
            cur.executemany(
                f"INSERT INTO {t} VALUES (%s, %s, %s, %s)",
                [(i, utils.HalfVector(half[i]), utils.SparseVector(sparse[i]), utils.Bit(bits[i]))
                 for i in range(0, N, 2)])
        with c.cursor(binary=True) as cur:
            cur.executemany(
                f"INSERT INTO {t} VALUES (%b, %b, %b, %b)",
                [(i, utils.HalfVector(half[i]), utils.SparseVector(sparse[i]), utils.Bit(bits[i]))
                 for i in range(1, N, 2)])
    return t, half, sparse, bits


def test_types_are_registered_and_described(pg_server: Server, table: Any) -> None:
    t = table[0]
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        names = {r[0] for r in c.execute(
            "SELECT typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
            "WHERE nspname = 'public' AND typname IN ('halfvec', 'sparsevec')")}
        assert names == {"halfvec", "sparsevec"}
        assert c.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute a "
                         "JOIN pg_class c ON c.oid = a.attrelid WHERE relname = %s "
                         "AND attnum > 0 ORDER BY attnum", (t,)).fetchall() == [
            ("integer",), (f"halfvec({DIM})",), (f"sparsevec({DIM})",), (f"bit({DIM})",)]


@pytest.mark.parametrize("binary", [False, True])
def test_values_round_trip(pg_server: Server, table: Any, binary: bool) -> None:
    t, half, sparse, bits = table
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        pgvector_psycopg.register_vector(c)
        with c.cursor(binary=binary) as cur:
            rows = cur.execute(f"SELECT id, h, s, b FROM {t} ORDER BY id").fetchall()
    assert [r[0] for r in rows] == list(range(N))
    for i, h, s, b in rows:
        assert isinstance(h, utils.HalfVector) and isinstance(s, utils.SparseVector)
        np.testing.assert_array_equal(h.to_numpy().astype(np.float32), half[i])
        np.testing.assert_array_equal(np.asarray(s.to_list(), np.float32), sparse[i])
        assert s.dimensions() == DIM
        assert b == bits[i]  # psycopg reads bit as its text form


def test_text_forms_are_pgvectors(pg_server: Server) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        row = c.execute("SELECT '[0.1,2,-3]'::halfvec::text, '{1:1.5,3:2}/5'::sparsevec::text, "
                        "'[1,0,2]'::vector::sparsevec::text, "
                        "'{2:3}/3'::sparsevec::vector::text, "
                        "'[1,2]'::halfvec::real[], ARRAY[1.5, 2]::real[]::halfvec::text, "
                        "'0101'::bit(4)::text").fetchone()
        assert row == ("[0.099975586,2,-3]", "{1:1.5,3:2}/5", "{1:1,3:2}/3", "[0,3,0]",
                       [1.0, 2.0], "[1.5,2]", "0101")


@pytest.mark.parametrize("op", ["<->", "<=>", "<#>", "<+>"])
def test_halfvec_and_sparsevec_distances_match_numpy(pg_server: Server, table: Any,
                                                       op: str) -> None:
    t, half, sparse, _ = table
    rng = np.random.default_rng(11)
    q = rng.standard_normal(DIM).astype(np.float16).astype(np.float32)
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        pgvector_psycopg.register_vector(c)
        for col, x, qv in (("h", half, utils.HalfVector(q)), ("s", sparse,
                                                               utils.SparseVector(q))):
            rows = c.execute(f"SELECT id, {col} {op} %s FROM {t} ORDER BY {col} {op} %s, id "
                             "LIMIT 5", (qv, qv)).fetchall()
            d = _dists(x, q, op)
            expect = np.argsort(d, kind="stable")[:5]
            assert [r[0] for r in rows] == expect.tolist(), col
            np.testing.assert_allclose([r[1] for r in rows], d[expect], rtol=1e-5, atol=1e-5)
        # A literal against the column takes the column's type.
        text = "{" + ",".join(f"{i + 1}:{v}" for i, v in enumerate(q.tolist()) if v) + \
            f"}}/{DIM}"
        got = c.execute(f"SELECT s {op} %s FROM {t} WHERE id = 3", (text,)).fetchone()
        assert got is not None
        np.testing.assert_allclose(got[0], _dists(sparse[3:4], q, op)[0], rtol=1e-5)


def test_bit_distances_match_numpy(pg_server: Server, table: Any) -> None:
    t, _, _, bits = table
    q = "10110010"
    a = np.array([[ch == "1" for ch in b] for b in bits])
    qa = np.array([ch == "1" for ch in q])
    ham = (a != qa).sum(axis=1)
    inter, union = (a & qa).sum(axis=1), (a | qa).sum(axis=1)
    jac = np.where(inter == 0, 1.0, 1 - inter / np.maximum(union, 1))
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        pgvector_psycopg.register_vector(c)
        rows = c.execute(f"SELECT id, b <~> %s, b <%%> %s, hamming_distance(b, %s) FROM {t} "
                         "ORDER BY b <~> %s, id", (utils.Bit(q),) * 4).fetchall()
        assert [r[0] for r in rows] == np.lexsort((np.arange(N), ham)).tolist()
        by_id = {r[0]: r for r in rows}
        for i in range(N):
            assert by_id[i][1] == ham[i] and by_id[i][3] == ham[i]
            assert by_id[i][2] == pytest.approx(jac[i])
        assert c.execute("SELECT binary_quantize('[1,-2,0,3]'::vector)::text").fetchone() == \
            ("1001",)


def test_typmod_and_input_checks(pg_server: Server, table: Any) -> None:
    t = table[0]
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        cases = [
            (f"INSERT INTO {t} (id, h) VALUES (1000, '[1,2]')", psycopg.errors.DataException,
             f"expected {DIM} dimensions, not 2"),
            (f"INSERT INTO {t} (id, s) VALUES (1000, '{{1:1}}/3')",
             psycopg.errors.DataException, f"expected {DIM} dimensions, not 3"),
            (f"INSERT INTO {t} (id, s) VALUES (1000, '{{9:1}}/{DIM}')",
             psycopg.errors.DataException, "index out of bounds"),
            (f"INSERT INTO {t} (id, h) VALUES (1000, '[1,2,3,4,5,6,7,70000]')",
             psycopg.errors.NumericValueOutOfRange, "out of range for type halfvec"),
            (f"INSERT INTO {t} (id, b) VALUES (1000, '101')",
             psycopg.errors.StringDataLengthMismatch,
             f"bit string length 3 does not match type bit({DIM})"),
            ("CREATE TABLE bad_hv (h halfvec(16001))", psycopg.errors.InvalidParameterValue,
             "dimensions for type halfvec must be between 1 and 16000"),
        ]
        for sql, err, msg in cases:
            with pytest.raises(err, match=msg.replace("(", r"\(").replace(")", r"\)")
                               .replace("{", r"\{").replace("}", r"\}")):
                c.execute(sql)
        assert c.execute(f"SELECT count(*) FROM {t} WHERE id = 1000").fetchone() == (0,)


@pytest.mark.parametrize("kind,op", [("l2", "<->"), ("ip", "<#>"), ("cosine", "<=>")])
def test_halfvec_and_sparsevec_indexes(pg_server: Server, table: Any, kind: str, op: str
                                       ) -> None:
    """pgvector's halfvec_*_ops / sparsevec_*_ops make the column's vector index, which its
    operator's ORDER BY uses (EXPLAIN names it), with the same rows as numpy, filtered too."""
    src, half, sparse, _ = table
    t = f"pvi_{kind}_{uuid.uuid4().hex[:6]}"
    rng = np.random.default_rng(5)
    q = rng.standard_normal(DIM).astype(np.float16).astype(np.float32)
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        pgvector_psycopg.register_vector(c)
        c.execute(f"CREATE TABLE {t} AS SELECT * FROM {src}")
        c.execute(f"CREATE INDEX {t}_h ON {t} USING hnsw (h halfvec_{kind}_ops) "
                  "WITH (m = 8)")
        c.execute(f"CREATE INDEX {t}_s ON {t} USING hnsw (s sparsevec_{kind}_ops)")
        for col, x, qv in (("h", half, utils.HalfVector(q)),
                           ("s", sparse, utils.SparseVector(q))):
            plan = "\n".join(r[0] for r in c.execute(
                f"EXPLAIN SELECT id FROM {t} ORDER BY {col} {op} %s LIMIT 5", (qv,)))
            assert f"{t}_{col}" in plan, plan
            d = _dists(x, q, op)
            rows = c.execute(f"SELECT id, {col} {op} %s FROM {t} ORDER BY {col} {op} %s "
                             "LIMIT 5", (qv, qv)).fetchall()
            expect = np.argsort(d, kind="stable")[:5]
            assert [r[0] for r in rows] == expect.tolist(), col
            np.testing.assert_allclose([r[1] for r in rows], d[expect], rtol=1e-5, atol=1e-5)
            rows = c.execute(f"SELECT id FROM {t} WHERE id %% 3 = 1 ORDER BY {col} {op} %s "
                             "LIMIT 7", (qv,)).fetchall()
            allowed = np.flatnonzero(np.arange(N) % 3 == 1)
            assert [r[0] for r in rows] == \
                allowed[np.argsort(d[allowed], kind="stable")[:7]].tolist(), col
        # pgvector's checks: an opclass of another type, sparsevec under ivfflat
        with pytest.raises(psycopg.errors.DatatypeMismatch) as e:
            c.execute(f"CREATE INDEX ON {src} USING hnsw (h vector_{kind}_ops)")
        assert str(e.value).startswith(
            f'operator class "vector_{kind}_ops" does not accept data type halfvec')
        with pytest.raises(psycopg.errors.UndefinedObject):
            c.execute(f"CREATE INDEX ON {src} USING ivfflat (s sparsevec_{kind}_ops)")
