"""Hybrid fusion of a vector leg and a text leg into one ranking.

Measured on SciFact (MiniLM + BM25, 0.5/0.5, top-100 per leg; see
``benchmarks/search/scifact_quality.py``): min-max is the best of the three, because softmax
over raw BM25 scores hands almost all weight to the top BM25 hit, so it is the default.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from tarndb.errors import InvalidParameterValue

from ._kernels import topk_indices

FusionMethod = Literal["minmax", "rrf", "softmax"]
FUSION_METHODS: tuple[str, ...] = ("minmax", "rrf", "softmax")
DEFAULT_FUSION: FusionMethod = "minmax"
RRF_K = 60

Leg = tuple[npt.ArrayLike, npt.ArrayLike]


def _leg(hits: Leg) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    keys = np.asarray(hits[0], dtype=np.int64)
    scores = np.asarray(hits[1], dtype=np.float64)
    if keys.shape != scores.shape:
        raise InvalidParameterValue("hybrid leg: row keys and scores differ in length")
    return keys, scores


def _normalise(scores: npt.NDArray[np.float64], method: str) -> npt.NDArray[np.float64]:
    if scores.size == 0:
        return scores
    if method == "minmax":
        lo, hi = float(scores.min()), float(scores.max())
        # One hit, or all tied: every hit is as good as the best.
        return np.ones_like(scores) if hi <= lo else (scores - lo) / (hi - lo)
    if method == "softmax":
        e = np.exp(scores - scores.max())
        out: npt.NDArray[np.float64] = e / e.sum()
        return out
    # rrf: by rank (the legs arrive best first).
    ranks = np.arange(1, scores.size + 1, dtype=np.float64)
    rrf: npt.NDArray[np.float64] = 1.0 / (RRF_K + ranks)
    return rrf


def hybrid_fuse(vec_hits: Leg, text_hits: Leg, w_vec: float = 0.5, w_text: float = 0.5,
                method: str = DEFAULT_FUSION, k: int | None = None,
                ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Fuse two ranked legs ``(row_keys, scores)``, each best first, into one ranking.

    - ``minmax``: each leg's scores scaled to [0, 1] (min -> 0, max -> 1), then
      ``w_vec * v + w_text * t``; a row missing from a leg gets 0 from it.
    - ``rrf``: weighted reciprocal rank fusion, ``w / (60 + rank)`` summed over legs.
    - ``softmax``: each leg's scores through a softmax, then the weighted sum.

    Returns ``(row_keys, fused_scores)`` best first (ties: lower row key first), cut to ``k``
    when given.
    """
    if method not in FUSION_METHODS:
        raise InvalidParameterValue(
            f"unknown hybrid fusion method {method!r}; use one of {', '.join(FUSION_METHODS)}")
    vk, vs = _leg(vec_hits)
    tk, ts = _leg(text_hits)
    if method == "rrf":
        # Rank order is what RRF reads, so make sure each leg is sorted best first.
        vo, to = np.argsort(-vs, kind="stable"), np.argsort(-ts, kind="stable")
        vk, vs, tk, ts = vk[vo], vs[vo], tk[to], ts[to]
    keys = np.union1d(vk, tk)
    fused = np.zeros(keys.size, np.float64)
    for lk, ls, w in ((vk, vs, w_vec), (tk, ts, w_text)):
        if lk.size:
            fused[np.searchsorted(keys, lk)] += float(w) * _normalise(ls, method)
    idx = topk_indices(fused, keys.size if k is None else k)
    return keys[idx], fused[idx]
