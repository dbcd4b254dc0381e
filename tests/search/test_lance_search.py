"""Index-aware top-k over real Lance tables against brute-force numpy oracles.

Exact modes must match the oracle exactly (same keys, scores within float32 rounding);
indexed modes must meet recall@10 >= 0.95 (vectors) / 0.9 (MaxSim), never be under-filled
and never return a row outside the filter, also after deletes, updates and fresh inserts.
"""

from __future__ import annotations

from pathlib import Path

import lance
import numpy as np
import pyarrow as pa
import pytest

import tarndb.search._lance_vector as vector_mod
import tarndb.search._manager as manager_mod
from tarndb.errors import DataError, DuplicateObject, InvalidParameterValue, UndefinedObject
from tarndb.search import IndexManager, bm25_topk, hybrid_topk, maxsim_topk, vector_topk

N = 6000
# Indexes in these tests train Lance IVF from this many rows (the default is 50k), so the
# ANN paths really run at test scale.
ANN = {"ann_min_rows": 4096}
D = 32
WORDS = [f"w{i}" for i in range(300)] + ["東京", "京都", "天気"]


def _vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    # Clustered data, as embeddings are; uniform noise would make every ANN look bad.
    centers = rng.standard_normal((40, D)) * 3
    return (centers[rng.integers(0, 40, n)] + rng.standard_normal((n, D))).astype(np.float32)


def _texts(rng: np.random.Generator, n: int) -> list[str]:
    return [" ".join(rng.choice(WORDS, int(rng.integers(3, 15)))) for _ in range(n)]


def _table(rids: np.ndarray, vecs: np.ndarray, texts: list[str],
           bags: list[np.ndarray] | None = None) -> pa.Table:
    cols = {
        "__rid": pa.array(rids, pa.int64()),
        "emb": pa.array(list(vecs), pa.list_(pa.float32())),
        "body": pa.array(texts, pa.string()),
        "cat": pa.array((rids % 1000).astype(np.int64)),
    }
    if bags is not None:
        cols["toks"] = pa.array([b.tolist() for b in bags], pa.list_(pa.list_(pa.float32())))
    return pa.table(cols)


class Oracle:
    """The table's live content in numpy, updated alongside the Lance table."""

    def __init__(self) -> None:
        self.rows: dict[int, tuple[np.ndarray, str, np.ndarray | None]] = {}

    def put(self, rids: np.ndarray, vecs: np.ndarray, texts: list[str],
            bags: list[np.ndarray] | None = None) -> None:
        for i, r in enumerate(rids.tolist()):
            self.rows[r] = (vecs[i], texts[i], None if bags is None else bags[i])

    def keys(self, pred: object = None) -> np.ndarray:
        ks = np.array(sorted(self.rows), np.int64)
        if pred is not None:
            ks = ks[[bool(pred(k)) for k in ks.tolist()]]  # type: ignore[operator]
        return ks

    def cosine_topk(self, q: np.ndarray, k: int, pred: object = None) -> tuple[list[int],
                                                                               np.ndarray]:
        ks = self.keys(pred)
        m = np.stack([self.rows[k_][0] for k_ in ks.tolist()]).astype(np.float64)
        s = m @ q / (np.linalg.norm(m, axis=1) * np.linalg.norm(q))
        order = np.lexsort((ks, -s))[:k]
        return ks[order].tolist(), s[order]

    def maxsim_topk(self, q: np.ndarray, k: int, pred: object = None) -> tuple[list[int],
                                                                               np.ndarray]:
        ks = self.keys(pred)
        qn = q / np.linalg.norm(q, axis=1, keepdims=True)
        s = []
        for key in ks.tolist():
            b = self.rows[key][2].astype(np.float64)  # type: ignore[union-attr]
            b = b / np.linalg.norm(b, axis=1, keepdims=True)
            s.append((b @ qn.T).max(axis=0).sum())
        sa = np.array(s)
        order = np.lexsort((ks, -sa))[:k]
        return ks[order].tolist(), sa[order]


FILTERS = {  # SQL filter, python predicate, selectivity
    "0.1%": ("cat < 1", lambda r: r % 1000 < 1),
    "10%": ("cat < 100", lambda r: r % 1000 < 100),
    "90%": ("cat < 900", lambda r: r % 1000 < 900),
}


@pytest.fixture(scope="module")
def vec_table(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Oracle, np.ndarray]:
    rng = np.random.default_rng(7)
    uri = str(tmp_path_factory.mktemp("lake") / "t.lance")
    rids = np.arange(N, dtype=np.int64)
    vecs = _vectors(rng, N)
    texts = _texts(rng, N)
    lance.write_dataset(_table(rids, vecs, texts), uri)
    oracle = Oracle()
    oracle.put(rids, vecs, texts)
    queries = (vecs[rng.integers(0, N, 20)] + rng.standard_normal((20, D))).astype(np.float32)
    return uri, oracle, queries


def _recall(got: list[int], want: list[int]) -> float:
    return len(set(got) & set(want)) / max(len(want), 1)


def test_exact_vector_matches_oracle_with_filters(vec_table: tuple[str, Oracle, np.ndarray],
                                                  ) -> None:
    uri, oracle, queries = vec_table
    ds = lance.dataset(uri)
    for sql, pred in [(None, None), *FILTERS.values()]:
        for q in queries[:5]:
            hits = vector_topk(ds, "emb", q, 10, filter_sql=sql, exact=True)
            want_k, want_s = oracle.cosine_topk(q, 10, pred)
            assert hits.row_keys.tolist() == want_k
            np.testing.assert_allclose(hits.scores, want_s, atol=2e-6)


def test_no_index_dimension_mismatch(vec_table: tuple[str, Oracle, np.ndarray]) -> None:
    uri, _, _ = vec_table
    with pytest.raises(DataError, match="dimension mismatch"):
        vector_topk(lance.dataset(uri), "emb", np.ones(D + 1), 5)


@pytest.mark.parametrize("matrix", ["memory", "mapped", "none"])
@pytest.mark.parametrize("index_type", ["clustered", "clustered_quantized"])
def test_vector_index_recall_filters_deletes_updates(
        tmp_path: Path, index_type: str, matrix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # At test scale every filter would take the exact path; lower the switch-over so that
    # the 10% and 90% filters run filtered ANN (row-address prefilter) as at full scale.
    monkeypatch.setattr(manager_mod, "EXACT_MAX_ROWS", 50)
    monkeypatch.setattr(manager_mod, "EXACT_MAX_FRACTION", 0.001)
    # Where exact scores come from: the in-memory copy (small indexes), the memory-mapped
    # file (large ones, forced here by a zero memory budget), or Lance takes (neither fits).
    cache = tmp_path / "matrix-cache"
    monkeypatch.setenv("TARNDB_SEARCH_CACHE", str(cache))
    if matrix != "memory":
        monkeypatch.setattr(vector_mod, "MATRIX_CACHE_FLOATS", 0)
    if matrix == "none":
        monkeypatch.setattr(vector_mod, "MATRIX_MMAP_MAX_BYTES", 0)
    rng = np.random.default_rng(11)
    uri = str(tmp_path / "v.lance")
    rids = np.arange(N, dtype=np.int64)
    vecs = _vectors(rng, N)
    texts = _texts(rng, N)
    ds = lance.write_dataset(_table(rids, vecs, texts), uri)
    oracle = Oracle()
    oracle.put(rids, vecs, texts)
    mgr = IndexManager.open(uri)
    info = mgr.create_index(ds, "emb_idx", "emb", index_type, ANN)
    assert info.kind == "vector" and info.dim == D
    assert mgr._side_index(info).has_ann(), "the Lance IVF index must be trained"
    queries = (vecs[rng.integers(0, N, 20)] + rng.standard_normal((20, D))).astype(np.float32)

    def check(ds: lance.LanceDataset, label: str) -> None:
        for name, (sql, pred) in {"none": (None, None), **FILTERS}.items():
            recalls = []
            for q in queries:
                hits = vector_topk(ds, "emb", q, 10, filter_sql=sql)
                want_k, _ = oracle.cosine_topk(q, 10, pred)
                assert len(hits) == len(want_k), (label, name, hits.plan)
                allowed = set(oracle.keys(pred).tolist())
                assert set(hits.row_keys.tolist()) <= allowed, (label, name)
                # Scores are exact cosines even on the ANN path (re-scored).
                exact = {k: s for k, s in zip(*oracle.cosine_topk(q, N, pred), strict=True)}
                np.testing.assert_allclose(
                    hits.scores, [exact[k] for k in hits.row_keys.tolist()], atol=2e-6)
                recalls.append(_recall(hits.row_keys.tolist(), want_k))
            assert np.mean(recalls) >= 0.95, (label, name, np.mean(recalls), hits.plan)
            expect = {"none": "ANN on", "0.1%": "exact scan of", "10%": "filtered ANN",
                      "90%": "postfilter"}[name]
            assert expect in hits.plan, (label, name, hits.plan)

    check(ds, "fresh build")
    side = mgr._side_index(info)
    assert (side.matrix() is not None) == (matrix != "none")
    mapped = sorted(p.name for p in cache.glob("*.f32")) if cache.exists() else []
    assert len(mapped) == (1 if matrix == "mapped" else 0), mapped
    # Deletes, updates (Lance: delete + append) and inserts after the build.
    dead = rids[rng.choice(N, 300, replace=False)]
    ds.delete(f"__rid IN ({','.join(map(str, dead.tolist()))})")
    for r in dead.tolist():
        oracle.rows.pop(r)
    upd = np.array(sorted(set(rng.choice(N, 200, replace=False).tolist()) - set(dead.tolist())))
    ds.delete(f"__rid IN ({','.join(map(str, upd.tolist()))})")
    new_vecs = queries[rng.integers(0, len(queries), upd.size)] + 0.01  # near the queries
    new_texts = _texts(rng, upd.size)
    ds = lance.write_dataset(_table(upd, new_vecs, new_texts), uri, mode="append")
    oracle.put(upd, new_vecs, new_texts)
    ins = np.arange(N, N + 500, dtype=np.int64)
    ins_vecs = _vectors(rng, 500)
    ins_texts = _texts(rng, 500)
    ds = lance.write_dataset(_table(ins, ins_vecs, ins_texts), uri, mode="append")
    oracle.put(ins, ins_vecs, ins_texts)
    assert mgr.pending_rows(ds, "emb_idx") == upd.size + 500
    check(ds, "after writes, before fold")
    mgr.refresh(ds)
    assert mgr.pending_rows(ds, "emb_idx") == 0
    check(ds, "after fold")
    if matrix == "mapped":
        # One file per index version: the fold replaced the earlier one.
        after = sorted(p.name for p in cache.glob("*.f32"))
        assert len(after) == 1 and after != mapped, (mapped, after)
    # A new process sees the same index without a rebuild.
    mgr2 = IndexManager(uri)
    assert mgr2.index_for("emb") is not None
    q = queries[0]
    assert mgr2.vector_topk(ds, "emb", q, 10).row_keys.tolist() == vector_topk(
        ds, "emb", q, 10).row_keys.tolist()
    with pytest.raises(DataError, match="dimension mismatch"):
        vector_topk(ds, "emb", np.ones(D + 3), 5)


def test_index_on_empty_table_fills_and_catalog_errors(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    uri = str(tmp_path / "e.lance")
    empty = _table(np.zeros(0, np.int64), np.zeros((0, D), np.float32), [])
    ds = lance.write_dataset(empty, uri)
    mgr = IndexManager.open(uri)
    mgr.create_index(ds, "e_idx", "emb", None, ANN)
    mgr.create_index(ds, "t_idx", "body", "inverted_index")
    with pytest.raises(DuplicateObject, match="e_idx"):
        mgr.create_index(ds, "other", "emb", "clustered_quantized")
    with pytest.raises(DuplicateObject):
        mgr.create_index(ds, "e_idx", "body")
    assert mgr.create_index(ds, "e_idx", "body", if_not_exists=True).column == "emb"
    with pytest.raises(InvalidParameterValue, match="pooled_quantized"):
        mgr.create_index(ds, "bad", "body", "pooled_quantized")
    with pytest.raises(DataError, match="cannot be searched"):
        mgr.create_index(ds, "bad", "cat")
    assert vector_topk(ds, "emb", np.ones(D), 5).row_keys.tolist() == []
    rids = np.arange(4096 + 100, dtype=np.int64)
    vecs = _vectors(rng, rids.size)
    texts = _texts(rng, rids.size)
    ds = lance.write_dataset(_table(rids, vecs, texts), uri, mode="append")
    oracle = Oracle()
    oracle.put(rids, vecs, texts)
    q = vecs[0]
    hits = vector_topk(ds, "emb", q, 10)
    assert hits.row_keys.tolist() == oracle.cosine_topk(q, 10)[0]  # fresh rows: exact
    assert "exact" in hits.plan
    mgr.after_write(ds, fold_threshold=1)
    assert mgr.pending_rows(ds, "e_idx") == 0
    assert mgr._side_index(mgr.get("e_idx")).has_ann()
    assert _recall(vector_topk(ds, "emb", q, 10).row_keys.tolist(),
                   oracle.cosine_topk(q, 10)[0]) >= 0.9
    mgr.drop_index("e_idx")
    assert mgr.index_for("emb") is None
    assert not (Path(uri) / "_tarn_indexes" / "e_idx").exists()
    with pytest.raises(UndefinedObject):
        mgr.drop_index("e_idx")
    mgr.drop_index("e_idx", if_exists=True)
    assert vector_topk(ds, "emb", q, 10).plan == "exact scan"


def test_bm25_index_matches_exact_with_filters_and_writes(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    uri = str(tmp_path / "b.lance")
    n = 3000
    rids = np.arange(n, dtype=np.int64)
    texts = _texts(rng, n)
    vecs = _vectors(rng, n)
    ds = lance.write_dataset(_table(rids, vecs, texts), uri)
    mgr = IndexManager.open(uri)
    mgr.create_index(ds, "body_idx", "body", "bm25", {"stemmer": None})
    queries = ["w1 w2 w3", "w17", "東京 天気", "w250 w251 w0", "nothing here"]

    def check(ds: lance.LanceDataset) -> None:
        for sql in [None, "cat < 1", "cat < 100", "cat < 900"]:
            for q in queries:
                got = bm25_topk(ds, "body", q, 10, filter_sql=sql)
                want = bm25_topk(ds, "body", q, 10, filter_sql=sql, exact=True)
                assert got.row_keys.tolist() == want.row_keys.tolist(), (sql, q, got.plan)
                np.testing.assert_allclose(got.scores, want.scores, rtol=1e-5)

    check(ds)
    ds.delete("__rid < 100")
    ds = lance.write_dataset(_table(np.arange(100, 150), vecs[:50], ["東京 東京 w17"] * 50),
                             uri, mode="append")  # rows 100..149 deleted and re-added: updates
    ds.delete("__rid >= 100 AND __rid < 150 AND cat = 120")  # covered-fragment deletes
    ds = lance.write_dataset(_table(np.arange(n, n + 40), vecs[:40], ["w17 天気"] * 40), uri,
                             mode="append")
    check(ds)
    assert 0 not in bm25_topk(ds, "body", "w1 w2 w3", 3000).row_keys.tolist()
    mgr.refresh(ds)
    check(ds)
    # Reload from the lake in a fresh manager.
    mgr2 = IndexManager(uri)
    got = mgr2.bm25_topk(ds, "body", "東京", 5)
    assert got.row_keys.tolist() == bm25_topk(ds, "body", "東京", 5, exact=True).row_keys.tolist()
    assert got.plan.startswith("BM25 index")


@pytest.mark.parametrize("mapped", [False, True])
def test_maxsim_pooled_index_recall_and_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              mapped: bool) -> None:
    monkeypatch.setattr(manager_mod, "EXACT_MAX_ROWS", 50)
    if mapped:
        # The pooled vectors and the bags as memory-mapped files, as for large indexes.
        monkeypatch.setattr(vector_mod, "MATRIX_CACHE_FLOATS", 0)
        monkeypatch.setenv("TARNDB_SEARCH_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(9)
    uri = str(tmp_path / "m.lance")
    n = 4096 + 904
    d = 16
    # Each row's token vectors scatter around a row topic, as late-interaction embeddings do.
    topics = rng.standard_normal((60, d)) * 2
    row_topic = rng.integers(0, 60, n)
    bags = [(topics[row_topic[i]] + rng.standard_normal((int(rng.integers(2, 9)), d))
             ).astype(np.float32) for i in range(n)]
    rids = np.arange(n, dtype=np.int64)
    vecs = _vectors(rng, n)
    texts = _texts(rng, n)
    ds = lance.write_dataset(_table(rids, vecs, texts, bags), uri)
    oracle = Oracle()
    oracle.put(rids, vecs, texts, bags)
    qs = [(topics[rng.integers(0, 60)] + rng.standard_normal((4, d))).astype(np.float32)
          for _ in range(10)]
    for q in qs[:3]:
        hits = maxsim_topk(ds, "toks", q, 10, exact=True)
        want_k, want_s = oracle.maxsim_topk(q, 10)
        assert hits.row_keys.tolist() == want_k
        np.testing.assert_allclose(hits.scores, want_s, atol=1e-5)
    mgr = IndexManager.open(uri)
    mgr.create_index(ds, "toks_idx", "toks", None, ANN)
    assert mgr.get("toks_idx").index_type == "pooled_quantized"
    for sql, pred in [(None, None), *FILTERS.values()]:
        rec = []
        for q in qs:
            hits = maxsim_topk(ds, "toks", q, 10, filter_sql=sql)
            want_k, _ = oracle.maxsim_topk(q, 10, pred)
            assert len(hits) == len(want_k)
            assert set(hits.row_keys.tolist()) <= set(oracle.keys(pred).tolist())
            rec.append(_recall(hits.row_keys.tolist(), want_k))
        assert np.mean(rec) >= 0.9, (sql, np.mean(rec), hits.plan)
        # The first stage runs on the index's in-memory copy of the pooled vectors once that
        # is loaded (in the background), on Lance's ANN before: both are the pooled index.
        assert any(p in hits.plan for p in (["exact MaxSim of"] if sql == "cat < 1" else
                                            ["pooled first stage", "pooled ANN on"])), hits.plan
    with pytest.raises(DataError, match="dimension mismatch"):
        maxsim_topk(ds, "toks", np.ones((2, d + 1)), 5)
    # Deletes and fresh rows: the (now stale) index never returns a deleted row, and fresh
    # rows are found at once.
    dead = rids[::7]
    ds.delete(f"__rid IN ({','.join(map(str, dead.tolist()))})")
    for r in dead.tolist():
        oracle.rows.pop(r)
    new_rids = np.arange(n, n + 300, dtype=np.int64)
    new_bags = [(topics[int(rng.integers(0, 60))] + rng.standard_normal((3, d))
                 ).astype(np.float32) for _ in range(300)]
    new_vecs, new_texts = _vectors(rng, 300), _texts(rng, 300)
    ds = lance.write_dataset(_table(new_rids, new_vecs, new_texts, new_bags), uri,
                             mode="append")
    oracle.put(new_rids, new_vecs, new_texts, new_bags)
    rec = []
    for q in qs:
        hits = maxsim_topk(ds, "toks", q, 10)
        want_k, _ = oracle.maxsim_topk(q, 10)
        assert not set(hits.row_keys.tolist()) & set(dead.tolist())
        assert len(hits) == 10
        rec.append(_recall(hits.row_keys.tolist(), want_k))
    assert np.mean(rec) >= 0.9, (np.mean(rec), hits.plan)


@pytest.mark.parametrize("indexed", [False, True])
def test_hybrid_matches_manual_fusion(vec_table: tuple[str, Oracle, np.ndarray],
                                      indexed: bool, tmp_path: Path) -> None:
    from tarndb.search import hybrid_fuse

    uri, oracle, queries = vec_table
    ds = lance.dataset(uri)
    if indexed:
        # Indexed legs, and rescoring that reads vectors from the index's in-memory copy.
        ds = lance.write_dataset(ds.to_table(), str(tmp_path / "h.lance"))
        mgr = IndexManager.open(ds.uri)
        mgr.create_index(ds, "e", "emb")
        mgr.create_index(ds, "b", "body")
    q = queries[1]
    text = "w1 w2 東京"
    pred = FILTERS["90%"][1]
    all_v = dict(zip(*oracle.cosine_topk(q, N, pred), strict=True))
    all_t = dict(zip(*bm25_topk(ds, "body", text, N, filter_sql="cat < 900"), strict=True))
    for method in ("minmax", "rrf", "softmax"):
        v = vector_topk(ds, "emb", q, 50, filter_sql="cat < 900", exact=True)
        t = bm25_topk(ds, "body", text, 50, filter_sql="cat < 900")
        # Legs only: rows missing from a leg count as absent there.
        hits = hybrid_topk(ds, "emb", "body", q, text, 10, w_vec=0.3, w_text=0.7,
                           method=method, depth=50, filter_sql="cat < 900")
        legs_only = hybrid_topk(ds, "emb", "body", q, text, 10, w_vec=0.3, w_text=0.7,
                                method=method, depth=50, filter_sql="cat < 900",
                                rescore=False)
        keys, _ = hybrid_fuse(tuple(v), tuple(t), 0.3, 0.7, method, k=10)
        assert legs_only.row_keys.tolist() == keys.tolist()
        # Rescored: every candidate scored exactly on both sides, from the oracle.
        cand = sorted(set(v.row_keys.tolist()) | set(t.row_keys.tolist()))
        vs = [all_v[c] for c in cand]
        ts = [all_t.get(c, 0.0) for c in cand]
        keys, scores = hybrid_fuse((cand, vs), (cand, ts), 0.3, 0.7, method, k=10)
        assert hits.row_keys.tolist() == keys.tolist(), method
        np.testing.assert_allclose(hits.scores, scores, rtol=1e-5, atol=1e-7)
        assert all(k % 1000 < 900 for k in hits.row_keys.tolist())
        assert ("index e" in hits.plan and "BM25 index b" in hits.plan) == indexed, hits.plan


@pytest.mark.parametrize("indexed", [False, True])
def test_null_embeddings_never_match_and_zero_vectors_score_zero(tmp_path: Path,
                                                                 indexed: bool) -> None:
    emb = [[1.0, 0.0], None, [0.0, 0.0], [0.6, 0.8], None]
    bags = [[[1.0, 0.0]], None, [[0.0, 0.0]], [[0.6, 0.8], [1.0, 0.0]], []]
    t = pa.table({"__rid": pa.array([10, 11, 12, 13, 14], pa.int64()),
                  "emb": pa.array(emb, pa.list_(pa.float32())),
                  "toks": pa.array(bags, pa.list_(pa.list_(pa.float32()))),
                  "body": ["a", "b", "c", "d", "e"]})
    ds = lance.write_dataset(t, str(tmp_path / "n.lance"))
    if indexed:
        mgr = IndexManager.open(ds.uri)
        mgr.create_index(ds, "e", "emb")
        mgr.create_index(ds, "m", "toks")
    hits = vector_topk(ds, "emb", [1.0, 0.0], 10)
    assert hits.row_keys.tolist() == [10, 13, 12]
    np.testing.assert_allclose(hits.scores, [1.0, 0.6, 0.0], atol=1e-6)
    assert not np.isnan(hits.scores).any()
    assert ("index e" in hits.plan) == indexed
    mh = maxsim_topk(ds, "toks", [[1.0, 0.0], [0.0, 1.0]], 10)
    # Row 13: best per query vector 1.0 and 0.8; empty bag 14 and zero bag 12 score 0.
    assert mh.row_keys.tolist() == [13, 10, 12, 14]
    np.testing.assert_allclose(mh.scores, [1.8, 1.0, 0.0, 0.0], atol=1e-6)


def test_bm25_exact_on_a_large_table_uses_its_index(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # 500 rows stand in for a table too large for a transient index (the limit set to 100).
    monkeypatch.setattr(manager_mod, "ADHOC_BM25_MAX_ROWS", 100)
    rng = np.random.default_rng(8)
    uri = str(tmp_path / "big.lance")
    texts = _texts(rng, 500)
    ds = lance.write_dataset(_table(np.arange(500), _vectors(rng, 500), texts), uri)
    with pytest.raises(manager_mod.ProgramLimitExceeded, match="without an index"):
        bm25_topk(ds, "body", "w1 w2", 10)
    mgr = IndexManager.open(uri)
    mgr.create_index(ds, "body_idx", "body", "bm25")
    ds = lance.write_dataset(_table(np.arange(500, 520), _vectors(rng, 20),
                                    ["w1 w1 w2"] * 20), uri, mode="append")
    pinned = bm25_topk(ds, "body", "w1 w2", 10, exact=True)  # what a pinned version runs
    assert pinned.plan.startswith("BM25 index body_idx + 20 fresh rows"), pinned.plan
    # The same answer as a transient index over the rows (limit lifted).
    monkeypatch.setattr(manager_mod, "ADHOC_BM25_MAX_ROWS", 10_000)
    oracle = bm25_topk(ds, "body", "w1 w2", 10, exact=True)
    assert oracle.plan.startswith("BM25 over a transient index")
    assert pinned.row_keys.tolist() == oracle.row_keys.tolist()
    np.testing.assert_allclose(pinned.scores, oracle.scores, rtol=1e-5)
