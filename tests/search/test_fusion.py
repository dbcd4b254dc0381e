from __future__ import annotations

import math

import numpy as np
import pytest

from tarndb.errors import InvalidParameterValue
from tarndb.search import hybrid_fuse

VEC = ([1, 2, 3], [0.9, 0.7, 0.5])
TXT = ([3, 4], [12.0, 2.0])


def test_minmax() -> None:
    keys, scores = hybrid_fuse(VEC, TXT, 0.5, 0.5, "minmax")
    want = {1: 0.5 * 1.0, 2: 0.5 * 0.5, 3: 0.5 * 0.0 + 0.5 * 1.0, 4: 0.0}
    assert dict(zip(keys.tolist(), scores.tolist(), strict=True)) == pytest.approx(want)
    # Ties (1 and 3 both 0.5) go to the lower row key.
    assert keys.tolist() == [1, 3, 2, 4]


def test_rrf_weighted() -> None:
    keys, scores = hybrid_fuse(VEC, TXT, 0.7, 0.3, "rrf", k=2)
    want = {1: 0.7 / 61, 2: 0.7 / 62, 3: 0.7 / 63 + 0.3 / 61, 4: 0.3 / 62}
    best = sorted(want, key=lambda x: -want[x])[:2]
    assert keys.tolist() == best
    assert scores.tolist() == pytest.approx([want[b] for b in best])


def test_rrf_sorts_unsorted_legs() -> None:
    a = hybrid_fuse(([3, 1, 2], [0.5, 0.9, 0.7]), TXT, method="rrf")
    b = hybrid_fuse(VEC, TXT, method="rrf")
    assert a[0].tolist() == b[0].tolist()


def test_softmax() -> None:
    keys, scores = hybrid_fuse(VEC, TXT, 0.5, 0.5, "softmax")
    ev = np.exp(np.array(VEC[1]) - 0.9)
    ev /= ev.sum()
    et = np.exp(np.array(TXT[1]) - 12.0)
    et /= et.sum()
    want = {1: 0.5 * ev[0], 2: 0.5 * ev[1], 3: 0.5 * ev[2] + 0.5 * et[0], 4: 0.5 * et[1]}
    assert dict(zip(keys.tolist(), scores.tolist(), strict=True)) == pytest.approx(want)
    assert math.isclose(float(sum(scores)), 1.0)


def test_empty_leg_and_bad_method() -> None:
    keys, scores = hybrid_fuse(([], []), TXT, method="minmax")
    assert keys.tolist() == [3, 4] and scores.tolist() == [0.5, 0.0]
    with pytest.raises(InvalidParameterValue, match="rrf"):
        hybrid_fuse(VEC, TXT, method="borda")
