"""Exact top-k over a sparsevec column: ``ORDER BY s <op> $1 LIMIT k``.

tarndb's vector index is over dense vectors, so the planner answers a sparsevec ranking by
scanning (engine/planner.py), and this is that scan. It is made fast by three things:

- each fragment's column is decoded once into flat numpy buffers (row keys, the row of each
  element, indices, values) with per-row sums (x², |x|) and kept in the exact-search
  fragment cache (search/_exact.py: keyed by the fragment's files, so never stale);
- every metric is a per-row constant plus a sum over the elements of ``a·b`` or ``|a| +
  |b| − |a−b|``, where b is the query's value at the element's index (0 where it has
  none): ``l2² = Σa² + Σb² − 2·dot``, ``l1 = Σ|a| + Σ|b| − Σ(|a| + |b| − |a−b|)``,
  cosine from the dot and the two norms; the sums are one ``reduceat`` over the rows;
- b comes from a direct table by index when the dimension is small, else from a small
  table addressed by the index's low bits (two gathers and a compare per element, from
  memory that stays in cache), else by a binary search.

Products are float4, as pgvector computes them, and sums float8: a ranking's near-ties can
order differently from the exact distances SQL then computes for the rows found
(sparse_ops.py) by rounding only. Rows tied with the k-th are all returned so that SQL's
full ORDER BY picks among them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import DataError
from . import sparsevec as sv

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
#: a dimension up to this uses a direct lookup table (an int32 per dimension: 1 MiB)
_DIRECT_MAX_DIM = 1 << 18


@dataclass
class Part:
    """One fragment's non-NULL sparse vectors, flat."""

    keys: I64  # row keys
    dim: npt.NDArray[np.int64]
    offsets: I64  # row r's elements are [offsets[r], offsets[r + 1])
    indices: npt.NDArray[np.int32]
    values: npt.NDArray[np.float32]
    sq: F64  # Σx² per row
    abs: F64  # Σ|x| per row

    @property
    def nbytes(self) -> int:
        arrays = (self.keys, self.dim, self.offsets, self.indices, self.values, self.sq, self.abs)
        return int(sum(a.nbytes for a in arrays))

    def row_sums(self, x: npt.NDArray[Any]) -> F64:
        """Per row sums of ``x`` (one value per element), accumulated in float64."""
        out = np.zeros(self.keys.size)
        full = np.flatnonzero(np.diff(self.offsets) > 0)
        if full.size:  # reduceat over the starts of the rows that have elements
            out[full] = np.add.reduceat(x, self.offsets[full], dtype=np.float64)
        return out


def part_of(batches: list[Any]) -> Part:
    """A :class:`Part` from Arrow batches of (row key, sparse vector)."""
    keys, dims, lens, idx, vals = [], [], [], [], []
    for b in batches:
        c = sv.columns(b.column(1))
        valid = np.flatnonzero(c.valid)
        keys.append(b.column(0).to_numpy().astype(np.int64)[valid])
        dims.append(c.dim[valid])
        lens.append(np.diff(c.offsets)[valid])  # NULL rows hold no elements
        idx.append(c.indices.astype(np.int32))
        vals.append(c.values)
    if not keys:
        e = np.zeros(0)
        return Part(
            e.astype(np.int64),
            e.astype(np.int64),
            np.zeros(1, np.int64),
            e.astype(np.int32),
            e.astype(np.float32),
            e,
            e,
        )
    offsets = np.zeros(sum(len(k) for k in keys) + 1, np.int64)
    np.cumsum(np.concatenate(lens), out=offsets[1:])
    v = np.concatenate(vals)
    part = Part(
        np.concatenate(keys),
        np.concatenate(dims),
        offsets,
        np.concatenate(idx),
        v,
        np.zeros(0),
        np.zeros(0),
    )
    v64 = v.astype(np.float64)
    part.sq = part.row_sums(v64 * v64)
    part.abs = part.row_sums(np.abs(v64))
    return part


def _weights(query: sv.SparseVec, idx: npt.NDArray[np.int32]) -> npt.NDArray[np.float32]:
    """For each element, the query's value at its index (0 where the query has none): from a
    direct table by index for a small dimension, else from a table addressed by the index's
    low bits (two gathers and a compare, from memory that stays in cache), else by a binary
    search of the query's sorted indices."""
    q_idx = query.indices.astype(np.int64)
    q_val = query.values.astype(np.float32)
    zero = np.float32(0)
    if q_idx.size == 0:
        return np.zeros(idx.size, np.float32)
    if query.dim <= _DIRECT_MAX_DIM:
        table = np.zeros(query.dim, np.float32)
        table[q_idx] = q_val
        return table[idx]
    size = 1 << max(10, int(q_idx.size * 4).bit_length())
    while size <= 1 << 22:
        slot = q_idx & (size - 1)
        if np.unique(slot).size == slot.size:  # no two query indices share a slot
            owner = np.full(size, -1, np.int32)
            owner[slot] = q_idx
            value = np.zeros(size, np.float32)
            value[slot] = q_val
            s = idx & np.int32(size - 1)
            return np.where(owner[s] == idx, value[s], zero)
        size <<= 1
    pos = np.minimum(np.searchsorted(q_idx, idx), q_idx.size - 1)
    return np.where(q_idx[pos] == idx, q_val[pos], zero)


def distances(part: Part, query: sv.SparseVec, metric: str) -> F64:
    """``metric`` (l2, cosine, dot = negative inner product, l1) of every row of ``part``
    against ``query``, as pgvector's operators order them (smaller first)."""
    if part.keys.size == 0:
        return np.zeros(0)
    wrong = np.flatnonzero(part.dim != query.dim)
    if wrong.size:
        raise DataError(f"different sparsevec dimensions {part.dim[wrong[0]]} and {query.dim}")
    q_val = query.values.astype(np.float64)
    # products in float4, as pgvector computes; sums in float8
    w = _weights(query, part.indices)
    a = part.values
    if metric == "l1":
        # |a| + |b| - |a - b| is 0 where the query has no element (b = 0)
        saved = part.row_sums(np.abs(a) + np.abs(w) - np.abs(a - w))
        return np.asarray(part.abs + float(np.abs(q_val).sum()) - saved, np.float64)
    dot = part.row_sums(a * w)
    if metric == "dot":
        return -dot
    qq = float(q_val @ q_val)
    if metric == "l2":  # a² + b² - (a - b)² = 2ab
        return np.sqrt(np.maximum(part.sq + qq - 2.0 * dot, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        sim = dot / np.sqrt(part.sq * qq)
    return 1.0 - np.clip(sim, -1.0, 1.0)


def _part(ds: Any, frag: Any, column: str) -> Part:
    from ..search._exact import CACHE, RID, _fragment_key, scan

    key = _fragment_key(ds, frag, column, "sparsevec")
    got = CACHE.get(key)
    if got is not None:
        return got  # type: ignore[no-any-return]
    part = part_of(list(scan(ds, [RID, column], fragments=[frag])))
    CACHE.put(key, part, part.nbytes)
    return part


def topk(
    ds: Any, column: str, query: sv.SparseVec, k: int, metric: str, allowed: I64 | None = None
) -> tuple[I64, F64]:
    """The k rows of a Lance dataset nearest to ``query`` by ``metric``, exactly: row keys
    and distances, nearest first (ties by key), with every row tied with the k-th. Rows
    with a NULL vector, or a NaN cosine distance (a zero vector), are not returned."""
    keys = np.zeros(0, np.int64)
    dists = np.zeros(0, np.float64)
    for frag in ds.get_fragments():
        part = _part(ds, frag, column)
        d = distances(part, query, metric)
        ok = ~np.isnan(d)
        if allowed is not None:
            ok &= np.isin(part.keys, allowed)
        keys = np.concatenate([keys, part.keys[ok]])
        dists = np.concatenate([dists, d[ok]])
        if k > 0 and dists.size > k:
            kth = np.partition(dists, k - 1)[k - 1]
            keep = dists <= kth
            keys, dists = keys[keep], dists[keep]
    order = np.lexsort((keys, dists))
    return keys[order], dists[order]
