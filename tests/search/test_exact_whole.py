"""The exact vector scan keeps a small table's vectors as one part per table version
(search/_exact.py ``_whole_part``): a table of many small fragments is one product per
query. Its answers are checked against numpy after appends, deletes and updates (each a new
version), with and without allowed keys, and against the per-fragment path."""

from __future__ import annotations

from pathlib import Path

import lance
import numpy as np
import pyarrow as pa
import pytest

import tarndb.search._exact as exact_mod
from tarndb.errors import DataError
from tarndb.search._exact import exact_vector_topk

D = 12


def _table(rids: np.ndarray, vecs: np.ndarray) -> pa.Table:
    return pa.table({"__rid": pa.array(rids, pa.int64()),
                     "emb": pa.array(list(vecs.astype(np.float32)), pa.list_(pa.float32()))})


def _oracle(rows: dict[int, np.ndarray], q: np.ndarray, k: int, metric: str,
            allowed: np.ndarray | None = None) -> list[int]:
    keys = sorted(r for r in rows if allowed is None or r in set(allowed.tolist()))
    m = np.array([rows[r] for r in keys], np.float64)
    q64 = q.astype(np.float64)
    if metric == "cosine":
        s = (m @ q64) / (np.linalg.norm(m, axis=1) * np.linalg.norm(q64))
    elif metric == "l2":
        s = -((m - q64) ** 2).sum(axis=1)
    else:
        s = m @ q64
    order = np.lexsort((np.array(keys), -s))[:k]
    return [keys[i] for i in order]


@pytest.mark.parametrize("metric", ["cosine", "l2", "dot"])
def test_whole_table_part_follows_every_version(tmp_path: Path, metric: str) -> None:
    rng = np.random.default_rng(1)
    uri = str(tmp_path / "t.lance")
    rows: dict[int, np.ndarray] = {}
    ds = None
    for start in range(0, 60, 6):  # ten fragments
        vecs = rng.standard_normal((6, D)).astype(np.float32)
        rids = np.arange(start, start + 6)
        rows.update({int(r): v for r, v in zip(rids, vecs, strict=True)})
        ds = lance.write_dataset(_table(rids, vecs), uri, mode="append" if ds else "create")
    assert ds is not None and len(ds.get_fragments()) == 10
    qs = rng.standard_normal((4, D)).astype(np.float32)

    def check(ds: lance.LanceDataset) -> None:
        allowed = np.array(sorted(r for r in rows if r % 3 == 0), np.int64)
        for q in qs:
            for keep in (None, allowed):
                keys, _ = exact_vector_topk(ds, "emb", q, 5, allowed=keep, metric=metric)
                assert keys.tolist() == _oracle(rows, q, 5, metric, keep)
                # the per-fragment path (the fragments given) answers the same
                frag_keys, _ = exact_vector_topk(ds, "emb", q, 5, allowed=keep, metric=metric,
                                                 fragments=ds.get_fragments())
                assert frag_keys.tolist() == keys.tolist()

    check(ds)
    key = ("whole", ds.uri, int(ds.version), "emb",
           "vector" if metric == "cosine" else "vector_raw")
    assert exact_mod.CACHE.get(key) is not None  # kept for this version
    # A row nearest to the first query appended, rows deleted, a row updated: new versions.
    near = (qs[0] * 3).astype(np.float32)
    ds = lance.write_dataset(_table(np.array([100]), near[None, :]), uri, mode="append")
    rows[100] = near
    check(ds)
    assert exact_vector_topk(ds, "emb", qs[0], 1, metric=metric)[0].tolist() == \
        _oracle(rows, qs[0], 1, metric)
    ds.delete("__rid IN (100, 3, 4)")
    for r in (100, 3, 4):
        rows.pop(r)
    ds = lance.dataset(uri)
    check(ds)
    ds.delete("__rid = 7")
    ds = lance.write_dataset(_table(np.array([7]), near[None, :]), uri, mode="append")
    rows[7] = near
    check(ds)


def test_tables_above_the_limit_and_mixed_dimensions_take_the_fragment_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2)
    uri = str(tmp_path / "big.lance")
    vecs = rng.standard_normal((50, D)).astype(np.float32)
    ds = lance.write_dataset(_table(np.arange(50), vecs), uri)
    ds = lance.write_dataset(_table(np.arange(50, 80), rng.standard_normal((30, D))), uri,
                             mode="append")
    rows = {i: v for i, v in enumerate(np.concatenate([vecs, np.asarray(
        ds.to_table(columns=["emb"], filter="__rid >= 50")["emb"].to_pylist(), np.float32)]))}
    monkeypatch.setattr(exact_mod, "WHOLE_MAX_BYTES", 50 * D * 4)  # the first fragment fits
    q = rng.standard_normal(D).astype(np.float32)
    assert exact_vector_topk(ds, "emb", q, 7)[0].tolist() == _oracle(rows, q, 7, "cosine")
    assert exact_mod.CACHE.get(("whole", ds.uri, int(ds.version), "emb", "vector")) is None
    # A fragment of another dimension: the error of the per-fragment path.
    ds = lance.write_dataset(_table(np.array([99]), np.ones((1, D + 2))), uri, mode="append")
    monkeypatch.setattr(exact_mod, "WHOLE_MAX_BYTES", 32 << 20)
    with pytest.raises(DataError, match="dimension"):
        exact_vector_topk(ds, "emb", q, 7)
