from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from tarndb.errors import DataError
from tarndb.search import cosine_scores, cosine_similarity, maxsim, maxsim_scores, pack_bags
from tarndb.search._kernels import bags_from_arrow, topk_indices, vectors_from_arrow


def test_cosine_similarity_matches_definition() -> None:
    a, b = [1.0, 2.0, 3.0], [-2.0, 0.5, 4.0]
    want = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
    assert cosine_similarity(a, b) == pytest.approx(want, abs=1e-12)


def test_zero_vector_scores_zero_not_nan() -> None:
    assert cosine_similarity([0, 0, 0], [1, 2, 3]) == 0.0
    m = np.array([[0, 0, 0], [1, 0, 0]], np.float32)
    s = cosine_scores(m, [1, 0, 0])
    assert s.tolist() == [0.0, 1.0]
    assert not np.isnan(cosine_scores(m, [0, 0, 0])).any()
    assert cosine_scores(m, [0, 0, 0]).tolist() == [0.0, 0.0]


def test_dimension_mismatch_is_data_error() -> None:
    with pytest.raises(DataError, match="dimension mismatch"):
        cosine_similarity([1, 2], [1, 2, 3])
    with pytest.raises(DataError, match="dimension mismatch"):
        cosine_scores(np.ones((3, 4), np.float32), np.ones(5))
    with pytest.raises(DataError, match="dimension"):
        maxsim_scores(pack_bags([np.ones((2, 4))]), np.ones((1, 3)))
    assert DataError.sqlstate == "22000"


def test_cosine_scores_against_float64_oracle() -> None:
    rng = np.random.default_rng(1)
    m = rng.standard_normal((500, 48)).astype(np.float32)
    q = rng.standard_normal(48).astype(np.float32)
    want = [cosine_similarity(r, q) for r in m]
    np.testing.assert_allclose(cosine_scores(m, q), want, atol=2e-6)


def _maxsim_oracle(bag: np.ndarray, q: np.ndarray) -> float:
    if bag.size == 0:
        return 0.0
    total = 0.0
    for qv in q:
        qn = np.linalg.norm(qv)
        best = -math.inf
        for v in bag:
            vn = np.linalg.norm(v)
            sim = 0.0 if qn == 0 or vn == 0 else float(np.dot(v, qv) / (vn * qn))
            best = max(best, sim)
        total += best
    return total


def test_maxsim_against_loop_oracle_varying_bag_sizes() -> None:
    rng = np.random.default_rng(2)
    bags = [rng.standard_normal((int(rng.integers(1, 9)), 16)) for _ in range(60)]
    bags[5] = np.zeros((0, 16))  # an empty bag scores 0
    bags[7][0] = 0.0  # a zero vector inside a bag contributes 0, never NaN
    q = rng.standard_normal((5, 16))
    packed = pack_bags(bags)
    got = maxsim_scores(packed, q)
    want = [_maxsim_oracle(b, q) for b in bags]
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert got[5] == 0.0
    assert maxsim(bags[3], q) == pytest.approx(want[3], abs=1e-6)


def test_maxsim_chunking_gives_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    import tarndb.search._kernels as kern

    rng = np.random.default_rng(3)
    bags = [rng.standard_normal((int(rng.integers(0, 6)), 8)) for _ in range(200)]
    q = rng.standard_normal((3, 8))
    full = maxsim_scores(pack_bags(bags), q)
    monkeypatch.setattr(kern, "_MAXSIM_CHUNK_TOKENS", 7)
    np.testing.assert_allclose(maxsim_scores(pack_bags(bags), q), full, atol=1e-6)


def test_maxsim_single_threaded_blocks_give_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    import tarndb.search._kernels as kern

    rng = np.random.default_rng(5)
    bags = [rng.standard_normal((int(rng.integers(0, 9)), 8)) for _ in range(300)]
    q = rng.standard_normal((3, 8))
    monkeypatch.setattr(kern, "MAXSIM_SINGLE_THREAD_TOKENS", 0)  # one product
    whole = maxsim_scores(pack_bags(bags), q)
    # Blocks of 5 token rows (odd, so that blocks cut through bags).
    monkeypatch.setattr(kern, "MAXSIM_SINGLE_THREAD_TOKENS", 1 << 15)
    monkeypatch.setattr(kern, "_SINGLE_THREAD_GEMM", 5 * 3 * 8)
    np.testing.assert_allclose(maxsim_scores(pack_bags(bags), q), whole, atol=1e-6)
    want = [_maxsim_oracle(np.asarray(b), q) for b in bags]
    np.testing.assert_allclose(whole, want, atol=1e-5)


def test_packed_take_keeps_bags() -> None:
    rng = np.random.default_rng(4)
    bags = [rng.standard_normal((int(rng.integers(0, 5)), 4)) for _ in range(20)]
    packed = pack_bags(bags, row_keys=np.arange(100, 120))
    sub = packed.take(np.array([3, 0, 17]))
    assert sub.row_keys.tolist() == [103, 100, 117]
    q = rng.standard_normal((2, 4))
    np.testing.assert_allclose(maxsim_scores(sub, q),
                               maxsim_scores(packed, q)[[3, 0, 17]], atol=1e-6)


def test_arrow_conversion_skips_nulls_and_checks_dims() -> None:
    col = pa.array([[1.0, 0.0], None, [0.0, 2.0]], pa.list_(pa.float32()))
    mat, valid = vectors_from_arrow(col)
    assert valid.tolist() == [True, False, True]
    assert mat.tolist() == [[1.0, 0.0], [0.0, 2.0]]
    with pytest.raises(DataError, match="dimension mismatch"):
        vectors_from_arrow(pa.array([[1.0], [1.0, 2.0]], pa.list_(pa.float32())))
    bags = pa.array([[[1.0, 0.0], [0.0, 1.0]], None, [[3.0, 4.0]]],
                    pa.list_(pa.list_(pa.float32())))
    packed = bags_from_arrow(bags, np.array([7, 8, 9]))
    assert packed.row_keys.tolist() == [7, 9]
    np.testing.assert_allclose(packed.vectors[-1], [0.6, 0.8], atol=1e-7)


def test_topk_indices_breaks_ties_by_index() -> None:
    s = np.array([1.0, 3.0, 3.0, 2.0, 3.0])
    assert topk_indices(s, 2).tolist() == [1, 2]
    assert topk_indices(s, 10).tolist() == [1, 2, 4, 3, 0]
    assert topk_indices(s, 0).tolist() == []
