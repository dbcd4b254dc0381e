"""The sparse exact scan (engine/sparse_scan.py) and the pairwise sparse functions
(engine/sparse_ops.py) against dense numpy on the same vectors, for every metric and for each
way the scan looks indices up (a direct table, a hashed one)."""

from __future__ import annotations

from pathlib import Path

import lance
import numpy as np
import pyarrow as pa
import pytest

from tarndb.engine import sparse_ops, sparse_scan
from tarndb.engine import sparsevec as sv


def _dense(x: np.ndarray, q: np.ndarray, metric: str) -> np.ndarray:
    x64, q64 = x.astype(np.float64), q.astype(np.float64)
    if metric == "l2":
        return np.linalg.norm(x64 - q64, axis=1)
    if metric == "dot":
        return -(x64 @ q64)
    if metric == "l1":
        return np.abs(x64 - q64).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1 - (x64 @ q64) / (np.linalg.norm(x64, axis=1) * np.linalg.norm(q64))


def _sparse_rows(dim: int, n: int, seed: int) -> tuple[np.ndarray, list[sv.SparseVec | None]]:
    """Dense rows (zeros where NULL) and the same as sparse vectors: one all-zero row, one
    NULL, the rest 20 non-zeros among 200 used indices spread over the dimension."""
    rng = np.random.default_rng(seed)
    used = (
        np.sort(rng.choice(dim, 200, replace=False))
        if dim < 10**7
        else np.unique(rng.integers(0, dim, 200))
    )
    dense = np.zeros((n, used.size), np.float32)
    out: list[sv.SparseVec | None] = []
    for i in range(n):
        if i == 3:
            out.append(None)
            continue
        if i != 4:
            pick = rng.choice(used.size, 20, replace=False)
            dense[i, pick] = rng.standard_normal(20).astype(np.float32)
        nz = np.flatnonzero(dense[i])
        out.append(sv.SparseVec(dim, used[nz].astype(np.int32), dense[i, nz]))
    return dense, out


@pytest.mark.parametrize("dim", [1000, 5_000_000, 1_000_000_000])
@pytest.mark.parametrize("metric", ["l2", "cosine", "dot", "l1"])
def test_scan_and_pairwise_match_dense(tmp_path: Path, dim: int, metric: str) -> None:
    n = 500
    dense, rows = _sparse_rows(dim, n, seed=dim % 97)
    arr = sv.to_arrow(rows)
    ds = lance.write_dataset(
        pa.table({"__rid": pa.array(np.arange(n) * 10), "s": sv.storable(arr)}),
        str(tmp_path / "t.lance"),
        data_storage_version="2.0",
        max_rows_per_file=128,
    )
    assert len(ds.get_fragments()) > 1
    q_dense = dense[7] + dense[9]
    qi = np.flatnonzero(q_dense)
    used_idx = rows[7].indices.tolist() + rows[9].indices.tolist()  # type: ignore[union-attr]
    mapping = dict(
        zip(
            np.flatnonzero(dense[7]).tolist() + np.flatnonzero(dense[9]).tolist(),
            used_idx,
            strict=True,
        )
    )
    query = sv.SparseVec(dim, np.array([mapping[i] for i in qi], np.int32), q_dense[qi])
    expect = _dense(dense, q_dense, metric)
    expect[3] = np.nan  # NULL
    # the scan: every non-NULL, non-NaN row in order, rows tied with the k-th included
    keys, dists = sparse_scan.topk(ds, "s", query, 10, metric)
    ok = ~np.isnan(expect)
    order = np.lexsort((np.arange(n)[ok], expect[ok]))
    want = np.arange(n)[ok][order]
    assert keys[:10].tolist() == (want[:10] * 10).tolist()
    # (the scan multiplies in float4, as pgvector does)
    np.testing.assert_allclose(dists[:10], expect[want[:10]], rtol=1e-5, atol=1e-5)
    # filtered by allowed keys
    allowed = np.arange(0, n * 10, 30)
    keys, _ = sparse_scan.topk(ds, "s", query, 5, metric, allowed)
    ok_f = ok & (np.arange(n) % 3 == 0)
    want_f = np.arange(n)[ok_f][np.lexsort((np.arange(n)[ok_f], expect[ok_f]))]
    assert keys[:5].tolist() == (want_f[:5] * 10).tolist()
    # the pairwise function DuckDB calls: row i against the query, NULL for the NULL row
    name = {"dot": "neg_dot"}.get(metric, metric)
    got = sparse_ops.pairwise(name, arr, sv.to_arrow([query] * n)).to_numpy(zero_copy_only=False)
    np.testing.assert_allclose(got, expect, rtol=1e-9, atol=1e-9)


def test_ties_with_the_kth_are_all_returned(tmp_path: Path) -> None:
    rows = [sv.SparseVec(10, np.array([1], np.int32), np.array([1.0], np.float32))] * 6
    ds = lance.write_dataset(
        pa.table({"__rid": pa.array(np.arange(6)), "s": sv.to_arrow(list(rows))}),
        str(tmp_path / "t"),
    )
    keys, dists = sparse_scan.topk(ds, "s", rows[0], 2, "l2")
    assert keys.tolist() == list(range(6)) and (dists == 0).all()


def test_different_dimensions_are_refused(tmp_path: Path) -> None:
    ds = lance.write_dataset(
        pa.table(
            {
                "__rid": pa.array([0]),
                "s": sv.to_arrow(
                    [sv.SparseVec(10, np.array([1], np.int32), np.array([1.0], np.float32))]
                ),
            }
        ),
        str(tmp_path / "t"),
    )
    q = sv.SparseVec(11, np.array([1], np.int32), np.array([1.0], np.float32))
    with pytest.raises(Exception, match="different sparsevec dimensions 10 and 11"):
        sparse_scan.topk(ds, "s", q, 1, "l2")
