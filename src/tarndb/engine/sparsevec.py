"""pgvector's ``sparsevec(n)``, stored sparsely: values, text and binary I/O, Arrow arrays.

A sparse vector may have up to 1,000,000,000 dimensions and 16,000 non-zero elements
(pgvector's ``SPARSEVEC_MAX_DIM`` / ``SPARSEVEC_MAX_NNZ``), so it is never densified: a
column is stored as an Arrow struct ``{dim int32, indices list<int32>, values list<float32>}``
(0-based ascending indices, non-zero values), which is

- what Lance stores natively (a struct of two variable-length lists: nothing decoded per row,
  and a scan of the column is three flat buffers: the dims, the indices and the values);
- what DuckDB reads as ``STRUCT(dim INTEGER, indices INTEGER[], "values" FLOAT[])`` without
  a conversion, so ``s.dim`` and NULLs work in SQL and the distance functions
  (:mod:`.sparse_ops`) receive whole Arrow batches of it;
- one value per row (a pair of list columns would let a row hold indices without values).

A Python value is a :class:`SparseVec`; a struct read back from Arrow is a ``dict`` with the
same three fields, and the encoders take either. Errors are pgvector's (``sparsevec.c``):
its SQLSTATEs and words.

Tables written before this layout (``sparsevec`` stored as a dense ``float4[]`` list, at most
100,000 dimensions) keep their catalog type (``ndim`` 1) and keep being read and written
densely as before (:attr:`tarndb.engine.types.ColumnType.is_sparse` tells them apart).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from ..errors import (
    DataError,
    InvalidParameterValue,
    InvalidTextRepresentation,
    NumericValueOutOfRange,
    ProgramLimitExceeded,
)

#: pgvector's limits (sparsevec.h)
MAX_DIM = 1_000_000_000
MAX_NNZ = 16000
#: pgvector's HNSW limit on a sparse vector's non-zero elements (hnsw.h)
HNSW_MAX_NNZ = 1000
#: a dense ``vector`` (the target of ``sparsevec::vector``) holds at most this many
VECTOR_MAX_DIM = 16000

#: The Arrow type of a stored sparse vector, and DuckDB's name for it.
ARROW = pa.struct(
    [
        pa.field("dim", pa.int32()),
        pa.field("indices", pa.list_(pa.int32())),
        pa.field("values", pa.list_(pa.float32())),
    ]
)
DUCKDB = 'STRUCT(dim INTEGER, indices INTEGER[], "values" FLOAT[])'

I32 = npt.NDArray[np.int32]
F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class SparseVec:
    """One sparse vector: ``dim``, 0-based ascending ``indices`` and their non-zero
    ``values``."""

    dim: int
    indices: I32
    values: F32

    @property
    def nnz(self) -> int:
        return int(self.indices.size)

    def as_dict(self) -> dict[str, Any]:
        """What pyarrow and DuckDB take for a struct value."""
        return {"dim": self.dim, "indices": self.indices.tolist(), "values": self.values.tolist()}

    def to_dense(self) -> F32:
        """The dense vector (``sparsevec::vector``): only for dimensions a vector may have."""
        check_vector_dim(self.dim)
        out = np.zeros(self.dim, np.float32)
        out[self.indices] = self.values
        return out


def of(v: Any) -> SparseVec:
    """A :class:`SparseVec` from one (a struct's ``dict`` as Arrow gives it back)."""
    if isinstance(v, SparseVec):
        return v
    return SparseVec(
        int(v["dim"]), np.asarray(v["indices"], np.int32), np.asarray(v["values"], np.float32)
    )


# -- checks (pgvector's CheckDim, CheckNnz, CheckIndex, CheckElement) -------------------------


def check_dim(dim: int) -> None:
    if dim < 1:
        raise DataError("sparsevec must have at least 1 dimension")
    if dim > MAX_DIM:
        raise ProgramLimitExceeded(f"sparsevec cannot have more than {MAX_DIM} dimensions")


def check_nnz(nnz: int, dim: int) -> None:
    if nnz < 0:
        raise DataError("sparsevec cannot have negative number of elements")
    if nnz > MAX_NNZ:
        raise ProgramLimitExceeded(f"sparsevec cannot have more than {MAX_NNZ} non-zero elements")
    if nnz > dim:
        raise ProgramLimitExceeded("sparsevec cannot have more elements than dimensions")


def check_indices(idx: npt.NDArray[np.int64], dim: int) -> None:
    """Every index in 0..dim-1, strictly ascending (the first violation's error, as pgvector
    checks them one by one)."""
    if idx.size == 0:
        return
    bad = (idx < 0) | (idx >= dim)
    step = np.diff(idx)
    first_bad = int(np.argmax(bad)) if bad.any() else idx.size
    down = np.flatnonzero(step <= 0)
    if down.size and down[0] + 1 < first_bad:
        raise DataError(
            "sparsevec indices must be in ascending order"
            if step[down[0]] < 0
            else "sparsevec indices must not contain duplicates"
        )
    if first_bad < idx.size:
        raise DataError("sparsevec index out of bounds")


def check_elements(values: F32) -> None:
    if values.size and not np.isfinite(values).all():
        if np.isnan(values).any():
            raise DataError("NaN not allowed in sparsevec")
        raise DataError("infinite value not allowed in sparsevec")


def check_vector_dim(dim: int) -> None:
    """``sparsevec::vector``: pgvector's vector limits."""
    if dim > VECTOR_MAX_DIM:
        raise ProgramLimitExceeded(f"vector cannot have more than {VECTOR_MAX_DIM} dimensions")


def check_typmod(v: SparseVec, typmod: int | None) -> None:
    if typmod is not None and typmod != v.dim:
        raise DataError(f"expected {typmod} dimensions, not {v.dim}")


# -- text ---------------------------------------------------------------------------------------

_SPACE = " \t\n\r\v\f"
_INT = re.compile(r"[ \t\n\r\v\f]*([+-]?\d+)")


def _syntax(s: str, detail: str | None = None) -> InvalidTextRepresentation:
    return InvalidTextRepresentation(
        f'invalid input syntax for type sparsevec: "{s}"', detail=detail
    )


def _strtol(s: str, pos: int, lit: str) -> tuple[int, int]:
    m = _INT.match(s, pos)
    if m is None:
        raise _syntax(lit)
    # kept in int range for the error message, as pgvector does
    return max(min(int(m.group(1)), 2**31 - 1), -(2**31) + 1), m.end()


def _strtof(text: str, lit: str) -> float:
    t = text.strip(_SPACE)
    if "_" in t:  # Python's float() reads 1_0, strtof does not
        raise _syntax(lit)
    try:
        x = float(t)
    except ValueError:
        raise _syntax(lit) from None
    with np.errstate(over="ignore"):
        f = np.float32(x)
    if (np.isinf(f) and np.isfinite(x)) or (f == 0 and x != 0):
        raise NumericValueOutOfRange(f'"{t}" is out of range for type sparsevec')
    return float(f)


def parse(lit: str) -> SparseVec:
    """pgvector's ``sparsevec_in``: ``{1:0.5,3:2}/5`` (1-based indices, any order; zeros are
    dropped), with its errors."""
    if lit.count(",") + 1 > MAX_NNZ:
        raise ProgramLimitExceeded(f"sparsevec cannot have more than {MAX_NNZ} non-zero elements")
    s = lit.lstrip(_SPACE)
    if not s.startswith("{"):
        raise _syntax(lit, 'Vector contents must start with "{".')
    close = s.find("}")
    if close < 0:
        raise _syntax(lit)
    body = s[1:close]
    idx: list[int] = []
    vals: list[float] = []
    if body.strip(_SPACE):
        for item in body.split(","):
            k, sep, x = item.partition(":")
            if not sep:
                raise _syntax(lit)
            i, end = _strtol(k, 0, lit)
            if k[end:].strip(_SPACE):
                raise _syntax(lit)
            v = _strtof(x, lit)
            if np.isnan(v):
                raise DataError("NaN not allowed in sparsevec")
            if np.isinf(v):
                raise DataError("infinite value not allowed in sparsevec")
            if v != 0:  # pgvector does not store zeros
                idx.append(i - 1)
                vals.append(v)
    rest = s[close + 1 :].lstrip(_SPACE)
    if not rest.startswith("/"):
        raise _syntax(lit, "Unexpected end of input.")
    dim, end = _strtol(rest, 1, lit)
    if rest[end:].strip(_SPACE):
        raise _syntax(lit, "Junk after closing.")
    check_dim(dim)
    ia = np.asarray(idx, np.int64)
    va = np.asarray(vals, np.float32)
    order = np.argsort(ia, kind="stable")
    ia, va = ia[order], va[order]
    check_indices(ia, dim)
    return SparseVec(dim, ia.astype(np.int32), va)


def _shortest(values: F32) -> list[str]:
    """float4 values in their shortest round-trip form, as PostgreSQL prints float4."""
    out = values.astype(str).tolist()
    return [t[:-2] if t.endswith(".0") else t for t in out]


def format_text(v: Any) -> str:
    """pgvector's ``sparsevec_out``: ``{1:0.5,3:2}/5``."""
    sv = of(v)
    pairs = zip((sv.indices.astype(np.int64) + 1).tolist(), _shortest(sv.values), strict=True)
    return "{" + ",".join(f"{i}:{x}" for i, x in pairs) + "}/" + str(sv.dim)


# -- binary (pgvector's sparsevec_send / sparsevec_recv) ----------------------------------------

_HEAD = struct.Struct("!iii")


def encode_binary(v: Any) -> bytes:
    """int32 dim, int32 nnz, int32 unused (0), int32 indices[nnz] (0-based), float4
    values[nnz], all big-endian."""
    sv = of(v)
    return (
        _HEAD.pack(sv.dim, sv.nnz, 0)
        + sv.indices.astype(">i4").tobytes()
        + sv.values.astype(">f4").tobytes()
    )


def decode_binary(b: bytes) -> SparseVec:
    if len(b) < 12:
        raise InvalidParameterValue("incorrect binary data format for type sparsevec")
    dim, nnz, unused = _HEAD.unpack_from(b)
    check_dim(dim)
    check_nnz(nnz, dim)
    if unused != 0:
        raise DataError(f"expected unused to be 0, not {unused}")
    if len(b) != 12 + 8 * nnz:
        raise InvalidParameterValue("incorrect binary data format for type sparsevec")
    idx = np.frombuffer(b, ">i4", nnz, 12).astype(np.int64)
    check_indices(idx, dim)
    vals = np.frombuffer(b, ">f4", nnz, 12 + 4 * nnz).astype(np.float32)
    check_elements(vals)
    if (vals == 0).any():
        raise DataError("binary representation of sparsevec cannot contain zero values")
    return SparseVec(dim, idx.astype(np.int32), vals)


# -- dense <-> sparse ---------------------------------------------------------------------------


def from_dense(x: Any) -> SparseVec:
    """pgvector's ``vector_to_sparsevec`` / ``array_to_sparsevec``: the non-zeros of a dense
    vector."""
    arr = np.asarray(x, dtype=np.float32).reshape(-1)
    check_dim(arr.size)
    nz = np.flatnonzero(arr)
    check_nnz(int(nz.size), arr.size)
    vals = arr[nz]
    check_elements(vals)
    return SparseVec(int(arr.size), nz.astype(np.int32), vals)


# -- Arrow arrays -------------------------------------------------------------------------------


@dataclass
class Columns:
    """A struct array's buffers: per row ``dim`` and ``offsets`` into the flat ``indices`` /
    ``values``; ``valid`` False for NULL rows (which hold no elements)."""

    dim: npt.NDArray[np.int64]
    offsets: npt.NDArray[np.int64]
    indices: npt.NDArray[np.int64]
    values: F32
    valid: npt.NDArray[np.bool_]

    @property
    def rows(self) -> npt.NDArray[np.int64]:
        """The row of each flat element."""
        return np.repeat(np.arange(self.dim.size, dtype=np.int64), np.diff(self.offsets))


def columns(a: pa.Array | pa.ChunkedArray) -> Columns:
    """The buffers of a sparse vector struct array (NULL rows with no elements)."""
    if isinstance(a, pa.ChunkedArray):
        a = a.combine_chunks() if a.num_chunks != 1 else a.chunk(0)
    if a.type != ARROW:
        a = a.cast(ARROW)
    n = len(a)
    sa: pa.StructArray = a
    # flatten(), not field(): it applies the struct's own offset and validity to children
    dim_a, idx_l, val_l = sa.flatten()
    # NULL: the struct's validity, or a NULL ``dim`` as Lance stores it (see storable())
    valid = np.asarray(dim_a.is_valid().to_numpy(zero_copy_only=False), bool)
    dims = dim_a.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    lens = np.where(
        valid, idx_l.value_lengths().fill_null(0).to_numpy(zero_copy_only=False), 0
    ).astype(np.int64)
    vlens = np.where(
        valid, val_l.value_lengths().fill_null(0).to_numpy(zero_copy_only=False), 0
    ).astype(np.int64)
    if not np.array_equal(lens, vlens):
        raise DataError("sparsevec indices and values differ in length")
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(lens, out=offsets[1:])
    if valid.all() and idx_l.null_count == 0 and val_l.null_count == 0:
        start = idx_l.offsets[0].as_py()
        idx = idx_l.values.slice(start, int(offsets[-1])).to_numpy(zero_copy_only=False)
        vstart = val_l.offsets[0].as_py()
        vals = val_l.values.slice(vstart, int(offsets[-1])).to_numpy(zero_copy_only=False)
    else:
        keep = pa.array(valid)
        idx = idx_l.filter(keep).flatten().to_numpy(zero_copy_only=False)
        vals = val_l.filter(keep).flatten().to_numpy(zero_copy_only=False)
    return Columns(
        np.where(valid, dims, 0),
        offsets,
        np.asarray(idx, np.int64),
        np.asarray(vals, np.float32),
        valid,
    )


def to_arrow(values: list[Any]) -> pa.StructArray:
    """Sparse vectors (:class:`SparseVec`, dicts or None) as one struct array, built from
    numpy buffers (no Python float per element)."""
    svs = [None if v is None else of(v) for v in values]
    return _from_parts(
        [0 if v is None else v.dim for v in svs],
        [None if v is None else v.indices for v in svs],
        [None if v is None else v.values for v in svs],
    )


def _from_parts(dims: list[int], idx: list[Any], vals: list[Any]) -> pa.StructArray:
    valid = np.array([i is not None for i in idx], bool)
    lens = np.array([0 if i is None else len(i) for i in idx], np.int32)
    offsets = np.zeros(len(idx) + 1, np.int32)
    np.cumsum(lens, out=offsets[1:])
    present_i = [i for i in idx if i is not None]
    present_v = [v for v in vals if v is not None]
    flat_i = np.concatenate(present_i).astype(np.int32) if present_i else np.zeros(0, np.int32)
    flat_v = np.concatenate(present_v).astype(np.float32) if present_v else np.zeros(0, np.float32)
    off = pa.array(offsets)
    mask = pa.array(~valid) if not valid.all() else None
    return pa.StructArray.from_arrays(
        [
            pa.array(np.asarray(dims, np.int32)),
            pa.ListArray.from_arrays(off, pa.array(flat_i)),
            pa.ListArray.from_arrays(off, pa.array(flat_v)),
        ],
        fields=list(ARROW),
        mask=mask,
    )


def from_columns(c: Columns) -> pa.StructArray:
    """:class:`Columns` back to a struct array."""
    off = pa.array(c.offsets.astype(np.int32))
    mask = pa.array(~c.valid) if not c.valid.all() else None
    return pa.StructArray.from_arrays(
        [
            pa.array(c.dim.astype(np.int32)),
            pa.ListArray.from_arrays(off, pa.array(c.indices.astype(np.int32))),
            pa.ListArray.from_arrays(off, pa.array(c.values.astype(np.float32))),
        ],
        fields=list(ARROW),
        mask=mask,
    )


def storable(a: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A struct array as Lance stores it: Lance's file format 2.0 (tarndb's tables, see
    storage/tables.py) keeps no validity for a struct, so a NULL sparse vector is stored as a
    struct whose fields are NULL (views read it back as NULL: engine/scan.py)."""
    if isinstance(a, pa.ChunkedArray):
        return pa.chunked_array([storable(c) for c in a.chunks], type=ARROW)
    if a.null_count == 0:
        return a
    fields = a.flatten()  # the struct's NULLs made NULLs of every field
    return pa.StructArray.from_arrays(fields, fields=list(ARROW))


def check_stored(a: pa.Array | pa.ChunkedArray, typmod: int | None) -> None:
    """Rows about to be stored: pgvector's checks (they may come from SQL that built the
    struct by hand, or from COPY), and the column's dimension."""
    c = columns(a)
    dims = c.dim[c.valid]
    if dims.size == 0:
        return
    for d in (int(dims.min()), int(dims.max())):
        check_dim(d)
    lens = np.diff(c.offsets)
    over = np.flatnonzero(c.valid & ((lens > MAX_NNZ) | (lens > c.dim)))
    if over.size:
        check_nnz(int(lens[over[0]]), int(c.dim[over[0]]))
    if typmod is not None and (dims != typmod).any():
        raise DataError(f"expected {typmod} dimensions, not {int(dims[dims != typmod][0])}")
    if c.indices.size:
        rows = c.rows
        # ascending within a row: a step down or a repeat where the row does not change
        step = np.diff(c.indices)
        same = rows[1:] == rows[:-1]
        if ((step <= 0) & same).any() or (c.indices < 0).any() or (c.indices >= c.dim[rows]).any():
            for r in np.unique(rows):
                check_indices(c.indices[c.offsets[r] : c.offsets[r + 1]], int(c.dim[r]))
        check_elements(c.values)
        if (c.values == 0).any():
            raise DataError("binary representation of sparsevec cannot contain zero values")
