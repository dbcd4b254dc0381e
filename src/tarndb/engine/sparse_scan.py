"""Exact top-k over a sparsevec column: ``ORDER BY s <op> $1 LIMIT k``.

tarndb's vector index is over dense vectors, so the planner answers a sparsevec ranking by
scanning (engine/planner.py), and this is that scan. It is made fast by three things:

- each fragment's column is decoded once into flat numpy buffers (row keys, the row of each
  element, indices, values) with per-row sums (x², |x|) and kept in the exact-search
  fragment cache (search/_exact.py: keyed by the fragment's files, so never stale);
- every metric is a per-row constant plus a term over the elements whose index the query
  also has: ``dot = Σ a·b``; ``l2² = Σa² + Σb² − Σ(a² + b² − (a−b)²)``; ``l1 = Σ|a| + Σ|b| −
  Σ(|a| + |b| − |a−b|)``; cosine from the dot and the two norms. Only those matches are
  gathered and summed;
- the matches are found with the query's indices in a small table addressed by an index's
  low bits (two gathers and a compare per element, from memory that stays in cache), or
  a direct table when the dimension is small; a binary search when neither fits.

Distances are float64. The ranking's near-ties can order differently from the SQL's own
exact distances (sparse_ops.py) by rounding only; the rows tied with the k-th are all
returned so that SQL's full ORDER BY picks among them.
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
    rows: npt.NDArray[np.int32]  # the row (0..n-1) of each element
    indices: npt.NDArray[np.int32]
    values: npt.NDArray[np.float32]
    sq: F64  # Σx² per row
    abs: F64  # Σ|x| per row

    @property
    def nbytes(self) -> int:
        return int(
            sum(
                a.nbytes
                for a in (
                    self.keys,
                    self.dim,
                    self.rows,
                    self.indices,
                    self.values,
                    self.sq,
                    self.abs,
                )
            )
        )


def part_of(batches: list[Any]) -> Part:
    """A :class:`Part` from Arrow batches of (row key, sparse vector)."""
    keys, dims, rows, idx, vals = [], [], [], [], []
    base = 0
    for b in batches:
        c = sv.columns(b.column(1))
        k = b.column(0).to_numpy().astype(np.int64)
        valid = np.flatnonzero(c.valid)
        lens = np.diff(c.offsets)[valid]
        keys.append(k[valid])
        dims.append(c.dim[valid])
        # NULL rows hold no elements, so the elements are the valid rows' in order
        rows.append((base + np.repeat(np.arange(valid.size), lens)).astype(np.int32))
        idx.append(c.indices.astype(np.int32))
        vals.append(c.values)
        base += valid.size
    if not keys:
        e = np.zeros(0)
        return Part(
            e.astype(np.int64),
            e.astype(np.int64),
            e.astype(np.int32),
            e.astype(np.int32),
            e.astype(np.float32),
            e,
            e,
        )
    r = np.concatenate(rows)
    v = np.concatenate(vals)
    v64 = v.astype(np.float64)
    return Part(
        np.concatenate(keys),
        np.concatenate(dims),
        r,
        np.concatenate(idx),
        v,
        np.bincount(r, v64 * v64, minlength=base).astype(np.float64),
        np.bincount(r, np.abs(v64), minlength=base).astype(np.float64),
    )


class _Lookup:
    """Where each element's index is in the query (its position), if it is there."""

    def __init__(self, q_idx: npt.NDArray[np.int64], dim: int) -> None:
        self.q_idx = q_idx
        self.direct: npt.NDArray[np.int32] | None = None
        self.table: npt.NDArray[np.int64] | None = None
        if dim <= _DIRECT_MAX_DIM:
            self.direct = np.full(dim, -1, np.int32)
            self.direct[q_idx] = np.arange(q_idx.size, dtype=np.int32)
            return
        size = 1 << max(10, int(q_idx.size * 4).bit_length())
        while size <= 1 << 22:
            slot = q_idx & (size - 1)
            if np.unique(slot).size == slot.size:  # no two query indices share a slot
                self.mask = size - 1
                self.table = np.full(size, -1, np.int64)
                self.table[slot] = q_idx
                self.pos = np.zeros(size, np.int32)
                self.pos[slot] = np.arange(q_idx.size, dtype=np.int32)
                return
            size <<= 1

    def matches(self, idx: npt.NDArray[np.int32]) -> tuple[I64, I64]:
        """(element positions that the query has, their positions in the query)."""
        if self.direct is not None:
            p = self.direct[idx]
            h = np.flatnonzero(p >= 0)
            return h, p[h].astype(np.int64)
        if self.table is not None:
            slot = idx & self.mask
            h = np.flatnonzero(self.table[slot] == idx)
            return h, self.pos[slot[h]].astype(np.int64)
        if self.q_idx.size == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        pos = np.minimum(np.searchsorted(self.q_idx, idx), self.q_idx.size - 1)
        h = np.flatnonzero(self.q_idx[pos] == idx)
        return h, pos[h]


def distances(part: Part, query: sv.SparseVec, metric: str) -> F64:
    """``metric`` (l2, cosine, dot = negative inner product, l1) of every row of ``part``
    against ``query``, as pgvector's operators order them (smaller first)."""
    n = part.keys.size
    if n == 0:
        return np.zeros(0)
    wrong = np.flatnonzero(part.dim != query.dim)
    if wrong.size:
        raise DataError(f"different sparsevec dimensions {part.dim[wrong[0]]} and {query.dim}")
    q_val = query.values.astype(np.float64)
    h, qp = _Lookup(query.indices.astype(np.int64), query.dim).matches(part.indices)
    a = part.values[h].astype(np.float64)
    b = q_val[qp]
    r = part.rows[h]
    if metric in ("dot", "cosine"):
        dot = np.bincount(r, a * b, minlength=n).astype(np.float64)
        if metric == "dot":
            return -dot
        with np.errstate(invalid="ignore", divide="ignore"):
            sim = dot / np.sqrt(part.sq * float(q_val @ q_val))
        return 1.0 - np.clip(sim, -1.0, 1.0)
    if metric == "l2":
        saved = np.bincount(r, a * a + b * b - (a - b) ** 2, minlength=n)
        return np.sqrt(np.maximum(part.sq + float(q_val @ q_val) - saved, 0.0))
    saved = np.bincount(r, np.abs(a) + np.abs(b) - np.abs(a - b), minlength=n)
    return np.asarray(part.abs + float(np.abs(q_val).sum()) - saved, np.float64)


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
