"""Exact scoring kernels in numpy: cosine similarity and MaxSim.

These are both the exact-scan execution path and the oracle the approximate paths are tested
against, so they favour exactness over cleverness: float32 storage, float32 BLAS dot products,
and explicit handling of zero vectors (score 0, never NaN).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from tarndb.errors import DataError

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

# Bags are scored in slices of this many token rows so that the (tokens x query tokens)
# similarity matrix stays around 32 MB whatever the table size.
_MAXSIM_CHUNK_TOKENS = 1 << 18

# Up to this many token rows (a rerank's candidates: 200 bags of ~25 vectors; an exact
# scan's fragments of up to ~1,000 such bags) the MaxSim product runs single-threaded, in
# blocks of at most _SINGLE_THREAD_GEMM multiply-adds:
# OpenBLAS threads a float32 product above roughly 2^19-2^20 of them (measured: 256 x 128 x
# 16 ran on one thread, 512 x 128 x 16 on two), and on a small machine shared with the
# client and other work its threads cost more than they save: in ``tarndb serve`` the
# 4,800 x 128 x 16 product of a pooled query's rerank took 1.4 ms threaded against 0.3 ms
# on one thread, and its spinning threads slowed the socket writes after it (an exact scan
# of ten 24k-token fragments under load: 82 ms in blocks, 188 ms threaded).
MAXSIM_SINGLE_THREAD_TOKENS = 1 << 15
_SINGLE_THREAD_GEMM = 1 << 19


def as_query_vector(query: Any) -> F32:
    """A 1-D float32 query vector, or DataError."""
    q = np.asarray(query, dtype=np.float32)
    if q.ndim != 1 or q.size == 0:
        raise DataError(f"a vector query must be a non-empty 1-D array, got shape {q.shape}")
    if not np.isfinite(q).all():
        raise DataError("a vector query must not contain NaN or infinity")
    return q


def as_query_matrix(query: Any) -> F32:
    """A 2-D float32 multi-vector query (tokens x dim), or DataError."""
    if isinstance(query, np.ndarray):
        q = query.astype(np.float32, copy=False)
    else:
        rows = [np.asarray(r, dtype=np.float32) for r in query]
        if rows and len({r.shape for r in rows}) != 1:
            raise DataError("a multi-vector query must have vectors of one dimension")
        q = np.stack(rows) if rows else np.zeros((0, 0), np.float32)
    if q.ndim == 1:
        q = q[None, :]
    if q.ndim != 2 or q.shape[0] == 0 or q.shape[1] == 0:
        raise DataError(f"a multi-vector query must be a non-empty 2-D array, got {q.shape}")
    if not np.all(np.isfinite(q)):
        raise DataError("a multi-vector query must not contain NaN or infinity")
    return q


def normalize_rows(m: F32) -> F32:
    """Rows scaled to unit L2 norm; zero rows stay zero (no NaN)."""
    m = np.asarray(m, dtype=np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", m, m, dtype=np.float32))
    safe = np.where(norms > 0, norms, np.float32(1.0))
    out: F32 = (m / safe[:, None]).astype(np.float32, copy=False)
    return out


def normalize_vector(q: F32) -> F32:
    """One vector scaled to unit L2 norm (the zero vector stays zero): what
    ``normalize_rows(q[None, :])[0]`` gives, without its per-row machinery (a query's
    normalisation cost a tenth of an in-memory ANN probe)."""
    q = np.asarray(q, dtype=np.float32)
    norm = np.float32(np.sqrt(np.einsum("i,i->", q, q, dtype=np.float32)))
    if not norm > 0:
        return q.copy()
    out: F32 = q / norm
    return out


def _check_dim(expected: int, got: int, what: str = "vector") -> None:
    if expected != got:
        raise DataError(
            f"{what} dimension mismatch: the query has {expected} dimensions "
            f"but the stored {what} has {got}"
        )


def cosine_similarity(a: Any, b: Any) -> float:
    """Cosine similarity of two 1-D vectors; 0.0 when either is the zero vector."""
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    _check_dim(x.size, y.size)
    nx = float(np.linalg.norm(x))
    ny = float(np.linalg.norm(y))
    if nx == 0.0 or ny == 0.0:
        return 0.0
    return float(np.dot(x, y) / (nx * ny))


def cosine_scores(matrix: F32, query: Any) -> F32:
    """Cosine similarity of every row of ``matrix`` (n x d) with ``query`` (d,)."""
    q = as_query_vector(query)
    m = np.asarray(matrix, dtype=np.float32)
    if m.ndim != 2:
        raise DataError(f"expected an n x d matrix of vectors, got shape {m.shape}")
    if m.shape[0] == 0:
        return np.zeros(0, np.float32)
    _check_dim(q.size, m.shape[1])
    qn = float(np.linalg.norm(q))
    if qn == 0.0:
        return np.zeros(m.shape[0], np.float32)
    dots = m @ (q / np.float32(qn))
    norms = np.sqrt(np.einsum("ij,ij->i", m, m, dtype=np.float32))
    out = np.zeros(m.shape[0], np.float32)
    nz = norms > 0
    out[nz] = dots[nz] / norms[nz]
    return out


def maxsim(bag: Any, query: Any) -> float:
    """MaxSim of one bag of vectors against a multi-vector query, in float64."""
    q = as_query_matrix(query).astype(np.float64)
    b = np.asarray(bag, dtype=np.float64)
    if b.size == 0:
        return 0.0
    b = b.reshape(-1, b.shape[-1])
    _check_dim(q.shape[1], b.shape[1], "multi-vector")
    qn = np.linalg.norm(q, axis=1, keepdims=True)
    bn = np.linalg.norm(b, axis=1, keepdims=True)
    q = q / np.where(qn > 0, qn, 1.0)
    b = b / np.where(bn > 0, bn, 1.0)
    return float((b @ q.T).max(axis=0).sum())


@dataclass
class PackedBags:
    """Bags of vectors packed into one matrix.

    ``vectors[offsets[i]:offsets[i+1]]`` is bag ``i`` (rows already L2-normalised), and
    ``row_keys[i]`` its row key. Packing lets MaxSim run as one matrix product plus one
    ``np.maximum.reduceat`` instead of a Python loop per row.
    """

    vectors: F32
    offsets: I64
    row_keys: I64

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1]) if self.vectors.ndim == 2 else 0

    def __len__(self) -> int:
        return int(self.row_keys.shape[0])

    def take(self, idx: npt.NDArray[np.integer[Any]]) -> PackedBags:
        return take_bags(self.vectors, self.offsets, self.row_keys,
                         np.asarray(idx, dtype=np.int64))


def take_bags(vectors: F32, offsets: I64, keys: I64, idx: I64) -> PackedBags:
    """Bags ``idx`` of a packing given as its parts (``vectors`` may be memory-mapped)."""
    starts = offsets[idx]
    lengths = offsets[idx + 1] - starts
    out_offsets = np.zeros(idx.size + 1, np.int64)
    np.cumsum(lengths, out=out_offsets[1:])
    # Token positions: start of each bag repeated over its length plus a ramp.
    ramp = np.arange(int(out_offsets[-1]), dtype=np.int64) - np.repeat(out_offsets[:-1],
                                                                         lengths)
    rows = np.repeat(starts, lengths) + ramp
    return PackedBags(np.take(vectors, rows, axis=0), out_offsets, keys[idx])


def pack_bags(bags: Sequence[Any], row_keys: Any = None) -> PackedBags:
    """Pack Python/numpy bags (each k_i x d) into a :class:`PackedBags` (normalised)."""
    mats = [np.asarray(b, dtype=np.float32).reshape(-1, np.asarray(b).shape[-1])
            if np.asarray(b).size else None for b in bags]
    dims = {m.shape[1] for m in mats if m is not None}
    if len(dims) > 1:
        raise DataError(f"bags of vectors of different dimensions: {sorted(dims)}")
    d = dims.pop() if dims else 0
    lengths = np.array([0 if m is None else m.shape[0] for m in mats], np.int64)
    offsets = np.zeros(len(mats) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    present = [m for m in mats if m is not None]
    vecs = np.concatenate(present) if present else np.zeros((0, d), np.float32)
    keys = (np.arange(len(mats), dtype=np.int64) if row_keys is None
            else np.asarray(row_keys, dtype=np.int64))
    return PackedBags(normalize_rows(vecs), offsets, keys)


def maxsim_scores(packed: PackedBags, query: Any) -> F32:
    """MaxSim of every bag with ``query``: per query vector the best dot product, summed.

    Vectors on both sides are normalised; an empty bag scores 0.
    """
    q = normalize_rows(as_query_matrix(query))
    n = len(packed)
    out = np.zeros(n, np.float32)
    if n == 0 or packed.vectors.shape[0] == 0:
        return out
    _check_dim(q.shape[1], packed.dim, "multi-vector")
    offsets = packed.offsets
    lengths = np.diff(offsets)
    # reduceat mis-handles empty segments (it returns the next element), so score only the
    # non-empty bags and leave empty ones at 0.
    nonempty = np.flatnonzero(lengths > 0)
    qt = np.ascontiguousarray(q.T)
    start_bag = 0
    while start_bag < nonempty.size:
        # Grow the slice of bags until it holds about _MAXSIM_CHUNK_TOKENS tokens.
        first_tok = offsets[nonempty[start_bag]]
        end_bag = int(np.searchsorted(offsets[nonempty + 1],
                                      first_tok + _MAXSIM_CHUNK_TOKENS, side="right"))
        end_bag = max(end_bag, start_bag + 1)
        bags = nonempty[start_bag:end_bag]
        last_tok = offsets[bags[-1] + 1]
        sims = _product(packed.vectors[first_tok:last_tok], qt)
        best = np.maximum.reduceat(sims, offsets[bags] - first_tok, axis=0)
        out[bags] = best.sum(axis=1, dtype=np.float32)
        start_bag = end_bag
    return out


def _product(a: F32, b: F32) -> F32:
    """``a @ b``; single-threaded (in row blocks) up to MAXSIM_SINGLE_THREAD_TOKENS rows."""
    rows = int(a.shape[0])
    step = max(1, _SINGLE_THREAD_GEMM // max(1, int(b.shape[0]) * int(b.shape[1])))
    if rows <= step or rows > MAXSIM_SINGLE_THREAD_TOKENS:
        return np.asarray(a @ b, dtype=np.float32)
    out = np.empty((rows, int(b.shape[1])), np.float32)
    for s in range(0, rows, step):
        np.matmul(a[s:s + step], b, out=out[s:s + step])
    return out


def vectors_from_arrow(column: pa.Array | pa.ChunkedArray) -> tuple[F32, npt.NDArray[np.bool_]]:
    """A list<float32> (or fixed-size list) column as an (n_valid x d) matrix.

    Returns the matrix of the non-null rows and the validity mask over all rows: NULL
    embeddings never match. Rows of different lengths raise DataError, since a cosine over
    vectors of different dimensions is meaningless.
    """
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(arr)
    valid = np.ones(n, bool) if arr.null_count == 0 else np.asarray(
        pc.is_valid(arr).to_numpy(zero_copy_only=False), dtype=bool)
    if pa.types.is_fixed_size_list(arr.type):
        d = arr.type.list_size
        if arr.null_count:
            arr = arr.filter(pa.array(valid))
        flat = arr.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        return flat.reshape(-1, d), valid
    if arr.null_count:
        arr = arr.filter(pa.array(valid))
    lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
    if lengths.size == 0:
        return np.zeros((0, 0), np.float32), valid
    d = int(lengths[0])
    if np.any(lengths != d):
        bad = int(lengths[np.flatnonzero(lengths != d)[0]])
        raise DataError(
            f"vector dimension mismatch: stored vectors have {d} and {bad} dimensions")
    flat = arr.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return flat.reshape(-1, d), valid


def bags_from_arrow(column: pa.Array | pa.ChunkedArray, row_keys: I64) -> PackedBags:
    """A list<list<float32>> column as normalised :class:`PackedBags` (NULL rows dropped)."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    keys = np.asarray(row_keys, dtype=np.int64)
    if arr.null_count:
        valid = np.asarray(pc.is_valid(arr).to_numpy(zero_copy_only=False), dtype=bool)
        arr = arr.filter(pa.array(valid))
        keys = keys[valid]
    outer = pc.list_value_length(arr).to_numpy(zero_copy_only=False).astype(np.int64)
    outer = np.nan_to_num(outer).astype(np.int64)
    inner_arr = arr.flatten()
    if inner_arr.null_count:
        raise DataError("a multi-vector must not contain NULL vectors")
    if pa.types.is_fixed_size_list(inner_arr.type):
        d = inner_arr.type.list_size
    else:
        inner = pc.list_value_length(inner_arr).to_numpy(zero_copy_only=False)
        d = int(inner[0]) if inner.size else 0
        if inner.size and np.any(inner != d):
            raise DataError("multi-vector dimension mismatch: stored vectors differ in length")
    flat = inner_arr.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    offsets = np.zeros(outer.size + 1, np.int64)
    np.cumsum(outer, out=offsets[1:])
    return PackedBags(normalize_rows(flat.reshape(-1, d) if d else
                                     np.zeros((0, 0), np.float32)), offsets, keys)


# Up to this many rows a matrix-vector product runs single-threaded (einsum, no BLAS):
# on a 2-core machine shared with other work, multi-threaded BLAS gemv for 10k x 384 swings
# from 0.5 ms to 15+ ms with the load; einsum stays at ~1 ms.
MATVEC_SINGLE_THREAD_ROWS = 1 << 16


#: numpy's ``vecdot`` (2.0+): one single-threaded BLAS dot per row, 10-50% faster than
#: einsum's generic loop for the probed lists of an ANN query (1,270 x 384: 59 vs 87 us hot).
_VECDOT = getattr(np, "vecdot", None)


def matvec(mat: F32, q: F32) -> F32:
    """``mat @ q`` as float32, single-threaded for small matrices (see above)."""
    if mat.shape[0] <= MATVEC_SINGLE_THREAD_ROWS:
        if _VECDOT is not None and mat.dtype == np.float32 and q.dtype == np.float32:
            out: F32 = _VECDOT(mat, q)
            return out
        return np.einsum("ij,j->i", mat, q).astype(np.float32, copy=False)
    return np.asarray(mat @ q, dtype=np.float32)


#: The vector metrics a vector index and the exact kernels rank by: cosine similarity
#: (pg_deeplake's ``<#>`` on float4[], pgvector's ``<=>``), L2 distance (``<->``) and inner
#: product (``<#>`` on vector, negated).
METRICS = ("cosine", "l2", "dot")


def sq_norms(mat: F32) -> F32:
    """Squared L2 norm of every row."""
    return np.einsum("ij,ij->i", mat, mat, dtype=np.float32).astype(np.float32, copy=False)


def metric_scores(mat: F32, q: F32, metric: str, norms2: F32 | None = None) -> F32:
    """Scores of the rows of ``mat`` against ``q`` by ``metric``, higher is nearer.

    cosine and dot: ``mat @ q`` (for cosine both sides are normalised already); l2:
    ``2 mat @ q - |row|^2``, which is ``|q|^2 - |row - q|^2``: the L2 order, without the
    square root and the query's constant. ``norms2``: the rows' squared norms, when known.
    """
    dots = matvec(mat, q)
    if metric != "l2":
        return dots
    if norms2 is None:
        norms2 = sq_norms(mat)
    return (np.float32(2.0) * dots - norms2).astype(np.float32, copy=False)


def topk_indices(scores: npt.NDArray[Any], k: int) -> npt.NDArray[np.int64]:
    """Indices of the k largest scores, best first; ties broken by lower index."""
    n = scores.shape[0]
    if k <= 0 or n == 0:
        return np.zeros(0, np.int64)
    if k < n:
        part = np.argpartition(-scores, k - 1)[:k]
        # argpartition may pick any of several tied k-th scores: include all ties so the
        # ordering below is deterministic (lower index wins).
        kth = scores[part].min()
        part = np.flatnonzero(scores >= kth)
    else:
        part = np.arange(n)
    order = np.lexsort((part, -scores[part].astype(np.float64)))
    return part[order][:k].astype(np.int64)
