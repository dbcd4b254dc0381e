"""pgvector's functions on ``sparsevec``, computed on the sparse form only.

A sparse vector may have 1e9 dimensions, so nothing here ever builds a dense vector (except
``sparsevec::vector``, which pgvector bounds at 16,000 dimensions). Each function takes whole
Arrow batches (DuckDB calls it once per chunk of rows) and works on the flat index and value
buffers with numpy:

- a pair of vectors (``a <-> b`` row by row) is matched by the sorted keys ``row << 32 |
  index`` of both sides (one ``searchsorted``); every element contributes its own term (a²,
  |a|) unless its index is in the other vector too, then the pair's ((a-b)², |a-b|), so
  equal vectors are exactly 0 apart and no large sums cancel;
- one query against many rows (the ``ORDER BY col <op> $1 LIMIT k`` scan) is
  :mod:`.sparse_scan`'s.

Sums are in float64 (pgvector sums in float4 and returns float8; the results agree to float4
precision). Cosine distance of a zero vector is NaN, as pgvector's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from ..errors import DataError
from . import sparsevec as sv

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

METRICS = ("l2", "cosine", "dot", "l1")


def _sum_by(rows: I64, weights: Any, n: int) -> F64:
    """Per-row sums of ``weights`` (float64)."""
    return np.asarray(np.bincount(rows, weights, minlength=n), np.float64)


def _same_dims(a: sv.Columns, b: sv.Columns) -> npt.NDArray[np.bool_]:
    both = a.valid & b.valid
    differ = np.flatnonzero(both & (a.dim != b.dim))
    if differ.size:
        i = differ[0]
        raise DataError(f"different sparsevec dimensions {a.dim[i]} and {b.dim[i]}")
    return both


def _match(a_keys: I64, b_keys: I64) -> tuple[I64, npt.NDArray[np.bool_]]:
    """For each b key, its position in the sorted ``a_keys`` and whether it is there."""
    if a_keys.size == 0:
        return np.zeros(b_keys.size, np.int64), np.zeros(b_keys.size, bool)
    pos = np.searchsorted(a_keys, b_keys)
    pos_c = np.minimum(pos, a_keys.size - 1)
    return pos_c, a_keys[pos_c] == b_keys


def _terms(
    metric: str,
    a_rows: I64,
    a_vals: F64,
    b_rows: I64,
    b_vals: F64,
    pos: I64,
    hit: npt.NDArray[np.bool_],
    n: int,
) -> F64:
    """Per row: the inner product (``dot``, ``cosine``), the squared L2 distance (``l2``) or
    the L1 distance (``l1``); ``pos`` / ``hit``: b's elements matched in a."""
    if metric in ("dot", "cosine"):
        prod = a_vals[pos[hit]] * b_vals[hit]
        return _sum_by(b_rows[hit], prod, n)
    f = np.square if metric == "l2" else np.abs
    a_terms = f(a_vals)
    a_terms[pos[hit]] = f(a_vals[pos[hit]] - b_vals[hit])
    b_terms = np.where(hit, 0.0, f(b_vals))
    return _sum_by(a_rows, a_terms, n) + _sum_by(b_rows, b_terms, n)


def _norms(c: sv.Columns, rows: I64, n: int) -> F64:
    v = c.values.astype(np.float64)
    return _sum_by(rows, v * v, n)


def _finish(metric: str, t: F64, na: F64 | None, nb: F64 | None) -> F64:
    if metric == "l2":
        return np.sqrt(t)
    if metric == "cosine":
        assert na is not None and nb is not None
        with np.errstate(invalid="ignore", divide="ignore"):
            sim = t / np.sqrt(na * nb)
        return 1.0 - np.clip(sim, -1.0, 1.0)
    return t


def pairwise(metric: str, a: pa.Array, b: pa.Array) -> pa.Array:
    """``metric`` of a[i] and b[i] for every row (DOUBLE; NULL where either is NULL)."""
    ca, cb = sv.columns(a), sv.columns(b)
    n = ca.dim.size
    both = _same_dims(ca, cb)
    a_rows, b_rows = ca.rows, cb.rows
    a_keys = (a_rows << 32) | ca.indices
    b_keys = (b_rows << 32) | cb.indices
    pos, hit = _match(a_keys, b_keys)
    metric_t = "dot" if metric == "neg_dot" else metric
    t = _terms(
        metric_t,
        a_rows,
        ca.values.astype(np.float64),
        b_rows,
        cb.values.astype(np.float64),
        pos,
        hit,
        n,
    )
    na = _norms(ca, a_rows, n) if metric == "cosine" else None
    nb = _norms(cb, b_rows, n) if metric == "cosine" else None
    out = _finish(metric_t, t, na, nb)
    if metric == "neg_dot":
        out = -out
    return pa.array(out, pa.float64(), mask=~both)


def l2_norm(a: pa.Array) -> pa.Array:
    c = sv.columns(a)
    return pa.array(np.sqrt(_norms(c, c.rows, c.dim.size)), pa.float64(), mask=~c.valid)


def l2_normalize(a: pa.Array) -> pa.Array:
    """pgvector's ``l2_normalize(sparsevec)``: values over the norm (double), elements that
    become 0 dropped; a zero vector stays as it is."""
    c = sv.columns(a)
    rows = c.rows
    norm = np.sqrt(_norms(c, rows, c.dim.size))
    per = norm[rows]
    with np.errstate(invalid="ignore", divide="ignore"):
        vals = np.where(per > 0, c.values.astype(np.float64) / per, c.values).astype(np.float32)
    if np.isinf(vals).any():
        from ..errors import NumericValueOutOfRange

        raise NumericValueOutOfRange("value out of range: overflow")
    keep = vals != 0
    if not keep.all():
        counts = np.bincount(rows[keep], minlength=c.dim.size)
        offsets = np.zeros(c.dim.size + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        c = sv.Columns(c.dim, offsets, c.indices[keep], vals[keep], c.valid)
    else:
        c = sv.Columns(c.dim, c.offsets, c.indices, vals, c.valid)
    return sv.from_columns(c)


# -- DuckDB functions (Arrow batches in and out) ------------------------------------------------


def sparsevec_in(a: pa.Array) -> pa.Array:
    return sv.to_arrow([None if s is None else sv.parse(s) for s in a.to_pylist()])


def sparsevec_out(a: pa.Array) -> pa.Array:
    c = sv.columns(a)
    out: list[str | None] = []
    for r in range(c.dim.size):
        if not c.valid[r]:
            out.append(None)
            continue
        lo, hi = c.offsets[r], c.offsets[r + 1]
        out.append(
            sv.format_text(
                sv.SparseVec(int(c.dim[r]), c.indices[lo:hi].astype(np.int32), c.values[lo:hi])
            )
        )
    return pa.array(out, pa.string())


def from_dense(a: pa.Array) -> pa.Array:
    """``vector`` / ``real[]`` -> ``sparsevec`` (pgvector's checks)."""
    if isinstance(a, pa.ChunkedArray):
        a = a.combine_chunks()
    out: list[Any] = []
    for v in a.to_numpy(zero_copy_only=False) if len(a) else []:
        if v is None:
            out.append(None)
            continue
        arr = np.asarray(v, np.float32)
        if np.isnan(arr).any() or np.isinf(arr).any():
            sv.check_elements(arr)
        out.append(sv.from_dense(arr))
    return sv.to_arrow(out)


def to_dense(a: pa.Array, legacy: bool = False) -> pa.Array:
    """``sparsevec`` -> ``vector`` (at most 16,000 dimensions, as pgvector's vector;
    ``legacy``: for a column of the dense layout, at most its 100,000)."""
    from .vectors import SPARSEVEC_MAX_DIM

    c = sv.columns(a)
    out: list[Any] = []
    for r in range(c.dim.size):
        if not c.valid[r]:
            out.append(None)
            continue
        if not legacy:
            sv.check_vector_dim(int(c.dim[r]))
        elif c.dim[r] > SPARSEVEC_MAX_DIM:
            from ..errors import ProgramLimitExceeded

            raise ProgramLimitExceeded(
                f"sparsevec cannot have more than {SPARSEVEC_MAX_DIM} dimensions in a column "
                "stored densely (made before tarndb stored sparsevec sparsely)"
            )
        d = np.zeros(int(c.dim[r]), np.float32)
        lo, hi = c.offsets[r], c.offsets[r + 1]
        d[c.indices[lo:hi]] = c.values[lo:hi]
        out.append(d)
    return pa.array(out, pa.list_(pa.float32()))


def nnz(a: pa.Array) -> pa.Array:
    c = sv.columns(a)
    return pa.array(np.diff(c.offsets).astype(np.int32), pa.int32(), mask=~c.valid)


#: name -> (function, number of sparsevec arguments, DuckDB return type name)
FUNCTIONS: dict[str, tuple[Any, int, str]] = {
    "sparsevec_l2_distance": (lambda a, b: pairwise("l2", a, b), 2, "DOUBLE"),
    "sparsevec_cosine_distance": (lambda a, b: pairwise("cosine", a, b), 2, "DOUBLE"),
    "sparsevec_inner_product": (lambda a, b: pairwise("dot", a, b), 2, "DOUBLE"),
    "sparsevec_negative_inner_product": (lambda a, b: pairwise("neg_dot", a, b), 2, "DOUBLE"),
    "sparsevec_l1_distance": (lambda a, b: pairwise("l1", a, b), 2, "DOUBLE"),
    "sparsevec_l2_norm": (l2_norm, 1, "DOUBLE"),
    "sparsevec_l2_normalize": (l2_normalize, 1, "SPARSEVEC"),
    "sparsevec_to_vector": (to_dense, 1, "FLOAT[]"),
    "sparsevec_to_dense": (lambda a: to_dense(a, legacy=True), 1, "FLOAT[]"),
    "sparsevec_out": (sparsevec_out, 1, "VARCHAR"),
    "sparsevec_nnz": (nnz, 1, "INTEGER"),
}


def install(conn: Any) -> None:
    """Register the functions on a DuckDB connection (once per database)."""
    import duckdb

    from .udf import register_arrow

    struct_t = duckdb.sqltype(sv.DUCKDB)
    floats = duckdb.list_type(duckdb.sqltype("FLOAT"))
    types = {
        "DOUBLE": duckdb.sqltype("DOUBLE"),
        "SPARSEVEC": struct_t,
        "FLOAT[]": floats,
        "VARCHAR": duckdb.sqltype("VARCHAR"),
        "INTEGER": duckdb.sqltype("INTEGER"),
    }

    def named(fn: Any, name: str, n: int) -> Any:
        # DuckDB counts the parameters of the callable: give each a real signature
        if n == 2:

            def two(a: pa.Array, b: pa.Array) -> pa.Array:
                return fn(a, b)

            two.__name__ = name
            return two

        def one(a: pa.Array) -> pa.Array:
            return fn(a)

        one.__name__ = name
        return one

    for name, (fn, n, ret) in FUNCTIONS.items():
        register_arrow(conn, name, named(fn, name, n), [struct_t] * n, types[ret])
    register_arrow(conn, "sparsevec_in", sparsevec_in, [duckdb.sqltype("VARCHAR")], struct_t)
    register_arrow(conn, "sparsevec_from_vector", from_dense, [floats], struct_t)
