"""Hybrid fusion of a vector leg and a text leg into one ranking.

The default is ``dbsf_coverage``: distribution-based score fusion (each leg's scores put on
one scale by the mean and 3 standard deviations of its own top-N), with each leg's weight
scaled per query by how far its best hit stands out from that leg's top-N and by the share
of the candidates the leg has any evidence for (a BM25 leg that matches a third of them
gets a third of its say). Min-max, RRF and softmax lost to the better single leg on sets
they were not chosen on, and ``dbsf_adaptive`` (without the coverage) on short documents; see
docs/hybrid-fusion.md for the measurements (``benchmarks/search/quality.py``) and reasoning.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from tarndb.errors import InvalidParameterValue

from ._kernels import topk_indices

FusionMethod = Literal["minmax", "rrf", "softmax", "dbsf", "dbsf_adaptive", "dbsf_coverage"]
FUSION_METHODS: tuple[str, ...] = ("minmax", "rrf", "softmax", "dbsf", "dbsf_adaptive",
                                   "dbsf_coverage")
DEFAULT_FUSION: FusionMethod = "dbsf_coverage"
RRF_K = 60
# DBSF: a leg's mean and standard deviation are those of its best DBSF_TOP_N scores, so the
# scale does not depend on how many rows a leg hands over (a top-100 leg, or every row of
# the table when a hybrid score is projected without ORDER BY ... LIMIT).
DBSF_TOP_N = 100

Leg = tuple[npt.ArrayLike, npt.ArrayLike]


def _leg(hits: Leg) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    keys = np.asarray(hits[0], dtype=np.int64)
    scores = np.asarray(hits[1], dtype=np.float64)
    if keys.shape != scores.shape:
        raise InvalidParameterValue("hybrid leg: row keys and scores differ in length")
    return keys, scores


def _top_stats(scores: npt.NDArray[np.float64]) -> tuple[float, float]:
    """Mean and (population) standard deviation of the best DBSF_TOP_N scores."""
    top = scores if scores.size <= DBSF_TOP_N else np.partition(
        scores, scores.size - DBSF_TOP_N)[scores.size - DBSF_TOP_N:]
    return float(top.mean()), float(top.std())


def _dbsf(scores: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``(s - (mean - 3 std)) / (6 std)``: the leg's top-N mean maps to 0.5, +-3 std to 1/0."""
    mean, std = _top_stats(scores)
    if not std > 0.0:
        # One hit, or all tied: every hit is as good as the best (as in min-max).
        return np.ones_like(scores)
    out: npt.NDArray[np.float64] = (scores - (mean - 3.0 * std)) / (6.0 * std)
    return out


def leg_confidence(scores: npt.ArrayLike) -> float:
    """How far a leg's best score stands above its top-N: ``(max - mean) / std``.

    A leg whose best hit is far above the pack (a rare term matched, a near duplicate) is
    sure of it; a flat leg is guessing. A leg with one hit or only ties counts 1.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.size == 0:
        return 0.0
    mean, std = _top_stats(s)
    return float((s.max() - mean) / std) if std > 0.0 else 1.0


def leg_coverage(scores: npt.ArrayLike, candidates: int) -> float:
    """The share of the ``candidates`` (both legs' rows together) this leg scored above 0.

    BM25 gives 0 to a row that shares no term with the query: no evidence either way, not a
    low score. On short documents (captions, titles, one-sentence passages) most candidates
    share no term, and a leg's mean and spread taken over that mix of zeros and a few
    matches make every match look like a standout; its say is cut to the share of the
    candidates it can tell anything about. A vector leg scores every row (coverage 1).
    """
    if candidates <= 0:
        return 0.0
    return float(np.count_nonzero(np.asarray(scores, dtype=np.float64))) / candidates


def _normalise(scores: npt.NDArray[np.float64], method: str) -> npt.NDArray[np.float64]:
    if scores.size == 0:
        return scores
    if method in ("dbsf", "dbsf_adaptive", "dbsf_coverage"):
        return _dbsf(scores)
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
    - ``dbsf``: distribution-based score fusion: each leg's scores mapped by
      ``(s - (mean - 3 std)) / (6 std)``, mean and std of that leg's best 100 scores, then
      ``w_vec * v + w_text * t``; a row missing from a leg gets 0 from it. Not clipped: a
      row 3 std above the mean scores above 1, one far below the head below 0.
    - ``dbsf_adaptive``: as ``dbsf``, with each weight scaled per query by the leg's
      confidence (:func:`leg_confidence`, ``(max - mean) / std`` of its best 100) and the
      two renormalised to sum to ``w_vec + w_text``.
    - ``dbsf_coverage`` (default): as ``dbsf_adaptive``, each weight also scaled by the
      leg's coverage (:func:`leg_coverage`: the share of all candidates it scored above 0).

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
    if method in ("dbsf_adaptive", "dbsf_coverage"):
        cv, ct = w_vec * leg_confidence(vs), w_text * leg_confidence(ts)
        if method == "dbsf_coverage":
            cv *= leg_coverage(vs, keys.size)
            ct *= leg_coverage(ts, keys.size)
        if cv + ct > 0.0:
            total = float(w_vec) + float(w_text)
            w_vec, w_text = total * cv / (cv + ct), total * ct / (cv + ct)
    fused = np.zeros(keys.size, np.float64)
    for lk, ls, w in ((vk, vs, w_vec), (tk, ts, w_text)):
        if lk.size:
            fused[np.searchsorted(keys, lk)] += float(w) * _normalise(ls, method)
    idx = topk_indices(fused, keys.size if k is None else k)
    return keys[idx], fused[idx]
