"""Conversions between Arrow columns, Python values and what DuckDB accepts as parameters."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pyarrow as pa

from .types import ColumnType

if TYPE_CHECKING:
    from .result import Column

_LONG_DIGITS = re.compile(r"\d{19}")


def strict_json(text: str) -> Any:
    """``text`` parsed as JSON as PostgreSQL's json/jsonb take it (``NaN`` and ``Infinity``
    are not JSON); ValueError when it is not JSON.

    orjson first (5x faster than the json module on the small documents a pipeline binds
    per row); the json module for what orjson refuses (deep nesting, integers past 64 bits)
    and for long integers, which orjson turns into floats where json keeps them exact."""
    if not _LONG_DIGITS.search(text):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _no_constant(_: str) -> Any:
    raise ValueError("not JSON")


def matrices_array(values: list[Any], dtype: type[np.floating[Any]]) -> pa.ListArray | None:
    """A list<list<float>> array of 2-D numpy matrices (multi-vector bags; None for NULL),
    built from their concatenation without a Python float; None past Arrow's 32-bit
    offsets."""
    present = [v for v in values if v is not None]
    rows = np.array([0 if v is None else v.shape[0] for v in values], dtype=np.int64)
    widths = np.concatenate([np.full(v.shape[0], v.shape[1], np.int64) for v in present]) \
        if present else np.empty(0, np.int64)
    if rows.sum() > np.iinfo(np.int32).max or widths.sum() > np.iinfo(np.int32).max:
        return None
    flat = np.concatenate([v.astype(dtype, copy=False).reshape(-1) for v in present]) \
        if present else np.empty(0, dtype)
    inner = pa.ListArray.from_arrays(
        pa.array(np.concatenate([[0], np.cumsum(widths)]).astype(np.int32)), pa.array(flat))
    null = np.array([v is None for v in values], dtype=bool)
    return pa.ListArray.from_arrays(
        pa.array(np.concatenate([[0], np.cumsum(rows)]).astype(np.int32)), inner,
        mask=pa.array(null) if null.any() else None)


def _json_or_none(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def _uuid_or_none(v: Any) -> Any:
    if v is None or isinstance(v, uuid.UUID):
        return v
    if isinstance(v, bytes):
        return uuid.UUID(bytes=v)
    return uuid.UUID(str(v))


def column_to_python(col: pa.ChunkedArray | pa.Array, ctype: ColumnType) -> list[Any]:
    if ctype.base in ("json", "jsonb") and ctype.ndim == 0:
        return [_json_or_none(v) for v in col.to_pylist()]
    if ctype.base == "uuid" and ctype.ndim == 0:
        return [_uuid_or_none(v) for v in col.to_pylist()]
    if ctype.base == "timestamptz" and ctype.ndim == 0:
        out = col.to_pylist()
        return [v.astimezone(dt.timezone.utc) if v is not None and v.tzinfo is not None
                else (v.replace(tzinfo=dt.timezone.utc) if v is not None else None) for v in out]
    return col.to_pylist()


def arrow_to_rows(table: pa.Table, columns: list[Column]) -> list[tuple[Any, ...]]:
    if table.num_rows == 0:
        return []
    cols = [column_to_python(table.column(i), c.type) for i, c in enumerate(columns)]
    return list(zip(*cols, strict=True))


def adapt_param(value: Any) -> Any:
    """A Python parameter value as DuckDB should receive it."""
    from .sparsevec import SparseVec

    if isinstance(value, SparseVec):  # a struct (sparsevec_param casts it exactly)
        return value.as_dict()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [adapt_param(v) for v in value]
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def json_text(value: Any) -> str | None:
    """Parameter for a json/jsonb slot: text as given, other values serialised."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode()
    return json.dumps(value, default=_json_default)


def _json_default(o: Any) -> Any:
    if isinstance(o, (dt.datetime, dt.date)):
        return o.isoformat()
    if isinstance(o, uuid.UUID):
        return str(o)
    if isinstance(o, decimal.Decimal):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")
