"""The in-memory copy of a vector index: scores of any subset of rows by key, and the kept
gathers of repeated filters (same answers as a fresh gather, bounded in bytes)."""

from __future__ import annotations

import numpy as np
import pytest

import tarndb.search._lance_vector as vector_mod
from tarndb.search._lance_vector import VectorMatrix


def _matrix(n: int = 5000, d: int = 16, metric: str = "cosine") -> VectorMatrix:
    rng = np.random.default_rng(3)
    mat = rng.standard_normal((n, d)).astype(np.float32)
    if metric == "cosine":
        mat /= np.linalg.norm(mat, axis=1, keepdims=True)
    keys = rng.permutation(np.arange(10, 10 + 2 * n, 2, dtype=np.int64))  # not in order
    return VectorMatrix(keys, mat, metric)


def _expected(m: VectorMatrix, rids: np.ndarray, q: np.ndarray) -> dict[int, float]:
    by_key = {int(k): i for i, k in enumerate(m.keys.tolist())}
    out = {}
    for r in rids.tolist():
        if r in by_key:
            row = m.mat[by_key[r]].astype(np.float64)
            out[r] = float(row @ q) if m.metric != "l2" else float(2 * row @ q - row @ row)
    return out


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_repeated_filters_score_from_the_kept_rows(metric: str) -> None:
    m = _matrix(metric=metric)
    rng = np.random.default_rng(4)
    q = rng.standard_normal(16).astype(np.float32)
    allowed = [np.sort(rng.choice(m.keys, 1200, replace=False)) for _ in range(3)]
    # A key that is not in the copy is skipped, as without the cache.
    allowed[2] = np.sort(np.concatenate([allowed[2], [1]]))
    for round_ in range(2):
        for a in allowed:
            keys, scores = m.scores(a, q)
            want = _expected(m, a, q)
            assert sorted(keys.tolist()) == sorted(want)
            np.testing.assert_allclose(scores, [want[k] for k in keys.tolist()], rtol=1e-4,
                                       atol=1e-4)
        assert len(m._subsets) == 3, round_  # each filter gathered once
    # Two filters whose cheap fingerprints collide: the kept rows of one, filed under the
    # other's fingerprint, are not taken for the other's (a hit is confirmed on the keys).
    m._subsets[VectorMatrix._fingerprint(allowed[1])] = m._subsets[
        VectorMatrix._fingerprint(allowed[0])]
    keys, scores = m.scores(allowed[1], q)
    want = _expected(m, allowed[1], q)
    assert sorted(keys.tolist()) == sorted(want)
    np.testing.assert_allclose(scores, [want[k] for k in keys.tolist()], rtol=1e-4, atol=1e-4)


def test_kept_rows_stay_within_their_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    m = _matrix()
    per = 1200 * 16 * 4
    monkeypatch.setattr(vector_mod, "SUBSET_MAX_BYTES", int(per * 2.5))
    rng = np.random.default_rng(5)
    q = rng.standard_normal(16).astype(np.float32)
    for _ in range(6):
        m.scores(np.sort(rng.choice(m.keys, 1200, replace=False)), q)
    assert 1 <= len(m._subsets) <= 2 and m._subset_bytes <= per * 2.5
    # Small filters are gathered each time, not kept.
    before = len(m._subsets)
    m.scores(np.sort(rng.choice(m.keys, 50, replace=False)), q)
    assert len(m._subsets) == before
