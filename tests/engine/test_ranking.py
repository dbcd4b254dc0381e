"""ORDER BY <#> LIMIT k through SQL, with and without deeplake_index, under filters of
0.1%, 10% and 90% selectivity, after deletes and updates, against numpy oracles."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import tarndb

N, DIM, K = 3000, 32, 10
rng = np.random.default_rng(11)
VECS = rng.standard_normal((N, DIM)).astype(np.float32)
BAGS = [rng.standard_normal((int(rng.integers(2, 6)), 16)).astype(np.float32) for _ in range(N)]
WORDS = ["alpha", "beta", "gamma", "delta", "kernel", "panic", "login", "token", "cache", "disk"]
TEXTS = [" ".join(rng.choice(WORDS, size=5)) for _ in range(N)]


def cos(q: np.ndarray, m: np.ndarray) -> np.ndarray:
    return m @ q / (np.linalg.norm(m, axis=1) * np.linalg.norm(q))


def maxsim(q: np.ndarray, bag: np.ndarray) -> float:
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    bn = bag / np.linalg.norm(bag, axis=1, keepdims=True)
    return float((qn @ bn.T).max(axis=1).sum())


def vec_lit(v: np.ndarray) -> str:
    return "ARRAY[" + ",".join(f"{x:.6f}" for x in v) + "]::float4[]"


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> tarndb.Session:
    db = tarndb.open(str(tmp_path_factory.mktemp("rank") / "lake"))
    s = db.session()
    s.execute("CREATE TABLE docs (id INT PRIMARY KEY, bucket INT, emb FLOAT4[], "
              "bag FLOAT4[][], body TEXT)")
    offsets = np.concatenate([[0], np.cumsum([b.shape[0] for b in BAGS])]).astype(np.int32)
    inner = pa.FixedSizeListArray.from_arrays(
        pa.array(np.concatenate(BAGS).reshape(-1)), 16).cast(pa.list_(pa.float32()))
    s.insert_arrow("docs", pa.table({
        "id": pa.array(np.arange(N), pa.int32()),
        "bucket": pa.array(np.arange(N) % 1000, pa.int32()),
        "emb": pa.FixedSizeListArray.from_arrays(pa.array(VECS.reshape(-1)), DIM).cast(
            pa.list_(pa.float32())),
        "bag": pa.ListArray.from_arrays(pa.array(offsets), inner),
        "body": TEXTS,
    }))
    return s


FILTERS = {  # selectivity -> (SQL, numpy mask)
    "none": ("", np.ones(N, bool)),
    "0.1%": ("WHERE bucket = 7", np.arange(N) % 1000 == 7),
    "10%": ("WHERE bucket < 100", np.arange(N) % 1000 < 100),
    "90%": ("WHERE bucket >= 100", np.arange(N) % 1000 >= 100),
}


def ids(s: tarndb.Session, sql: str) -> list[int]:
    return [r[0] for r in s.execute(sql).rows]


@pytest.mark.parametrize("flt", list(FILTERS))
def test_cosine_exact_matches_numpy(table: tarndb.Session, flt: str) -> None:
    where, mask = FILTERS[flt]
    q = rng.standard_normal(DIM).astype(np.float32)
    got = table.execute(f"SELECT id, emb <#> {vec_lit(q)} AS s FROM docs {where} "
                        f"ORDER BY s DESC LIMIT {K}").rows
    scores = np.where(mask, cos(q, VECS), -np.inf)
    expected = np.argsort(-scores, kind="stable")[:min(K, int(mask.sum()))]
    assert [r[0] for r in got] == expected.tolist()
    np.testing.assert_allclose([r[1] for r in got], scores[expected], rtol=1e-5)


@pytest.mark.parametrize("flt", list(FILTERS))
def test_maxsim_exact_matches_numpy(table: tarndb.Session, flt: str) -> None:
    where, mask = FILTERS[flt]
    q = rng.standard_normal((3, 16)).astype(np.float32)
    lit = "ARRAY" + str(q.tolist()) + "::float4[][]"
    got = ids(table, f"SELECT id, bag <#> {lit} AS s FROM docs {where} ORDER BY s DESC "
                     f"LIMIT {K}")
    scores = np.array([maxsim(q, b) if m else -np.inf for b, m in zip(BAGS, mask, strict=True)])
    assert got == np.argsort(-scores, kind="stable")[:min(K, int(mask.sum()))].tolist()


def test_bm25_matches_oracle_order(table: tarndb.Session) -> None:
    got = table.execute("SELECT id, body <#> 'kernel panic' AS s FROM docs WHERE bucket < 100 "
                        "ORDER BY s DESC LIMIT 10").rows
    assert len(got) == 10
    for i, _ in got:
        assert "kernel" in TEXTS[i] or "panic" in TEXTS[i]
        assert i % 1000 < 100
    scores = [r[1] for r in got]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("flt", list(FILTERS))
def test_cosine_with_index_meets_recall_and_fills(table: tarndb.Session, flt: str) -> None:
    table.execute("CREATE INDEX IF NOT EXISTS docs_emb ON docs USING deeplake_index (emb DESC)")
    where, mask = FILTERS[flt]
    recalls = []
    for _ in range(10):
        q = rng.standard_normal(DIM).astype(np.float32)
        got = ids(table, f"SELECT id, emb <#> {vec_lit(q)} AS s FROM docs {where} "
                         f"ORDER BY s DESC LIMIT {K}")
        scores = np.where(mask, cos(q, VECS), -np.inf)
        want = min(K, int(mask.sum()))
        expected = set(np.argsort(-scores)[:want].tolist())
        assert len(got) == want  # never under-filled
        assert all(mask[i] for i in got)
        recalls.append(len(expected & set(got)) / want)
    assert np.mean(recalls) >= 0.95
    plan = "\n".join(r[0] for r in table.execute(
        f"EXPLAIN SELECT id, emb <#> {vec_lit(q)} AS s FROM docs {where} "
        f"ORDER BY s DESC LIMIT {K}").rows)
    assert "Top-10 cosine" in plan


def test_index_sees_deletes_updates_and_new_rows(table: tarndb.Session) -> None:
    table.execute("CREATE INDEX IF NOT EXISTS docs_emb ON docs USING deeplake_index (emb DESC)")
    q = VECS[42]
    assert ids(table, f"SELECT id, emb <#> {vec_lit(q)} AS s FROM docs ORDER BY s DESC "
                      "LIMIT 1") == [42]
    table.execute("DELETE FROM docs WHERE id = 42")
    assert 42 not in ids(table, f"SELECT id, emb <#> {vec_lit(q)} AS s FROM docs "
                                "ORDER BY s DESC LIMIT 5")
    table.execute(f"UPDATE docs SET emb = {vec_lit(q)} WHERE id = 7")
    assert ids(table, f"SELECT id, emb <#> {vec_lit(q)} AS s FROM docs ORDER BY s DESC "
                      "LIMIT 1") == [7]
    table.execute(f"INSERT INTO docs (id, bucket, emb) VALUES (5000, 1, {vec_lit(-q)})")
    assert ids(table, f"SELECT id, emb <#> {vec_lit(-q)} AS s FROM docs ORDER BY s DESC "
                      "LIMIT 1") == [5000]


def test_second_index_on_a_column_is_an_error(table: tarndb.Session) -> None:
    table.execute("CREATE INDEX IF NOT EXISTS docs_emb ON docs USING deeplake_index (emb DESC)")
    with pytest.raises(tarndb.errors.DuplicateObject) as info:
        table.execute("CREATE INDEX other ON docs USING deeplake_index (emb)")
    assert "docs_emb" in info.value.message
    table.execute("CREATE INDEX docs_body ON docs USING deeplake_index (body) "
                  "WITH (index_type = 'bm25')")
    table.execute("DROP INDEX docs_body")
    with pytest.raises(tarndb.errors.UndefinedObject):
        table.execute("DROP INDEX docs_body")
