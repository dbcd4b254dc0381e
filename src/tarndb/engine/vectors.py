"""pgvector's ``halfvec`` values and the dense ``sparsevec`` layout, shared by the wire codecs
and the SQL functions: half-precision rounding and the sparse text form, with pgvector's
errors. ``sparsevec`` columns are stored sparsely now (engine/sparsevec.py); the dense
functions here serve the columns of tables made before that (a ``float4[]`` per row)."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute

from ..errors import (
    DataError,
    InvalidTextRepresentation,
    NumericValueOutOfRange,
    ProgramLimitExceeded,
)

#: A sparsevec column of the dense layout (tables made before sparse storage) holds at most
#: this many dimensions; sparse columns take pgvector's 1e9 (engine/sparsevec.py).
SPARSEVEC_MAX_DIM = 100000

_SPARSE = re.compile(r"^\s*\{(.*)\}\s*/\s*(-?\d+)\s*$", re.DOTALL)


def to_half(arr: np.ndarray) -> np.ndarray:
    """float32 values rounded to half precision (as float32); 22003 when one overflows."""
    with np.errstate(over="ignore"):
        half = arr.astype(np.float16)
    bad = ~np.isfinite(half) & np.isfinite(arr)
    if bad.any():
        raise NumericValueOutOfRange(f'"{float(arr[bad][0]):g}" is out of range for type '
                                     "halfvec")
    return half.astype(np.float32)


def parse_sparsevec(s: str) -> np.ndarray:
    """pgvector's ``sparsevec_in``: ``{1:0.5,3:2}/5`` -> the dense float32 vector."""
    m = _SPARSE.match(s)
    if m is None:
        raise InvalidTextRepresentation(f'invalid input syntax for type sparsevec: "{s[:60]}"')
    dim = int(m.group(2))
    if dim < 1:
        raise DataError("sparsevec must have at least 1 dimension")
    if dim > SPARSEVEC_MAX_DIM:
        raise ProgramLimitExceeded(f"sparsevec cannot have more than {SPARSEVEC_MAX_DIM} "
                                   "dimensions in tarndb (it is stored dense)")
    out = np.zeros(dim, dtype=np.float32)
    body = m.group(1).strip()
    last = 0
    for item in body.split(",") if body else []:
        k, sep, x = item.partition(":")
        try:
            i, val = int(k), float(x)
        except ValueError as e:
            raise InvalidTextRepresentation(
                f'invalid input syntax for type sparsevec: "{s[:60]}"') from e
        if not sep:
            raise InvalidTextRepresentation(
                f'invalid input syntax for type sparsevec: "{s[:60]}"')
        if i < 1 or i > dim:
            raise DataError(f"sparsevec index out of bounds: {i} not in 1..{dim}")
        if i <= last:
            raise DataError("sparsevec indices must not contain duplicates" if i == last
                            else "sparsevec indices must be in order")
        last = i
        out[i - 1] = val
    return out


def format_sparsevec(v: object) -> str:
    """pgvector's ``sparsevec_out``: ``{1:0.5,3:2}/5`` (1-based indices of the non-zeros)."""
    arr = np.asarray(v, dtype=np.float32).reshape(-1)
    nz = np.flatnonzero(arr)
    vals = [s[:-2] if s.endswith(".0") else s for s in arr[nz].astype(str).tolist()]
    return "{" + ",".join(f"{i + 1}:{x}" for i, x in zip(nz.tolist(), vals, strict=True)) \
        + "}/" + str(arr.size)


# -- SQL functions (Arrow in, Arrow out) ------------------------------------------------------

def halfvec_round_arrow(a: pa.Array) -> pa.Array:
    """``FLOAT[]`` -> the same lists with half-precision values."""
    if isinstance(a, pa.ChunkedArray):
        a = a.combine_chunks()
    a = a.cast(pa.list_(pa.float32()))
    if len(a) == 0:
        return a
    start, end = a.offsets[0].as_py(), a.offsets[-1].as_py()
    values = a.values.slice(start, end - start).to_numpy(zero_copy_only=False)
    offsets = pa.compute.subtract(a.offsets, start)
    return pa.ListArray.from_arrays(offsets, pa.array(to_half(values), pa.float32()),
                                    mask=a.is_null() if a.null_count else None)


def sparsevec_in_arrow(a: pa.Array) -> pa.Array:
    """``VARCHAR`` sparse text -> ``FLOAT[]`` dense lists."""
    out = [None if s is None else parse_sparsevec(s) for s in a.to_pylist()]
    return pa.array(out, pa.list_(pa.float32()))


def sparsevec_out_arrow(a: pa.Array) -> pa.Array:
    """``FLOAT[]`` -> sparse text."""
    return pa.array([None if v is None else format_sparsevec(v) for v in a.to_pylist()],
                    pa.string())
