"""Exact top-k by scanning a Lance dataset: the path without an index, the fresh-row path
with one, and pinned versions (``t@12``).

Vector and multi-vector columns are stored as variable-length lists, which Lance decodes
slowly (1M x 384: seconds), and cosine needs unit vectors. So an exact scan keeps each
fragment's column decoded and normalised in a process-wide cache (:class:`FragmentCache`,
``TARNDB_EXACT_CACHE_BYTES``, default 2 GiB, least recently used out first). Lance never
rewrites a fragment's rows, so a cache entry is keyed by the fragment's data files and
deletion file: it serves every later version that still holds the fragment unchanged (a
pinned version, the next INSERT's version), and a DELETE only re-reads the fragments it
touched. A query is then one matrix product per fragment at memory speed; a filter is
evaluated first (row keys), and only the allowed rows are gathered and scored. Fragments
too large for the cache are scanned batch by batch with a running top-k, as before.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

import lance
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from tarndb.errors import DataError

from ._kernels import (
    F32,
    I64,
    PackedBags,
    _check_dim,
    as_query_matrix,
    as_query_vector,
    bags_from_arrow,
    maxsim_scores,
    metric_scores,
    normalize_rows,
    vectors_from_arrow,
)

RID = "__rid"
_BATCH = 65536


def scan(ds: lance.LanceDataset, columns: Sequence[str], filter_sql: str | None = None,
         fragments: Iterable[Any] | None = None) -> Iterable[pa.RecordBatch]:
    kw: dict[str, Any] = {"columns": list(columns), "batch_size": _BATCH}
    if filter_sql:
        kw["filter"] = filter_sql
    if fragments is not None:
        kw["fragments"] = list(fragments)
    return ds.scanner(**kw).to_batches()


def scan_row_keys(ds: lance.LanceDataset, filter_sql: str | None = None,
                  fragments: Iterable[Any] | None = None) -> I64:
    parts = [b.column(0).to_numpy() for b in scan(ds, [RID], filter_sql, fragments)]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def restrict(keys: I64, allowed: I64 | None) -> npt.NDArray[np.bool_]:
    if allowed is None:
        return np.ones(keys.size, bool)
    return np.isin(keys, allowed)


class TopK:
    """A running top-k over (key, score) batches."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.keys = np.zeros(0, np.int64)
        self.scores = np.zeros(0, np.float32)

    def push(self, keys: I64, scores: F32) -> None:
        if keys.size == 0:
            return
        keys = keys.astype(np.int64, copy=False)
        scores = scores.astype(np.float32, copy=False)
        if keys.size > self.k > 0:
            # Only rows that can make the top k (every row tied with the k-th included, so
            # the tie-break below sees them all): a partition, not a sort of the batch.
            kth = np.partition(scores, keys.size - self.k)[keys.size - self.k]
            if self.scores.size >= self.k:
                kth = max(kth, self.scores.min())
            pick = np.flatnonzero(scores >= kth)
            keys, scores = keys[pick], scores[pick]
        if self.keys.size:
            keys = np.concatenate([self.keys, keys])
            scores = np.concatenate([self.scores, scores])
        # Best score first, ties broken by lower key, so results do not depend on scan order.
        order = np.lexsort((keys, -scores.astype(np.float64)))[:max(self.k, 0)]
        self.keys, self.scores = keys[order], scores[order]

    def result(self) -> tuple[I64, F32]:
        return self.keys, self.scores


class FragmentCache:
    """Decoded, normalised columns of fragments, bounded in bytes (least recently used out).

    Keys name a fragment's content exactly (table, column, fragment id, data files,
    deletion file), so an entry never goes stale: it is only ever unused.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0
        self._entries: OrderedDict[tuple[Any, ...], tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> Any:
        with self._lock:
            hit = self._entries.get(key)
            if hit is None:
                return None
            self._entries.move_to_end(key)
            return hit[0]

    def fits(self, nbytes: int) -> bool:
        return nbytes <= self.budget

    def put(self, key: tuple[Any, ...], value: Any, nbytes: int) -> None:
        if not self.fits(nbytes):
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.used -= old[1]
            self._entries[key] = (value, nbytes)
            self.used += nbytes
            while self.used > self.budget and self._entries:
                _, (_, size) = self._entries.popitem(last=False)
                self.used -= size

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.used = 0


CACHE = FragmentCache(int(os.environ.get("TARNDB_EXACT_CACHE_BYTES", str(2 << 30))))


class _Keyed:
    """Row keys of one fragment's valid rows with a sorted copy, for gathers by key."""

    def __init__(self, keys: I64) -> None:
        self.keys = keys
        self._order = np.argsort(keys, kind="stable")
        self._sorted = keys[self._order]

    def positions(self, rids: I64) -> I64:
        """Positions (ascending) of the given keys present here."""
        if self._sorted.size == 0 or rids.size == 0:
            return np.zeros(0, np.int64)
        pos = np.clip(np.searchsorted(self._sorted, rids), 0, self._sorted.size - 1)
        return np.sort(self._order[pos[self._sorted[pos] == rids]])


class _VectorPart(_Keyed):
    def __init__(self, keys: I64, mat: F32) -> None:
        super().__init__(keys)
        self.mat = mat


class _BagPart(_Keyed):
    def __init__(self, packed: PackedBags) -> None:
        super().__init__(packed.row_keys)
        self.packed = packed


def _fragment_key(ds: lance.LanceDataset, frag: Any, column: str, kind: str,
                  ) -> tuple[Any, ...]:
    md = frag.metadata
    dfile = md.deletion_file
    dels = None if dfile is None else (int(dfile.id), int(dfile.read_version),
                                       int(dfile.num_deleted_rows))
    return (ds.uri, column, kind, int(md.id), tuple(f.path for f in md.files), dels)


def _vector_part(ds: lance.LanceDataset, frag: Any, column: str, normalise: bool = True
                 ) -> _VectorPart | None:
    """The fragment's valid vectors, normalised unless ``normalise`` is false (cached);
    None when they would not fit the cache (the caller then streams the fragment)."""
    key = _fragment_key(ds, frag, column, "vector" if normalise else "vector_raw")
    part = CACHE.get(key)
    if part is not None:
        return part  # type: ignore[no-any-return]
    keys = np.empty(int(frag.count_rows()), np.int64)
    buf: F32 | None = None
    filled = 0
    for batch in scan(ds, [RID, column], fragments=[frag]):
        k_ = batch.column(0).to_numpy().astype(np.int64)
        mat, valid = vectors_from_arrow(batch.column(1))
        m = mat.shape[0]
        if not m:
            continue
        if buf is None:
            if not CACHE.fits(keys.size * mat.shape[1] * 4):
                return None
            # One buffer for the fragment, each batch normalised straight into it (no
            # per-batch temporaries and no concatenation: the first query is decode-bound).
            buf = np.empty((keys.size, mat.shape[1]), np.float32)
        elif mat.shape[1] != buf.shape[1]:
            raise DataError(f"vector dimension mismatch: stored vectors have "
                            f"{buf.shape[1]} and {mat.shape[1]} dimensions")
        if filled + m > keys.size:  # rows appeared since count_rows (cannot, but be safe)
            grow = max(m, keys.size)
            keys = np.concatenate([keys, np.empty(grow, np.int64)])
            buf = np.concatenate([buf, np.empty((grow, buf.shape[1]), np.float32)])
        out_rows = buf[filled:filled + m]
        if normalise:
            norms = np.sqrt(np.einsum("ij,ij->i", mat, mat, dtype=np.float32))
            np.divide(mat, np.where(norms > 0, norms, np.float32(1.0))[:, None], out=out_rows)
        else:
            out_rows[:] = mat
        keys[filled:filled + m] = k_[valid]
        filled += m
    out = _VectorPart(keys[:filled].copy(), buf[:filled] if buf is not None
                      else np.zeros((0, 0), np.float32))
    CACHE.put(key, out, out.mat.nbytes + out.keys.nbytes * 3)
    return out


#: A table whose vectors take at most this many bytes is also kept as one part per version
#: (its fragments' parts concatenated): a query is then one product and one top-k instead
#: of a fragment listing, a metadata read and a product per fragment (a 10-row table
#: written by ten INSERTs has ten fragments).
WHOLE_MAX_BYTES = 32 << 20
#: (uri, version, column, kind) of tables found too large (or unreadable) for one part.
_NOT_WHOLE: dict[tuple[Any, ...], bool] = {}


def _whole_part(ds: lance.LanceDataset, column: str, normalise: bool) -> _VectorPart | None:
    """All of ``ds``'s valid vectors of ``column`` as one part, kept per table version;
    None for tables above WHOLE_MAX_BYTES (or vectors of different dimensions: the
    per-fragment path reports that)."""
    key = ("whole", ds.uri, int(ds.version), column, "vector" if normalise else "vector_raw")
    part = CACHE.get(key)
    if part is not None:
        return part  # type: ignore[no-any-return]
    if key in _NOT_WHOLE:
        return None
    parts: list[_VectorPart] = []
    size = 0
    for frag in ds.get_fragments():
        p = _vector_part(ds, frag, column, normalise)
        if p is None or size + p.mat.nbytes > WHOLE_MAX_BYTES:
            parts = []
            break
        if p.mat.shape[0]:
            parts.append(p)
            size += p.mat.nbytes
    if len({p.mat.shape[1] for p in parts}) != 1:  # none, or dimensions that differ
        if len(_NOT_WHOLE) > 4096:
            _NOT_WHOLE.clear()
        _NOT_WHOLE[key] = True
        return None
    out = parts[0] if len(parts) == 1 else _VectorPart(
        np.concatenate([p.keys for p in parts]), np.concatenate([p.mat for p in parts]))
    CACHE.put(key, out, out.mat.nbytes + out.keys.nbytes * 3)
    return out


def _bag_part(ds: lance.LanceDataset, frag: Any, column: str) -> _BagPart:
    key = _fragment_key(ds, frag, column, "bags")
    part = CACHE.get(key)
    if part is not None:
        return part  # type: ignore[no-any-return]
    packs = [p for b in scan(ds, [RID, column], fragments=[frag])
             if len(p := bags_from_arrow(b.column(1), b.column(0).to_numpy()))]
    dims = {p.dim for p in packs if p.vectors.shape[0]}
    if len(dims) > 1:
        raise DataError("multi-vector dimension mismatch: stored vectors differ in length")
    dim = dims.pop() if dims else 0
    vecs = [p.vectors for p in packs if p.vectors.shape[0]]
    offsets = [np.zeros(1, np.int64)]
    base = 0
    for p in packs:
        offsets.append(p.offsets[1:] + base)
        base += int(p.offsets[-1])
    packed = PackedBags(np.ascontiguousarray(np.concatenate(vecs)) if vecs
                        else np.zeros((0, dim), np.float32), np.concatenate(offsets),
                        np.concatenate([p.row_keys for p in packs]) if packs
                        else np.zeros(0, np.int64))
    out = _BagPart(packed)
    CACHE.put(key, out, packed.vectors.nbytes + packed.offsets.nbytes
              + packed.row_keys.nbytes * 3)
    return out


def _filtered(ds: lance.LanceDataset, filter_sql: str | None, allowed: I64 | None,
              fragments: Iterable[Any] | None) -> I64 | None:
    """The sorted row keys a query may return (None: all): the filter evaluated first."""
    if filter_sql is None:
        return allowed
    keys = np.unique(scan_row_keys(ds, filter_sql, fragments))
    if allowed is not None:
        keys = np.intersect1d(keys, allowed, assume_unique=True)
    return keys


def exact_vector_topk(ds: lance.LanceDataset, column: str, query: Any, k: int,
                      filter_sql: str | None = None, allowed: I64 | None = None,
                      fragments: Iterable[Any] | None = None, metric: str = "cosine",
                      ) -> tuple[I64, F32]:
    """Top-k rows by ``metric`` (cosine, l2 or dot; scores as ``metric_scores``)."""
    q = as_query_vector(query)
    norm = float(np.linalg.norm(q))
    cosine = metric == "cosine"
    qn = (q / np.float32(norm)).astype(np.float32) if norm > 0 and cosine else q
    whole = _whole_part(ds, column, cosine) if fragments is None else None
    frags = [] if whole is not None else \
        list(fragments) if fragments is not None else ds.get_fragments()
    keep = _filtered(ds, filter_sql, allowed, None if whole is not None else frags)
    top = TopK(k)
    if keep is not None and keep.size == 0:
        return top.result()
    for frag in [None] if whole is not None else frags:
        part = whole if frag is None else _vector_part(ds, frag, column, normalise=cosine)
        if part is None:
            _stream_vector(ds, frag, column, q, qn, keep, top, metric)
            continue
        if part.mat.shape[0] == 0:
            continue
        _check_dim(q.size, part.mat.shape[1])
        if keep is None:
            top.push(part.keys, metric_scores(part.mat, qn, metric))
        else:
            pos = part.positions(keep)
            if pos.size * 3 > part.keys.size:
                # Most rows pass: one product over all, then pick (a gather costs more).
                top.push(part.keys[pos], metric_scores(part.mat, qn, metric)[pos])
            elif pos.size:
                top.push(part.keys[pos],
                         metric_scores(np.take(part.mat, pos, axis=0), qn, metric))
    return top.result()


def _stream_vector(ds: lance.LanceDataset, frag: Any, column: str, q: F32, qn: F32,
                   keep: I64 | None, top: TopK, metric: str = "cosine") -> None:
    """A fragment too large for the cache, batch by batch with a running top-k."""
    for batch in scan(ds, [RID, column], fragments=[frag]):
        keys = batch.column(0).to_numpy().astype(np.int64)
        mat, valid = vectors_from_arrow(batch.column(1))
        keys = keys[valid]
        if keep is not None:
            ok = np.isin(keys, keep)
            keys, mat = keys[ok], mat[ok]
        if mat.shape[0]:
            _check_dim(q.size, mat.shape[1])
            top.push(keys, metric_scores(normalize_rows(mat), qn, metric) if metric == "cosine"
                     else metric_scores(mat, qn, metric))


def exact_maxsim_topk(ds: lance.LanceDataset, column: str, query: Any, k: int,
                      filter_sql: str | None = None, allowed: I64 | None = None,
                      fragments: Iterable[Any] | None = None) -> tuple[I64, F32]:
    q = as_query_matrix(query)
    frags = list(fragments) if fragments is not None else ds.get_fragments()
    keep = _filtered(ds, filter_sql, allowed, frags)
    top = TopK(k)
    if keep is not None and keep.size == 0:
        return top.result()
    for frag in frags:
        part = _bag_part(ds, frag, column)
        packed = part.packed
        if keep is not None:
            pos = part.positions(keep)
            if pos.size == 0:
                continue
            if pos.size != len(packed):
                packed = packed.take(pos)
        if len(packed):
            top.push(packed.row_keys, maxsim_scores(packed, q))
    return top.result()


def read_texts(ds: lance.LanceDataset, column: str, filter_sql: str | None = None,
               fragments: Iterable[Any] | None = None) -> tuple[I64, list[str | None]]:
    keys: list[I64] = []
    texts: list[str | None] = []
    for batch in scan(ds, [RID, column], filter_sql, fragments):
        keys.append(batch.column(0).to_numpy().astype(np.int64))
        texts.extend(batch.column(1).to_pylist())
    return (np.concatenate(keys) if keys else np.zeros(0, np.int64)), texts
