"""pgvector's SQL surface through pgvector-python (psycopg 3 and psycopg2) against a real
server: the vector type and its I/O, operators, functions and hnsw/ivfflat indexes, checked
against a numpy oracle."""

from __future__ import annotations

import re
import uuid
from typing import Any

import numpy as np
import pytest

from .conftest import Server

psycopg = pytest.importorskip("psycopg")
pgvector_psycopg = pytest.importorskip("pgvector.psycopg")

DIM = 16


def _np(v: Any) -> np.ndarray:
    """A vector as pgvector-python returns it: numpy (before 0.4) or ``Vector``."""
    return v.to_numpy() if hasattr(v, "to_numpy") else np.asarray(v)
N = 400


def _oracle(x: np.ndarray, q: np.ndarray, op: str) -> np.ndarray:
    x64, q64 = x.astype(np.float64), q.astype(np.float64)
    if op == "<->":
        return np.linalg.norm(x64 - q64, axis=1)
    if op == "<=>":
        return 1 - (x64 @ q64) / (np.linalg.norm(x64, axis=1) * np.linalg.norm(q64))
    if op == "<#>":
        return -(x64 @ q64)
    if op == "<+>":
        return np.abs(x64 - q64).sum(axis=1)
    raise AssertionError(op)


@pytest.fixture(scope="module")
def items(pg_server: Server) -> tuple[str, np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((N, DIM)).astype(np.float32)
    t = f"items_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS vector")
        pgvector_psycopg.register_vector(c)
        c.execute(f"CREATE TABLE {t} (id BIGINT PRIMARY KEY, cat INT, embedding vector({DIM}))")
        with c.cursor() as cur:
            cur.executemany(f"INSERT INTO {t} (id, cat, embedding) VALUES (%s, %s, %s)",
                            [(i, i % 4, x[i]) for i in range(N)])
    return t, x


def test_extension_and_type_are_registered(pg_server: Server, items: Any) -> None:
    t, _ = items
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        assert c.execute("SELECT extname FROM pg_extension WHERE extname = 'vector'"
                         ).fetchall() == [("vector",)]
        c.execute("CREATE EXTENSION IF NOT EXISTS vector")  # again: a notice, no error
        oid = c.execute("SELECT to_regtype('vector')::oid").fetchone()
        assert oid is not None and oid[0] is not None
        assert c.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute a "
                         "JOIN pg_class c ON c.oid = a.attrelid "
                         "WHERE c.relname = %s AND attname = 'embedding'",
                         (t,)).fetchall() == [(f"vector({DIM})",)]


def test_register_vector_round_trips_numpy_text_and_binary(pg_server: Server, items: Any
                                                            ) -> None:
    t, x = items
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        pgvector_psycopg.register_vector(c)
        for binary in (False, True):
            with c.cursor(binary=binary) as cur:
                row = cur.execute(f"SELECT embedding FROM {t} WHERE id = 5").fetchone()
            assert row is not None
            assert _np(row[0]).dtype == np.float32
            np.testing.assert_array_equal(_np(row[0]), x[5])
        # Text I/O as pgvector writes it.
        assert c.execute("SELECT '[1, 2.5,-3]'::vector::text").fetchone() == ("[1,2.5,-3]",)
        assert c.execute("SELECT '[1,2,3]'::vector(3)::real[]").fetchone() == ([1.0, 2.0, 3.0],)
        got = c.execute("SELECT ARRAY[1,2,3]::real[]::vector(3)").fetchone()
        assert got is not None
        np.testing.assert_array_equal(_np(got[0]), [1, 2, 3])


def test_dimension_is_checked(pg_server: Server, items: Any) -> None:
    t, _ = items
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        pgvector_psycopg.register_vector(c)
        with pytest.raises(psycopg.errors.DataException) as e:
            c.execute(f"INSERT INTO {t} VALUES (9999, 0, %s)", (np.ones(3, np.float32),))
        assert str(e.value).startswith(f"expected {DIM} dimensions, not 3")
        assert e.value.sqlstate == "22000"
        with pytest.raises(psycopg.errors.DataException):
            c.execute(f"INSERT INTO {t} VALUES (9999, 0, '[1,2]')")
        with pytest.raises(psycopg.errors.DataException) as e2:
            c.execute("SELECT '[1,2]'::vector <-> '[1,2,3]'::vector")
        assert "different vector dimensions 2 and 3" in str(e2.value)


@pytest.mark.parametrize("op", ["<->", "<=>", "<#>", "<+>"])
def test_nearest_neighbours_match_numpy(pg_server: Server, items: Any, op: str) -> None:
    t, x = items
    rng = np.random.default_rng(abs(hash(op)) % 1000)
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        pgvector_psycopg.register_vector(c)
        for _ in range(3):
            q = rng.standard_normal(DIM).astype(np.float32)
            rows = c.execute(f"SELECT id, embedding {op} %s AS d FROM {t} "
                             f"ORDER BY embedding {op} %s LIMIT 10", (q, q)).fetchall()
            want = _oracle(x, q, op)
            order = np.argsort(want, kind="stable")[:10]
            assert [r[0] for r in rows] == order.tolist()
            np.testing.assert_allclose([r[1] for r in rows], want[order], rtol=1e-4, atol=1e-4)
            # With a filter: never under-filled, still exact.
            rows = c.execute(f"SELECT id FROM {t} WHERE cat = 2 "
                             f"ORDER BY embedding {op} %s LIMIT 7", (q,)).fetchall()
            allowed = np.flatnonzero(np.arange(N) % 4 == 2)
            expect = allowed[np.argsort(want[allowed], kind="stable")[:7]]
            assert [r[0] for r in rows] == expect.tolist()


def test_functions(pg_server: Server) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        row = c.execute(
            "SELECT l2_distance('[0,3]'::vector, '[4,0]'::vector), "
            "cosine_distance('[1,0]'::vector, '[0,1]'::vector), "
            "inner_product('[1,2]'::vector, '[3,4]'::vector), "
            "l1_distance('[1,2]'::vector, '[4,0]'::vector), "
            "vector_dims('[1,2,3]'::vector), vector_norm('[3,4]'::vector), "
            "l2_normalize('[3,4]'::vector)::real[], '[1,2]'::vector <#> '[3,4]'::vector"
        ).fetchone()
        assert row is not None
        assert row[:6] == (5.0, 1.0, 11.0, 5.0, 3, 5.0)
        np.testing.assert_allclose(row[6], [0.6, 0.8], rtol=1e-6)
        assert row[7] == -11.0
        # <#> on float4[] keeps pg_deeplake's meaning: a cosine similarity.
        t = f"f_{uuid.uuid4().hex[:8]}"
        c.execute(f"CREATE TABLE {t} (id INT, e REAL[], v vector(2))")
        c.execute(f"INSERT INTO {t} VALUES (1, '{{1,0}}', '[1,0]'), (2, '{{2,2}}', '[2,2]')")
        rows = c.execute(f"SELECT id, e <#> ARRAY[2,0]::real[], v <#> '[2,0]' FROM {t} "
                         "ORDER BY id").fetchall()
        assert [r[0] for r in rows] == [1, 2]
        np.testing.assert_allclose([r[1] for r in rows], [1.0, 2 ** -0.5], rtol=1e-6)
        assert [r[2] for r in rows] == [-2.0, -4.0]


def test_hnsw_and_ivfflat_indexes_serve_order_by(pg_server: Server, items: Any) -> None:
    t, x = items
    rng = np.random.default_rng(3)
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        pgvector_psycopg.register_vector(c)
        c.execute(f"CREATE INDEX {t}_hnsw ON {t} USING hnsw (embedding vector_cosine_ops) "
                  "WITH (m = 16, ef_construction = 64)")
        assert c.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s",
                         (f"{t}_hnsw",)).fetchall() == [
            (f"CREATE INDEX {t}_hnsw ON public.{t} USING hnsw (embedding vector_cosine_ops) "
             "WITH (m='16', ef_construction='64')",)]
        c.execute("SET hnsw.ef_search = 100")
        c.execute("SET hnsw.iterative_scan = relaxed_order")
        c.execute("SET ivfflat.probes = 10")
        q = rng.standard_normal(DIM).astype(np.float32)
        plan = [r[0] for r in c.execute(f"EXPLAIN SELECT id FROM {t} WHERE cat = 1 "
                                        f"ORDER BY embedding <=> %s LIMIT 5", (q,))]
        assert plan[0].startswith(f"Top-5 cosine on {t}.embedding")
        assert f"index {t}_hnsw" in plan[0]
        rows = c.execute(f"SELECT id FROM {t} WHERE cat = 1 ORDER BY embedding <=> %s "
                         "LIMIT 5", (q,)).fetchall()
        want = _oracle(x, q, "<=>")
        allowed = np.flatnonzero(np.arange(N) % 4 == 1)
        assert [r[0] for r in rows] == allowed[np.argsort(want[allowed])[:5]].tolist()
        t2 = f"{t}_b"
        c.execute(f"CREATE TABLE {t2} (id INT, embedding vector(3))")
        with pytest.raises(psycopg.errors.UndefinedObject):
            c.execute(f"CREATE INDEX ON {t2} USING hnsw (embedding vector_foo_ops)")
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            c.execute(f"CREATE INDEX ON {t2} USING ivfflat (embedding vector_l2_ops) "
                      "WITH (m = 3)")
        c.execute(f"CREATE INDEX ON {t2} USING ivfflat (embedding vector_l2_ops) "
                  "WITH (lists = 10)")
        c.execute(f"INSERT INTO {t2} VALUES (1, '[1,1,1]'), (2, '[5,5,5]'), (3, '[0,1,0]')")
        assert c.execute(f"SELECT id FROM {t2} ORDER BY embedding <-> '[0,0,0]' LIMIT 2"
                         ).fetchall() == [(3,), (1,)]


def test_psycopg2_register_vector(pg_server: Server, items: Any) -> None:
    psycopg2 = pytest.importorskip("psycopg2")
    from pgvector.psycopg2 import register_vector

    t, x = items
    conn = psycopg2.connect(pg_server.dsn())
    try:
        conn.autocommit = True
        register_vector(conn)
        cur = conn.cursor()
        q = x[11] + 0.01
        cur.execute(f"SELECT id, embedding FROM {t} ORDER BY embedding <-> %s LIMIT 1", (q,))
        rid, emb = cur.fetchone()
        assert rid == 11
        np.testing.assert_array_equal(_np(emb), x[11])
        cur.execute(f"INSERT INTO {t} (id, cat, embedding) VALUES (%s, %s, %s)",
                    (10_000, 9, np.arange(DIM, dtype=np.float32)))
        cur.execute(f"SELECT embedding FROM {t} WHERE id = 10000")
        np.testing.assert_array_equal(_np(cur.fetchone()[0]),
                                      np.arange(DIM, dtype=np.float32))
    finally:
        conn.close()


def test_rows_without_a_vector_sort_last_and_fill_the_limit(pg_server: Server) -> None:
    t = f"nv_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute(f"CREATE TABLE {t} (id INT, cat INT, emb vector(2))")
        c.execute(f"INSERT INTO {t} VALUES (1, 1, '[1,0]'), (2, 1, NULL), (3, 1, '[0,1]'), "
                  "(4, 2, '[1,1]')")
        c.execute(f"CREATE INDEX ON {t} USING hnsw (emb vector_cosine_ops)")
        for op in ("<=>", "<->", "<#>", "<+>"):
            rows = c.execute(f"SELECT id, emb {op} '[1,0.1]' FROM {t} WHERE cat = 1 "
                             f"ORDER BY emb {op} '[1,0.1]' LIMIT 3").fetchall()
            assert [r[0] for r in rows] == [1, 3, 2]
            assert rows[2][1] is None


def test_avg_and_sum_of_vectors(pg_server: Server) -> None:
    t = f"agg_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        pgvector_psycopg.register_vector(c)
        c.execute(f"CREATE TABLE {t} (g INT, emb vector(3))")
        c.execute(f"INSERT INTO {t} VALUES (1, '[1,2,3]'), (1, '[3,4,5]'), (2, NULL), "
                  "(2, '[1,1,1]'), (3, NULL)")
        rows = c.execute(f"SELECT g, avg(emb), sum(emb) FROM {t} GROUP BY g ORDER BY g"
                         ).fetchall()
        assert [r[0] for r in rows] == [1, 2, 3]
        np.testing.assert_array_equal(_np(rows[0][1]), [2, 3, 4])
        np.testing.assert_array_equal(_np(rows[0][2]), [4, 6, 8])
        np.testing.assert_array_equal(_np(rows[1][1]), [1, 1, 1])
        assert rows[2][1] is None and rows[2][2] is None
        assert c.execute(f"SELECT avg(emb)::text FROM {t}").fetchone() == (
            "[1.6666666,2.3333333,3]",)


def test_copy_text_and_binary(pg_server: Server) -> None:
    t = f"cp_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        pgvector_psycopg.register_vector(c)
        c.execute(f"CREATE TABLE {t} (id INT, emb vector(3))")
        with c.cursor().copy(f"COPY {t} (id, emb) FROM STDIN") as cp:
            cp.write_row((1, np.array([1, 2, 3], np.float32)))
            cp.write_row((2, "[4,5,6]"))
        with c.cursor().copy(f"COPY {t} (id, emb) FROM STDIN WITH (FORMAT BINARY)") as cp:
            cp.set_types(["int4", "vector"])
            cp.write_row((3, np.array([7, 8.5, 9], np.float32)))
        rows = c.execute(f"SELECT id, emb FROM {t} ORDER BY id").fetchall()
        assert [(r[0], _np(r[1]).tolist()) for r in rows] == [
            (1, [1, 2, 3]), (2, [4, 5, 6]), (3, [7, 8.5, 9])]
        with c.cursor().copy(f"COPY (SELECT id, emb FROM {t} ORDER BY id) TO STDOUT") as cp:
            assert b"".join(bytes(b) for b in cp) == b"1\t[1,2,3]\n2\t[4,5,6]\n3\t[7,8.5,9]\n"
        with pytest.raises(psycopg.errors.DataException):
            with c.cursor().copy(f"COPY {t} (id, emb) FROM STDIN") as cp:
                cp.write_row((4, "[1,2]"))


def test_asyncpg_register_vector(pg_server: Server) -> None:
    asyncpg = pytest.importorskip("asyncpg")
    from pgvector.asyncpg import register_vector

    t = f"apg_{uuid.uuid4().hex[:8]}"

    async def run() -> list[Any]:
        import ssl

        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = await asyncpg.connect(host=pg_server.host, port=pg_server.port, user="postgres",
                                     password=pg_server.password, database="postgres",
                                     ssl=ctx)
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            await register_vector(conn)  # set_type_codec('vector', schema='public')
            await conn.execute(f"CREATE TABLE {t} (id INT, emb vector(3))")
            await conn.executemany(f"INSERT INTO {t} VALUES ($1, $2)",
                                   [(1, np.array([1, 2, 3], np.float32)),
                                    (2, np.array([3, 2, 1], np.float32))])
            return list(await conn.fetch(f"SELECT id, emb FROM {t} ORDER BY emb <-> $1 LIMIT 2",
                                         np.array([3, 2, 1.5], np.float32)))
        finally:
            await conn.close()

    import asyncio

    rows = asyncio.run(run())
    assert [r["id"] for r in rows] == [2, 1]
    np.testing.assert_array_equal(_np(rows[0]["emb"]), [3, 2, 1])


_OPCLASS_OPS = [("vector_l2_ops", "<->", "l2"), ("vector_ip_ops", "<#>", "dot"),
                ("vector_cosine_ops", "<=>", "cosine")]


def _load(c: Any, t: str, x: np.ndarray, cats: np.ndarray) -> None:
    c.execute(f"CREATE TABLE {t} (id BIGINT, cat INT, emb vector({x.shape[1]}))")
    with c.cursor().copy(f"COPY {t} (id, cat, emb) FROM STDIN") as cp:
        for i in range(x.shape[0]):
            cp.write_row((i, int(cats[i]), "[" + ",".join(map(repr, x[i].tolist())) + "]"))
        cp.write_row((x.shape[0], 0, None))  # a row without a vector


@pytest.mark.parametrize(("opclass", "op", "mode"), _OPCLASS_OPS)
def test_each_opclass_index_serves_its_operator(pg_server: Server, opclass: str, op: str,
                                                 mode: str) -> None:
    """``vector_l2_ops`` serves ``<->``, ``vector_ip_ops`` serves ``<#>`` (negative inner
    product), ``vector_cosine_ops`` ``<=>``: EXPLAIN names the index, the rows and their
    distances are pgvector's exact ones, with or without a WHERE clause, never under-filled;
    an operator of another opclass runs exactly."""
    rng = np.random.default_rng(11)
    n = 600
    x = (rng.standard_normal((n, DIM)) * rng.uniform(0.2, 3.0, (n, 1))).astype(np.float32)
    cats = np.arange(n) % 10
    t = f"oc_{mode}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        pgvector_psycopg.register_vector(c)
        _load(c, t, x, cats)
        c.execute(f"CREATE INDEX {t}_ix ON {t} USING hnsw (emb {opclass})")
        c.execute("SET hnsw.ef_search = 40")
        c.execute("SET ivfflat.probes = 3")
        for _ in range(3):
            q = rng.standard_normal(DIM).astype(np.float32)
            want = _oracle(x, q, op)
            for where, allowed, k in (("", np.arange(n), 10),
                                      ("WHERE cat = 3", np.flatnonzero(cats == 3), 10),
                                      ("WHERE cat = 3 AND id < 45", np.array([3, 13, 23, 33, 43]),
                                       10)):
                sql = f"SELECT id, emb {op} %s FROM {t} {where} ORDER BY emb {op} %s LIMIT {k}"
                plan = [r[0] for r in c.execute("EXPLAIN " + sql, (q, q))]
                if allowed.size >= k:
                    assert plan[0].startswith(f"Top-{k} {mode} on {t}.emb"), plan[0]
                    assert f"index {t}_ix" in plan[0], plan[0]
                # (fewer matching rows than k: the exact SQL runs, NULL distances last)
                rows = c.execute(sql, (q, q)).fetchall()
                best = allowed[np.argsort(want[allowed], kind="stable")[:k]]
                assert len(rows) == min(k, allowed.size)
                assert [r[0] for r in rows] == best.tolist()
                np.testing.assert_allclose([r[1] for r in rows], want[best], rtol=1e-5,
                                           atol=1e-5)
        # The other operators are not this index's: exact (cosine) or left to SQL.
        q = rng.standard_normal(DIM).astype(np.float32)
        for _, other, _mode in _OPCLASS_OPS:
            if other == op:
                continue
            plan = [r[0] for r in c.execute(
                f"EXPLAIN SELECT id FROM {t} ORDER BY emb {other} %s LIMIT 5", (q,))]
            assert f"index {t}_ix" not in " ".join(plan), plan
            rows = c.execute(f"SELECT id FROM {t} ORDER BY emb {other} %s LIMIT 5",
                             (q,)).fetchall()
            assert [r[0] for r in rows] == np.argsort(_oracle(x, q, other),
                                                      kind="stable")[:5].tolist()
        # The row without a vector comes last, as pgvector sorts a NULL distance.
        rows = c.execute(f"SELECT id FROM {t} WHERE cat = 0 ORDER BY emb {op} %s "
                         f"LIMIT 100", (q,)).fetchall()
        assert len(rows) == 61 and rows[-1][0] == n


@pytest.mark.parametrize("metric", ["l2", "dot"])
def test_l2_and_ip_orderings_use_the_ann_index(pg_server: Server, metric: str) -> None:
    """Above the index's exact-scan size (here ``ann_min_rows`` = 1000, through
    ``USING deeplake_index ... WITH (metric = ...)``, which a pgvector opclass sets) the
    ordering runs on the ANN, calibrated for recall@10 >= 0.95 in that metric."""
    rng = np.random.default_rng(5 if metric == "l2" else 6)
    n, clusters = 4000, 40
    centers = rng.standard_normal((clusters, DIM)).astype(np.float32) * 4
    x = (centers[rng.integers(0, clusters, n)]
         + rng.standard_normal((n, DIM)).astype(np.float32))
    if metric == "dot":
        x *= rng.uniform(0.5, 1.5, (n, 1)).astype(np.float32)
    cats = rng.integers(0, 10, n)
    op = "<->" if metric == "l2" else "<#>"
    t = f"ann_{metric}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        pgvector_psycopg.register_vector(c)
        _load(c, t, x, cats)
        c.execute(f"CREATE INDEX {t}_ix ON {t} USING deeplake_index (emb) "
                  f"WITH (metric = '{metric}', ann_min_rows = 1000)")
        recalls = []
        for i in range(20):
            q = (x[rng.integers(0, n)] + 0.5 * rng.standard_normal(DIM)).astype(np.float32)
            want = _oracle(x, q, op)
            sql = f"SELECT id FROM {t} ORDER BY emb {op} %s LIMIT 10"
            if i == 0:
                plan = [r[0] for r in c.execute("EXPLAIN " + sql, (q,))]
                # The ANN, or, when the calibrated probe count would read 30% of the rows or
                # more (here 6-8 of 31 lists, depending on the lists k-means found), one exact
                # product over the index's in-memory copy: both are the index's own choice.
                assert re.match(rf"Top-10 {metric} on {t}\.emb: (ANN on {t}_ix|exact scan "
                                rf"of all rows of index {t}_ix \(recall 0\.95 needs \d+ of "
                                rf"\d+ lists\))", plan[0]), plan
            got = [r[0] for r in c.execute(sql, (q,)).fetchall()]
            assert len(got) == 10
            recalls.append(len(set(got) & set(np.argsort(want)[:10].tolist())) / 10)
            # Filtered (10%): every allowed row is a candidate, never under-filled.
            rows = c.execute(f"SELECT id FROM {t} WHERE cat = 4 ORDER BY emb {op} %s "
                             "LIMIT 10", (q,)).fetchall()
            allowed = np.flatnonzero(cats == 4)
            assert [r[0] for r in rows] == allowed[np.argsort(want[allowed])[:10]].tolist()
        assert float(np.mean(recalls)) >= 0.95, recalls
        # A row written after the index was built (not folded in yet) is scored exactly.
        q = rng.standard_normal(DIM).astype(np.float32)
        c.execute(f"INSERT INTO {t} (id, cat, emb) VALUES (%s, 4, %s)",
                  (n + 1, q if metric == "l2" else 100 * q))
        for where in ("", "WHERE cat = 4"):
            assert c.execute(f"SELECT id FROM {t} {where} ORDER BY emb {op} %s LIMIT 10",
                             (q,)).fetchall()[0] == (n + 1,)
        c.execute(f"CREATE TABLE {t}_b (emb vector(2))")
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            c.execute(f"CREATE INDEX ON {t}_b USING deeplake_index (emb) WITH (metric = 'l1')")


@pytest.fixture(scope="module")
def three(pg_server: Server) -> tuple[str, np.ndarray]:
    """One table, three vector columns, each with the index of one opclass."""
    rng = np.random.default_rng(21)
    n = 300
    x = (rng.standard_normal((n, DIM)) * rng.uniform(0.3, 2.0, (n, 1))).astype(np.float32)
    t = f"three_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        pgvector_psycopg.register_vector(c)
        c.execute(f"CREATE TABLE {t} (id BIGINT PRIMARY KEY, cat INT, ec vector({DIM}), "
                  f"el vector({DIM}), ei vector({DIM}))")
        with c.cursor() as cur:
            cur.executemany(f"INSERT INTO {t} VALUES (%s, %s, %s, %s, %s)",
                            [(i, i % 7, x[i], x[i], x[i]) for i in range(n)])
        for col, opclass in (("ec", "vector_cosine_ops"), ("el", "vector_l2_ops"),
                             ("ei", "vector_ip_ops")):
            c.execute(f"CREATE INDEX ON {t} USING hnsw ({col} {opclass})")
    return t, x


@pytest.mark.parametrize(("col", "op"), [("ec", "<=>"), ("el", "<->"), ("ei", "<#>")])
@pytest.mark.parametrize("select, where, tail", [
    ("id, {col} {op} %s AS d", "", "ORDER BY d LIMIT 10"),
    ("id, {col} {op} %s", "", "ORDER BY 2 LIMIT 10"),
    ("id, cat", "WHERE cat = 3 ", "ORDER BY {col} {op} %s LIMIT 5 OFFSET 2"),
    ("*", "WHERE cat BETWEEN 1 AND 4 AND id <> 7 ", "ORDER BY {col} {op} %s ASC LIMIT 8"),
])
def test_pgvector_orderings_on_the_direct_path_match_the_general_path(
        pg_server: Server, three: Any, col: str, op: str, select: str, where: str,
        tail: str) -> None:
    """pgvector's orderings skip DuckDB (engine/planner.py try_direct) with the same rows,
    distances and column types as the general path (a second sort key sends it there)."""
    t, x = three
    q = (x[5] + 0.05).astype(np.float32)
    direct = f"SELECT {select} FROM {t} {where}{tail}".format(col=col, op=op)
    general = direct.replace("LIMIT", ", id LIMIT", 1)
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        pgvector_psycopg.register_vector(c)
        n_params = direct.count("%s")
        cur = c.execute(direct, (q,) * n_params)
        rows1, d1 = cur.fetchall(), [(d.name, d.type_code) for d in cur.description]
        cur = c.execute(general, (q,) * n_params)
        rows2, d2 = cur.fetchall(), [(d.name, d.type_code) for d in cur.description]
    assert d1 == d2 and rows1
    assert len(rows1) == len(rows2)
    for a, b in zip(rows1, rows2, strict=True):
        for u, v in zip(a, b, strict=True):
            if isinstance(u, float):
                assert u == pytest.approx(v, rel=1e-5, abs=1e-6)
            elif hasattr(u, "to_numpy") or isinstance(u, np.ndarray):
                np.testing.assert_array_equal(_np(u), _np(v))
            else:
                assert u == v


def test_which_pgvector_shapes_take_the_direct_path(session: Any) -> None:
    from tarndb.engine.planner import try_direct
    from tarndb.sql import ast

    session.execute("CREATE EXTENSION IF NOT EXISTS vector")
    session.execute("CREATE TABLE dv (id INT, ec vector(2), el vector(2), ei vector(2), "
                    "f REAL[], h halfvec(2))")
    session.execute("INSERT INTO dv VALUES (1, '[1,0]', '[1,0]', '[1,0]', '{1,0}', '[1,0]'), "
                    "(2, '[0,1]', '[0,1]', '[0,1]', '{0,1}', '[0,1]')")
    session.execute("CREATE INDEX ON dv USING hnsw (ec vector_cosine_ops)")
    session.execute("CREATE INDEX ON dv USING hnsw (el vector_l2_ops)")
    session.execute("CREATE INDEX ON dv USING ivfflat (ei vector_ip_ops)")

    def direct(sql: str, params: list[Any] | None = None) -> Any:
        stmt = ast.parse(sql).stmts[0].stmt
        return try_direct(session, stmt, params or [])

    q = "'[1,0.2]'"
    r = direct(f"SELECT id, el <-> {q} FROM dv ORDER BY el <-> {q} LIMIT 2")
    assert r is not None and r.rows == [(1, pytest.approx(0.2)), (2, pytest.approx(1.64 ** .5))]
    r = direct(f"SELECT id, ei <#> {q} FROM dv ORDER BY ei <#> {q} LIMIT 2")
    assert r is not None and r.rows == [(1, pytest.approx(-1.0)), (2, pytest.approx(-0.2))]
    assert direct(f"SELECT id FROM dv ORDER BY ec <=> {q} LIMIT 1") is not None
    assert direct(f"SELECT id FROM dv ORDER BY f <=> {q}::real[] LIMIT 1") is not None
    # Not this index's metric, no index of it, DESC, halfvec, more rows than have a vector,
    # a zero query (NaN cosine distances): the general path.
    assert direct(f"SELECT id FROM dv ORDER BY el <=> {q} LIMIT 1") is not None  # cosine: exact
    assert direct(f"SELECT id FROM dv ORDER BY ec <-> {q} LIMIT 1") is None
    assert direct(f"SELECT id FROM dv ORDER BY f <-> {q}::real[] LIMIT 1") is None
    assert direct(f"SELECT id FROM dv ORDER BY el <-> {q} DESC LIMIT 1") is None
    assert direct(f"SELECT id FROM dv ORDER BY h <-> {q} LIMIT 1") is None
    assert direct(f"SELECT id FROM dv ORDER BY el <-> {q} LIMIT 3") is None
    assert direct("SELECT id FROM dv ORDER BY ec <=> '[0,0]' LIMIT 1") is None


def test_integer_filter_follows_updates_and_deletes(pg_server: Server) -> None:
    """``WHERE int_col = $2`` is answered from the column's in-memory copy: after an UPDATE
    of the column and a DELETE the ordering sees the current rows (and NULLs never match)."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((200, 8)).astype(np.float32)
    t = f"flt_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        pgvector_psycopg.register_vector(c)
        c.execute(f"CREATE TABLE {t} (id INT, cat INT, emb vector(8))")
        with c.cursor() as cur:
            cur.executemany(f"INSERT INTO {t} VALUES (%s, %s, %s)",
                            [(i, None if i % 10 == 9 else i % 3, x[i]) for i in range(200)])
        c.execute(f"CREATE INDEX ON {t} USING hnsw (emb vector_l2_ops)")
        cats = np.array([-1 if i % 10 == 9 else i % 3 for i in range(200)])
        q = x[4]
        sql = f"SELECT id FROM {t} WHERE cat = %s ORDER BY emb <-> %s LIMIT 5"

        def want(cat: int) -> list[int]:
            ok = np.flatnonzero(cats == cat)
            return ok[np.argsort(np.linalg.norm(x[ok] - q, axis=1))[:5]].tolist()

        assert [r[0] for r in c.execute(sql, (1, q))] == want(1) and want(1)[0] == 4
        gone = want(1)[1]
        c.execute(f"UPDATE {t} SET cat = 2 WHERE id = 4")
        c.execute(f"DELETE FROM {t} WHERE id = {gone}")
        cats[4], cats[gone] = 2, -2
        assert [r[0] for r in c.execute(sql, (1, q))] == want(1)
        assert [r[0] for r in c.execute(sql, (2, q))][0] == 4
        assert c.execute(f"SELECT count(*) FROM ({sql}) s", (7, q)).fetchone() == (0,)
