"""Exact top-k over a sparsevec column: ``ORDER BY s <op> $1 LIMIT k``.

tarndb's vector index is over dense vectors, so the planner answers a sparsevec ranking by
scanning (engine/planner.py), and this is that scan. It costs what the query's non-zeros
touch, not what the column holds:

- each fragment's column is decoded once into an inverted layout: for each index that
  occurs, the rows that have it and their values (postings), with per-row sums (x², |x|);
  it is kept in the exact-search fragment cache (search/_exact.py: keyed by the
  fragment's files, so never stale);
- every metric is a per-row constant plus a sum over the elements whose index the query
  also has: ``dot = Σa·b``, ``l2² = Σa² + Σb² − 2·dot``, ``l1 = Σ|a| + Σ|b| − Σ(|a| + |b| −
  |a−b|)``, cosine from the dot and the two norms. Those elements are exactly the postings
  of the query's indices: a binary search per query index finds them, and one
  ``bincount`` sums them per row.

Sums are float8. A ranking's near-ties can order differently from the exact distances SQL
then computes for the rows found (sparse_ops.py, another order of summation) by rounding
only. Rows tied with the k-th are all returned so that SQL's full ORDER BY picks among them.
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


@dataclass
class Part:
    """One fragment's non-NULL sparse vectors, by index (postings)."""

    keys: I64  # row keys (row r is keys[r])
    dim: I64  # per row
    sq: F64  # Σx² per row
    abs: F64  # Σ|x| per row
    terms: I64  # the indices that occur, ascending
    starts: I64  # term t's postings are [starts[t], starts[t + 1])
    rows: npt.NDArray[np.int32]  # postings: the row ...
    values: npt.NDArray[np.float32]  # ... and its value at the term

    @property
    def nbytes(self) -> int:
        arrays = (
            self.keys,
            self.dim,
            self.sq,
            self.abs,
            self.terms,
            self.starts,
            self.rows,
            self.values,
        )
        return int(sum(a.nbytes for a in arrays))


def part_of(batches: list[Any]) -> Part:
    """A :class:`Part` from Arrow batches of (row key, sparse vector)."""
    keys, dims, lens, idx, vals = [], [], [], [], []
    for b in batches:
        c = sv.columns(b.column(1))
        valid = np.flatnonzero(c.valid)
        keys.append(b.column(0).to_numpy().astype(np.int64)[valid])
        dims.append(c.dim[valid])
        lens.append(np.diff(c.offsets)[valid])  # NULL rows hold no elements
        idx.append(c.indices)
        vals.append(c.values)
    k = np.concatenate(keys) if keys else np.zeros(0, np.int64)
    n = k.size
    rows = (
        np.repeat(np.arange(n, dtype=np.int32), np.concatenate(lens))
        if keys
        else np.zeros(0, np.int32)
    )
    i = np.concatenate(idx) if keys else np.zeros(0, np.int64)
    v = np.concatenate(vals) if keys else np.zeros(0, np.float32)
    v64 = v.astype(np.float64)
    order = np.argsort(i, kind="stable")
    terms, first = np.unique(i[order], return_index=True)
    return Part(
        k,
        np.concatenate(dims) if keys else np.zeros(0, np.int64),
        np.bincount(rows, v64 * v64, minlength=n).astype(np.float64),
        np.bincount(rows, np.abs(v64), minlength=n).astype(np.float64),
        terms.astype(np.int64),
        np.append(first, i.size).astype(np.int64),
        rows[order],
        v[order],
    )


def _matches(part: Part, query: sv.SparseVec) -> tuple[npt.NDArray[np.int32], F64, F64]:
    """The postings of the query's indices: (row, row's value, query's value) each."""
    q_idx = query.indices.astype(np.int64)
    t = np.searchsorted(part.terms, q_idx)
    t_c = np.minimum(t, max(part.terms.size - 1, 0))
    ok = (
        (t < part.terms.size) & (part.terms[t_c] == q_idx)
        if part.terms.size
        else np.zeros(q_idx.size, bool)
    )
    lo, hi = part.starts[t_c[ok]], part.starts[t_c[ok] + 1]
    lens = hi - lo
    # the ranges [lo, hi) one after another: positions = lo of its range + rank in it
    pos = np.repeat(lo - np.cumsum(lens) + lens, lens) + np.arange(int(lens.sum()))
    a = part.values[pos].astype(np.float64)
    b = np.repeat(query.values.astype(np.float64)[ok], lens)
    return part.rows[pos], a, b


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
    rows, a, b = _matches(part, query)
    if metric == "l1":
        saved = np.bincount(rows, np.abs(a) + np.abs(b) - np.abs(a - b), minlength=n)
        return np.asarray(part.abs + float(np.abs(q_val).sum()) - saved, np.float64)
    dot = np.bincount(rows, a * b, minlength=n).astype(np.float64)
    if metric == "dot":
        return -dot
    qq = float(q_val @ q_val)
    if metric == "l2":
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
