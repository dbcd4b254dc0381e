"""The pooled MaxSim index (``float4[][]`` with ``deeplake_index``) through a real server and
psycopg: its answer equals the exact one when the candidate pool covers the table, its
recall@10 against the exact answer stays above a floor on seeded synthetic bags (below
``ann_min_rows``: an exact pooled first stage; above: the in-memory IVF probe), and rows
inserted or deleted after the index was built are seen at once."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import psycopg
import pyarrow as pa
import pytest

import tarndb

from ._probes import connect, serve

N, D, TOPICS, K = 3000, 16, 80, 10
rng = np.random.default_rng(18)
TOPIC_VECS = rng.standard_normal((TOPICS, D)).astype(np.float32)
# Each bag's token vectors scatter around its row's topic, as late-interaction embeddings do.
BAGS = [(TOPIC_VECS[rng.integers(0, TOPICS)] * 0.8
         + rng.standard_normal((int(rng.integers(3, 12)), D))).astype(np.float32)
        for _ in range(N)]
QUERIES = [(TOPIC_VECS[rng.integers(0, TOPICS)] * 0.8
            + rng.standard_normal((6, D))).astype(np.float32) for _ in range(25)]
# Each table: its index's WITH options.
TABLES = {
    "small": "",  # below ann_min_rows: the first stage scores every pooled vector
    "ivf": "WITH (ann_min_rows = 1000, nprobes = 4)",  # an IVF index, 4 lists probed
    "covered": f"WITH (candidates = {N})",  # the candidate pool is the whole table
}


def unit(m: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(m, axis=-1, keepdims=True)
    return m / np.where(n > 0, n, 1)


def exact(q: np.ndarray, bags: dict[int, np.ndarray]) -> tuple[list[int], list[float]]:
    """The exact top-k by MaxSim, in float64 (ties: lower id first)."""
    qn = unit(q.astype(np.float64))
    keys = sorted(bags)
    s = np.array([float((unit(bags[k].astype(np.float64)) @ qn.T).max(axis=0).sum())
                  for k in keys])
    order = np.lexsort((np.array(keys), -s))[:K]
    return [keys[i] for i in order], s[order].tolist()


def lit(m: np.ndarray) -> str:
    return "'{" + ",".join("{" + ",".join(f"{x:.7g}" for x in row) + "}"
                           for row in m.tolist()) + "}'"


def bags_arrow(bags: list[np.ndarray]) -> pa.ListArray:
    offsets = np.concatenate([[0], np.cumsum([b.shape[0] for b in bags])]).astype(np.int32)
    inner = pa.FixedSizeListArray.from_arrays(
        pa.array(np.concatenate(bags).reshape(-1)), D).cast(pa.list_(pa.float32()))
    return pa.ListArray.from_arrays(pa.array(offsets), inner)


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    tmp = tmp_path_factory.mktemp("maxsim")
    db = tarndb.open(str(tmp / "lake"))
    s = db.session()
    for name, opts in TABLES.items():
        s.execute(f"CREATE TABLE {name} (id int8 PRIMARY KEY, toks float4[][])")
        s.insert_arrow(name, pa.table({"id": pa.array(np.arange(N), pa.int64()),
                                       "toks": bags_arrow(BAGS)}))
        s.execute(f"CREATE INDEX {name}_toks ON {name} USING deeplake_index (toks) {opts}")
    s.close()
    with serve(db, tmp) as served:
        yield served


def top(c: psycopg.Connection, table: str, q: np.ndarray) -> tuple[list[int], list[float]]:
    rows = c.execute(f"SELECT id, toks <#> {lit(q)} AS s FROM {table} "
                     f"ORDER BY s DESC LIMIT {K}").fetchall()
    return [int(r[0]) for r in rows], [float(r[1]) for r in rows]


def plan(c: psycopg.Connection, table: str, q: np.ndarray) -> str:
    return str(c.execute(f"EXPLAIN SELECT id FROM {table} ORDER BY toks <#> {lit(q)} "
                         f"LIMIT {K}").fetchall()[0][0])


def test_pool_covering_the_table_equals_exact(port: int) -> None:
    bags = dict(enumerate(BAGS))
    with connect(port) as c:
        assert "exact MaxSim via covered_toks" in plan(c, "covered", QUERIES[0])
        version = max(r[0] for r in c.execute(
            "SELECT version FROM tarndb_versions('covered')").fetchall())
        for q in QUERIES[:8]:
            keys, scores = top(c, "covered", q)
            want_keys, want_scores = exact(q, bags)
            assert keys == want_keys
            np.testing.assert_allclose(scores, want_scores, atol=1e-4)
            # The same rows and scores as the exact scan of a pinned version.
            assert (keys, pytest.approx(scores, abs=1e-5)) == top(c, f'"covered@{version}"', q)


@pytest.mark.parametrize("table,floor", [("small", 0.95), ("ivf", 0.9)])
def test_recall_floor_against_exact(port: int, table: str, floor: float) -> None:
    bags = dict(enumerate(BAGS))
    with connect(port) as c:
        how = plan(c, table, QUERIES[0])
        assert "pooled first stage" in how
        assert ("below ann_min_rows" in how) == (table == "small"), how
        assert ("4 probed, in memory" in how) == (table == "ivf"), how
        recall = []
        for q in QUERIES:
            keys, scores = top(c, table, q)
            want = exact(q, bags)[0]
            assert len(keys) == K and scores == sorted(scores, reverse=True)
            recall.append(len(set(keys) & set(want)) / K)
    assert np.mean(recall) >= floor, (table, np.mean(recall), how)


@pytest.mark.parametrize("table", ["small", "ivf"])
def test_inserts_and_deletes_after_the_build_are_seen(port: int, table: str) -> None:
    q = QUERIES[3]
    bags = dict(enumerate(BAGS))
    with connect(port) as c:
        before, _ = top(c, table, q)
        # A row whose bag is the query itself scores the most any bag can (1 per query
        # vector): it must come first; the best old row, deleted, must be gone.
        c.execute(f"INSERT INTO {table} (id, toks) VALUES (%s, {lit(q)})", (N + 1,))
        c.execute(f"DELETE FROM {table} WHERE id = %s", (before[0],))
        bags[N + 1] = q
        del bags[before[0]]
        keys, scores = top(c, table, q)
        assert keys[0] == N + 1 and scores[0] == pytest.approx(q.shape[0], abs=1e-4)
        assert before[0] not in keys
        assert len(set(keys) & set(exact(q, bags)[0])) >= K - 1
        # An UPDATE replaces a row's bag: an old row made a copy of the query ties the new
        # one at the top.
        c.execute(f"UPDATE {table} SET toks = {lit(q)} WHERE id = %s", (before[-1],))
        keys, scores = top(c, table, q)
        assert set(keys[:2]) == {N + 1, before[-1]}
        assert scores[1] == pytest.approx(q.shape[0], abs=1e-4)
