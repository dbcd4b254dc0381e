"""Text and binary codecs for every type in :mod:`tarndb.engine.types`.

Encoders turn the Python values of a :class:`~tarndb.engine.result.Result` into the bytes of a
DataRow field; decoders turn Bind parameters and COPY fields into Python values for the engine.
Formats follow what PostgreSQL 15 sends with its default settings (``DateStyle=ISO``,
``TimeZone=UTC``, ``extra_float_digits=1``, ``bytea_output=hex``), so clients that parse text
output see what they see from Postgres. ``float4[]``/``float4[][]`` (embeddings) have numpy
fast paths because they dominate the bytes on the wire.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import re
import struct
import uuid
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import orjson

from ..engine import sparsevec
from ..engine.types import (
    ARRAY_OIDS,
    BY_OID,
    HALFVEC,
    SCALARS,
    SPARSEVEC,
    VECTOR_BY_OID,
    ColumnType,
)
from ..engine.values import strict_json
from ..engine.vectors import SPARSEVEC_MAX_DIM, format_sparsevec, parse_sparsevec, to_half
from ..errors import (
    InvalidParameterValue,
    InvalidTextRepresentation,
    ProgramLimitExceeded,
)
from ..sql.arraytext import parse_array_text

Encoder = Callable[[Any], bytes]
Decoder = Callable[[bytes], Any]

PG_EPOCH = dt.datetime(2000, 1, 1)
PG_EPOCH_TZ = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
PG_EPOCH_DATE = dt.date(2000, 1, 1)
_UTC = dt.timezone.utc

_I16 = struct.Struct("!h")
_I32 = struct.Struct("!i")
_I64 = struct.Struct("!q")
_F32 = struct.Struct("!f")
_F64 = struct.Struct("!d")
_U32 = struct.Struct("!I")


# ---------------------------------------------------------------------------------------------
# text output


def _float8_text(v: Any) -> str:
    v = float(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    s = repr(v)
    # Postgres prints integral floats without ".0" ("3", not "3.0"); repr's exponent form
    # ("1e+16") already matches Postgres.
    return s[:-2] if s.endswith(".0") else s


def _float4_text(v: Any) -> str:
    f = np.float32(v)
    if np.isnan(f):
        return "NaN"
    if np.isinf(f):
        return "Infinity" if f > 0 else "-Infinity"
    # numpy prints the shortest string that round-trips through float32, as Postgres does.
    s = str(f)
    return s[:-2] if s.endswith(".0") else s


def _numeric_text(v: Any) -> str:
    if isinstance(v, Decimal):
        if v.is_nan():
            return "NaN"
        if v.is_infinite():
            return "Infinity" if v > 0 else "-Infinity"
        return format(v, "f")
    if isinstance(v, float):
        return _float8_text(v)
    return str(v)


def _bool_text(v: Any) -> str:
    return "t" if v else "f"


def _bytea_text(v: Any) -> str:
    return "\\x" + bytes(v).hex()


def _json_text(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False)


def _frac(us: int) -> str:
    return ("." + f"{us:06d}".rstrip("0")) if us else ""


def _timestamp_text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if v.tzinfo is not None:
        v = v.astimezone(_UTC).replace(tzinfo=None)
    return v.strftime("%Y-%m-%d %H:%M:%S") + _frac(v.microsecond)


def _timestamptz_text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if v.tzinfo is None:
        v = v.replace(tzinfo=_UTC)
    v = v.astimezone(_UTC)
    return v.strftime("%Y-%m-%d %H:%M:%S") + _frac(v.microsecond) + "+00"


def _date_text(v: Any) -> str:
    if isinstance(v, dt.datetime):
        v = v.date()
    return v.isoformat() if isinstance(v, dt.date) else str(v)


def _time_text(v: Any) -> str:
    if isinstance(v, dt.time):
        return v.strftime("%H:%M:%S") + _frac(v.microsecond)
    if isinstance(v, dt.timedelta):
        us = int(v.total_seconds() * 1_000_000)
        return _hms(us)
    return str(v)


def _hms(us: int) -> str:
    sign = "-" if us < 0 else ""
    us = abs(us)
    secs, frac = divmod(us, 1_000_000)
    h, rem = divmod(secs, 3600)
    m, s = divmod(rem, 60)
    return f"{sign}{h:02d}:{m:02d}:{s:02d}" + _frac(frac)


def _interval_parts(v: Any) -> tuple[int, int, int]:
    """(months, days, microseconds) of a timedelta or an Arrow month-day-nano value."""
    if isinstance(v, dt.timedelta):
        return 0, v.days, v.seconds * 1_000_000 + v.microseconds
    months = getattr(v, "months", None)
    if months is not None:
        return int(months), int(v.days), int(v.nanoseconds) // 1000
    if isinstance(v, (tuple, list)) and len(v) == 3:
        return int(v[0]), int(v[1]), int(v[2]) // 1000
    raise InvalidParameterValue(f"cannot send {type(v).__name__} as interval")


def _interval_text(v: Any) -> str:
    months, days, us = _interval_parts(v)
    parts = []
    years, mons = divmod(abs(months), 12)
    sign = "-" if months < 0 else ""
    if years:
        parts.append(f"{sign}{years} year" + ("s" if years != 1 else ""))
    if mons:
        parts.append(f"{sign}{mons} mon" + ("s" if mons != 1 else ""))
    if days:
        parts.append(f"{days} day" + ("s" if abs(days) != 1 else ""))
    if us or not parts:
        parts.append(_hms(us))
    return " ".join(parts)


_TEXT_OUT: dict[str, Callable[[Any], str]] = {
    "bool": _bool_text,
    "bytea": _bytea_text,
    "int2": lambda v: str(int(v)),
    "int4": lambda v: str(int(v)),
    "int8": lambda v: str(int(v)),
    "oid": lambda v: str(int(v)),
    "float4": _float4_text,
    "float8": _float8_text,
    "numeric": _numeric_text,
    "json": _json_text,
    "jsonb": _json_text,
    "uuid": str,
    "date": _date_text,
    "time": _time_text,
    "timestamp": _timestamp_text,
    "timestamptz": _timestamptz_text,
    "interval": _interval_text,
}

_NEEDS_QUOTE = re.compile(r'[{},"\\\s]')


def _array_elem_text(s: str) -> str:
    if s == "" or _NEEDS_QUOTE.search(s) or s.upper() == "NULL":
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return s


def _array_text(v: Any, elem: Callable[[Any], str], ndim: int, quote: bool) -> str:
    if v is None:
        return "NULL"
    if ndim <= 1:
        parts = []
        for x in v:
            if x is None:
                parts.append("NULL")
            else:
                s = elem(x)
                parts.append(_array_elem_text(s) if quote else s)
        return "{" + ",".join(parts) + "}"
    return "{" + ",".join(_array_text(x, elem, ndim - 1, quote) for x in v) + "}"


def _float4_array_text(v: Any, ndim: int) -> str:
    # Vectors are long; format through numpy when the array is rectangular and NULL-free.
    try:
        arr = np.asarray(v, dtype=np.float32)
    except (TypeError, ValueError):
        arr = None
    if arr is not None and arr.ndim == ndim and arr.size and bool(np.isfinite(arr).all()):
        # numpy's str() of a float32 is the shortest string that round-trips, as in Postgres.
        items = [s[:-2] if s.endswith(".0") else s for s in arr.reshape(-1).astype(str).tolist()]
        for width in reversed(arr.shape):
            items = ["{" + ",".join(items[i:i + width]) + "}" for i in range(0, len(items), width)]
        return items[0]
    return _array_text(v, _float4_text, ndim, False)


def _vector_text(v: Any) -> str:
    """pgvector's text output: ``[1,2.5,-3]`` (shortest float4 digits)."""
    arr = np.asarray(v, dtype=np.float32).reshape(-1)
    items = [s[:-2] if s.endswith(".0") else s for s in arr.astype(str).tolist()]
    return "[" + ",".join(items) + "]"


def _vector_binary(v: Any) -> bytes:
    """pgvector's ``vector_send``: int16 dimensions, int16 unused (0), float4s."""
    arr = np.asarray(v, dtype=">f4").reshape(-1)
    return struct.pack("!HH", arr.size, 0) + arr.tobytes()


def _parse_vector_text(s: str) -> np.ndarray:
    """pgvector's ``vector_in``: ``[1,2,3]`` (whitespace allowed)."""
    t = s.strip()
    if not (t.startswith("[") and t.endswith("]")):
        raise InvalidTextRepresentation(f'invalid input syntax for type vector: "{s[:60]}"',
                                        detail='Vector contents must start with "[".')
    body = t[1:-1].strip()
    if not body:
        raise InvalidTextRepresentation("vector must have at least 1 dimension")
    try:
        arr = np.array([float(x) for x in body.split(",")], dtype=np.float32)
    except ValueError as e:
        raise InvalidTextRepresentation(
            f'invalid input syntax for type vector: "{s[:60]}"') from e
    return arr


def _bin_vector(b: bytes) -> np.ndarray:
    """pgvector's ``vector_recv``."""
    if len(b) < 4:
        raise InvalidParameterValue("incorrect binary data format for type vector")
    dim, unused = struct.unpack_from("!HH", b)
    if unused != 0:
        raise InvalidParameterValue("expected unused to be 0")
    if len(b) != 4 + 4 * dim:
        raise InvalidParameterValue(f"invalid binary vector: {dim} dimensions in "
                                    f"{len(b) - 4} bytes")
    return np.frombuffer(b, dtype=">f4", offset=4, count=dim).astype(np.float32)


def _halfvec_text(v: Any) -> str:
    """pgvector's ``halfvec_out``: as vector's, of the half-precision values."""
    return _vector_text(np.asarray(v, dtype=np.float32).astype(np.float16))


def _sparsevec_text(v: Any) -> str:
    # a sparse value (a struct's dict, a SparseVec) or a pre-struct layout's dense list
    if isinstance(v, (dict, sparsevec.SparseVec)):
        return sparsevec.format_text(v)
    return format_sparsevec(v)


def _halfvec_binary(v: Any) -> bytes:
    """pgvector's ``halfvec_send``: int16 dimensions, int16 unused (0), float2s."""
    arr = np.asarray(v, dtype=np.float32).reshape(-1).astype(">f2")
    return struct.pack("!HH", arr.size, 0) + arr.tobytes()


def _sparsevec_binary(v: Any) -> bytes:
    """pgvector's ``sparsevec_send``: int32 dim, nnz, unused; int32 0-based indices; float4s."""
    if isinstance(v, (dict, sparsevec.SparseVec)):
        return sparsevec.encode_binary(v)
    arr = np.asarray(v, dtype=np.float32).reshape(-1)  # a pre-struct layout's dense list
    nz = np.flatnonzero(arr)
    return struct.pack("!iii", arr.size, nz.size, 0) + nz.astype(">i4").tobytes() \
        + arr[nz].astype(">f4").tobytes()


def _parse_halfvec_text(s: str) -> np.ndarray:
    return to_half(_parse_vector_text(s))


def parse_sparsevec_text(s: str) -> sparsevec.SparseVec:
    return sparsevec.parse(s)


def _dense_sparsevec_text(s: str) -> np.ndarray:
    """Into a column of the pre-struct layout (a dense float4[], at most 100,000 dims)."""
    return parse_sparsevec(s)


def _bin_halfvec(b: bytes) -> np.ndarray:
    if len(b) < 4:
        raise InvalidParameterValue("incorrect binary data format for type halfvec")
    dim, unused = struct.unpack_from("!HH", b)
    if unused != 0:
        raise InvalidParameterValue("expected unused to be 0")
    if len(b) != 4 + 2 * dim:
        raise InvalidParameterValue(f"invalid binary halfvec: {dim} dimensions in "
                                    f"{len(b) - 4} bytes")
    return np.frombuffer(b, dtype=">f2", offset=4, count=dim).astype(np.float32)


def _bin_dense_sparsevec(b: bytes) -> np.ndarray:
    """Into a column of the pre-struct layout (a dense float4[], at most 100,000 dims)."""
    v = sparsevec.decode_binary(b)
    if v.dim > SPARSEVEC_MAX_DIM:
        raise ProgramLimitExceeded(f"sparsevec cannot have more than {SPARSEVEC_MAX_DIM} "
                                   "dimensions in a column stored densely (made before "
                                   "tarndb stored sparsevec sparsely)")
    out = np.zeros(v.dim, dtype=np.float32)
    out[v.indices] = v.values
    return out


def _bit_binary(v: Any) -> bytes:
    """``bit_send``: int32 length in bits, then the bits, first bit highest, zero-padded."""
    bits = str(v)
    padded = bits + "0" * (-len(bits) % 8)
    return _I32.pack(len(bits)) + bytes(int(padded[i:i + 8], 2)
                                        for i in range(0, len(padded), 8))


def _bin_bit(b: bytes) -> str:
    if len(b) < 4:
        raise InvalidParameterValue("incorrect binary data format for type bit")
    (n,) = _I32.unpack_from(b)
    if n < 0 or len(b) - 4 != (n + 7) // 8:
        raise InvalidParameterValue("invalid length in external bit string")
    return "".join(f"{x:08b}" for x in b[4:])[:n]


def text_encoder(ctype: ColumnType) -> Callable[[Any], str]:
    """A function from a non-NULL Python value to its Postgres text representation."""
    if ctype.is_vector:
        return {HALFVEC: _halfvec_text, SPARSEVEC: _sparsevec_text}.get(
            str(ctype.domain), _vector_text)
    base = ctype.base
    scalar: Callable[[Any], str] = _TEXT_OUT.get(base, str)
    if ctype.ndim == 0:
        return scalar
    ndim = ctype.ndim
    if base == "float4":
        return lambda v: _float4_array_text(v, ndim)
    quote = base not in ("int2", "int4", "int8", "oid", "float8", "numeric", "bool")
    return lambda v: _array_text(v, scalar, ndim, quote)


# ---------------------------------------------------------------------------------------------
# binary output


def _numeric_binary(v: Any) -> bytes:
    d = v if isinstance(v, Decimal) else Decimal(str(v))
    if d.is_nan():
        return struct.pack("!hhHH", 0, 0, 0xC000, 0)
    if d.is_infinite():
        return struct.pack("!hhHH", 0, 0, 0xD000 if d > 0 else 0xF000, 0)
    sign, digits, exp = d.as_tuple()
    assert isinstance(exp, int)
    dscale = max(0, -exp)
    # Digits of the absolute value, padded so the decimal point falls on a base-10000 boundary.
    ds = "".join(map(str, digits))
    int_len = len(ds) + exp  # digits before the decimal point (may be <= 0)
    if int_len <= 0:
        int_part, frac_part = "", "0" * (-int_len) + ds
    elif exp >= 0:
        int_part, frac_part = ds + "0" * exp, ""
    else:
        int_part, frac_part = ds[:int_len], ds[int_len:]
    int_part = int_part.lstrip("0")
    int_part = "0" * ((-len(int_part)) % 4) + int_part
    frac_part = frac_part + "0" * ((-len(frac_part)) % 4)
    groups = [int(int_part[i:i + 4]) for i in range(0, len(int_part), 4)]
    weight = len(groups) - 1
    groups += [int(frac_part[i:i + 4]) for i in range(0, len(frac_part), 4)]
    # strip leading and trailing zero groups
    while groups and groups[0] == 0:
        groups.pop(0)
        weight -= 1
    while groups and groups[-1] == 0:
        groups.pop()
    if not groups:
        weight = 0
    return struct.pack(f"!hhHH{len(groups)}H", len(groups), weight,
                       0x4000 if sign else 0, dscale, *groups)


def _timestamp_us(v: dt.datetime) -> int:
    if v.tzinfo is not None:
        delta = v - PG_EPOCH_TZ
    else:
        delta = v - PG_EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _time_us(v: Any) -> int:
    if isinstance(v, dt.time):
        return ((v.hour * 60 + v.minute) * 60 + v.second) * 1_000_000 + v.microsecond
    return int(v.total_seconds() * 1_000_000)


def _uuid_binary(v: Any) -> bytes:
    return v.bytes if isinstance(v, uuid.UUID) else uuid.UUID(str(v)).bytes


def _timestamptz_binary(v: Any) -> bytes:
    if v.tzinfo is None:
        v = v.replace(tzinfo=_UTC)
    return _I64.pack(_timestamp_us(v))


def _interval_binary(v: Any) -> bytes:
    months, days, us = _interval_parts(v)
    return struct.pack("!qii", us, days, months)


def _date_binary(v: Any) -> bytes:
    if isinstance(v, dt.datetime):
        v = v.date()
    return _I32.pack((v - PG_EPOCH_DATE).days)


_BIN_OUT: dict[str, Encoder] = {
    "bool": lambda v: b"\x01" if v else b"\x00",
    "bytea": bytes,
    "char": lambda v: str(v).encode("utf-8"),
    "name": lambda v: str(v).encode("utf-8"),
    "text": lambda v: str(v).encode("utf-8"),
    "varchar": lambda v: str(v).encode("utf-8"),
    "bpchar": lambda v: str(v).encode("utf-8"),
    "unknown": lambda v: str(v).encode("utf-8"),
    "int2": lambda v: _I16.pack(int(v)),
    "int4": lambda v: _I32.pack(int(v)),
    "int8": lambda v: _I64.pack(int(v)),
    "oid": lambda v: _U32.pack(int(v)),
    "float4": lambda v: _F32.pack(float(v)),
    "float8": lambda v: _F64.pack(float(v)),
    "numeric": _numeric_binary,
    "json": lambda v: _json_text(v).encode("utf-8"),
    # jsonb's binary form is a version byte (1) followed by the JSON text.
    "jsonb": lambda v: b"\x01" + _json_text(v).encode("utf-8"),
    "uuid": _uuid_binary,
    "date": _date_binary,
    "time": lambda v: _I64.pack(_time_us(v)),
    "timestamp": lambda v: _I64.pack(_timestamp_us(v)),
    "timestamptz": _timestamptz_binary,
    "interval": _interval_binary,
}


def _shape(v: Any, ndim: int) -> list[int] | None:
    """Dimensions of a rectangular nested list, or None when ragged."""
    dims = []
    cur = v
    for _ in range(ndim):
        if not isinstance(cur, (list, tuple, np.ndarray)):
            return None
        dims.append(len(cur))
        if not len(cur):
            break
        cur = cur[0]
    return dims


def _flatten(v: Any, ndim: int, dims: list[int]) -> list[Any]:
    if ndim == 1:
        if len(v) != dims[0]:
            raise InvalidParameterValue("multidimensional arrays must have sub-arrays with "
                                        "matching dimensions")
        return list(v)
    out: list[Any] = []
    if len(v) != dims[0]:
        raise InvalidParameterValue("multidimensional arrays must have sub-arrays with matching "
                                    "dimensions")
    for x in v:
        out.extend(_flatten(x, ndim - 1, dims[1:]))
    return out


_F4_ELEM = np.dtype([("len", ">i4"), ("v", ">f4")])


def _array_binary(v: Any, ctype: ColumnType, elem: Encoder) -> bytes:
    ndim = ctype.ndim
    elem_oid = ctype.scalar.oid
    dims = _shape(v, ndim)
    if dims is None or not dims or dims[0] == 0:
        return struct.pack("!iii", 0, 0, elem_oid)
    if len(dims) < ndim:  # an inner dimension is empty: Postgres has no such array
        return struct.pack("!iii", 0, 0, elem_oid)
    header_dims = b"".join(struct.pack("!ii", d, 1) for d in dims)
    if ctype.base == "float4":
        try:
            arr = np.asarray(v, dtype=np.float32)
        except (TypeError, ValueError):
            arr = None
        if arr is not None and list(arr.shape) == dims:
            rec = np.empty(arr.size, dtype=_F4_ELEM)
            rec["len"] = 4
            rec["v"] = arr.reshape(-1)
            return struct.pack("!iii", len(dims), 0, elem_oid) + header_dims + rec.tobytes()
    flat = _flatten(v, ndim, dims)
    has_null = any(x is None for x in flat)
    parts = [struct.pack("!iii", len(dims), 1 if has_null else 0, elem_oid), header_dims]
    for x in flat:
        if x is None:
            parts.append(b"\xff\xff\xff\xff")
        else:
            b = elem(x)
            parts.append(_I32.pack(len(b)))
            parts.append(b)
    return b"".join(parts)


def binary_encoder(ctype: ColumnType) -> Encoder:
    if ctype.is_vector:
        return {HALFVEC: _halfvec_binary, SPARSEVEC: _sparsevec_binary}.get(
            str(ctype.domain), _vector_binary)
    if ctype.base in ("bit", "varbit") and not ctype.ndim:
        return _bit_binary
    scalar = _BIN_OUT.get(ctype.base, _BIN_OUT["text"])
    if ctype.ndim == 0:
        return scalar
    return lambda v: _array_binary(v, ctype, scalar)


def encoder(ctype: ColumnType, fmt: int) -> Encoder:
    """The field encoder for a result column in format 0 (text) or 1 (binary)."""
    if fmt == 1:
        return binary_encoder(ctype)
    te = text_encoder(ctype)
    return lambda v: te(v).encode("utf-8")


# ---------------------------------------------------------------------------------------------
# text input


def _bad(tname: str, s: str) -> InvalidTextRepresentation:
    return InvalidTextRepresentation(f'invalid input syntax for type {tname}: "{s[:100]}"')


def _parse_bool(s: str) -> bool:
    t = s.strip().lower()
    if t in ("t", "true", "y", "yes", "on", "1"):
        return True
    if t in ("f", "false", "n", "no", "off", "0"):
        return False
    raise _bad("boolean", s)


def _parse_int(s: str) -> int:
    try:
        return int(s.strip())
    except ValueError:
        raise _bad("integer", s) from None


def _parse_float(s: str) -> float:
    t = s.strip()
    low = t.lower()
    if low in ("infinity", "+infinity", "inf", "+inf"):
        return math.inf
    if low in ("-infinity", "-inf"):
        return -math.inf
    try:
        return float(t)
    except ValueError:
        raise _bad("double precision", s) from None


def _parse_numeric(s: str) -> Decimal:
    try:
        return Decimal(s.strip())
    except InvalidOperation:
        raise _bad("numeric", s) from None


def _parse_bytea(s: str) -> bytes:
    if s.startswith("\\x"):
        try:
            return bytes.fromhex(s[2:])
        except ValueError:
            raise _bad("bytea", s) from None
    # the escape format: backslash-octal and doubled backslashes
    out = bytearray()
    i = 0
    raw = s.encode("utf-8")
    while i < len(raw):
        c = raw[i]
        if c == 0x5C:
            if raw[i + 1:i + 2] == b"\\":
                out.append(0x5C)
                i += 2
                continue
            octal = raw[i + 1:i + 4]
            if len(octal) == 3 and all(48 <= b <= 55 for b in octal):
                out.append(int(octal, 8))
                i += 4
                continue
            raise _bad("bytea", s)
        out.append(c)
        i += 1
    return bytes(out)


def _parse_json(s: str) -> Any:
    try:
        return strict_json(s)
    except ValueError:
        raise _bad("json", s) from None


def _parse_uuid(s: str) -> uuid.UUID:
    try:
        return uuid.UUID(s.strip())
    except ValueError:
        raise _bad("uuid", s) from None


_TZ_SHORT = re.compile(r"([+-]\d\d)$")


def _parse_timestamp(s: str, tz: bool) -> dt.datetime:
    t = s.strip()
    low = t.lower()
    if low in ("infinity", "-infinity"):
        raise InvalidParameterValue("infinite timestamps are not supported")
    if low.endswith(" utc"):
        t = t[:-4] + "+00:00"
    t = _TZ_SHORT.sub(r"\1:00", t)
    if t.endswith(("Z", "z")):
        t = t[:-1] + "+00:00"
    try:
        v = dt.datetime.fromisoformat(t)
    except ValueError:
        raise _bad("timestamp", s) from None
    if tz:
        return (v if v.tzinfo else v.replace(tzinfo=_UTC)).astimezone(_UTC)
    return v.replace(tzinfo=None) if v.tzinfo is None else v.astimezone(_UTC).replace(tzinfo=None)


def _parse_date(s: str) -> dt.date:
    try:
        return dt.date.fromisoformat(s.strip()[:10])
    except ValueError:
        raise _bad("date", s) from None


def _parse_time(s: str) -> dt.time:
    try:
        return dt.time.fromisoformat(s.strip())
    except ValueError:
        raise _bad("time", s) from None


_INTERVAL_UNITS = {
    "microsecond": 1, "microseconds": 1, "us": 1,
    "millisecond": 1000, "milliseconds": 1000, "ms": 1000,
    "second": 1_000_000, "seconds": 1_000_000, "sec": 1_000_000, "secs": 1_000_000, "s": 1_000_000,
    "minute": 60_000_000, "minutes": 60_000_000, "min": 60_000_000, "mins": 60_000_000,
    "hour": 3_600_000_000, "hours": 3_600_000_000, "h": 3_600_000_000,
    "day": 86_400_000_000, "days": 86_400_000_000, "d": 86_400_000_000,
    "week": 7 * 86_400_000_000, "weeks": 7 * 86_400_000_000,
    "mon": 30 * 86_400_000_000, "mons": 30 * 86_400_000_000, "month": 30 * 86_400_000_000,
    "months": 30 * 86_400_000_000,
    "year": 365 * 86_400_000_000, "years": 365 * 86_400_000_000,
}


def _parse_interval(s: str) -> dt.timedelta:
    """Postgres-style intervals ('1 day 02:00:00', '3 hours', '00:00:05')."""
    us = 0
    tokens = s.strip().split()
    i = 0
    try:
        while i < len(tokens):
            tok = tokens[i]
            if ":" in tok:
                neg = tok.startswith("-")
                parts = tok.lstrip("+-").split(":")
                h, m = int(parts[0]), int(parts[1])
                sec = float(parts[2]) if len(parts) > 2 else 0.0
                val = int((h * 3600 + m * 60) * 1_000_000 + round(sec * 1_000_000))
                us += -val if neg else val
                i += 1
            else:
                num = float(tok)
                unit = tokens[i + 1].lower() if i + 1 < len(tokens) else "seconds"
                us += int(num * _INTERVAL_UNITS[unit])
                i += 2
    except (ValueError, KeyError, IndexError):
        raise _bad("interval", s) from None
    return dt.timedelta(microseconds=us)


_TEXT_IN: dict[str, Callable[[str], Any]] = {
    "bool": _parse_bool,
    "bytea": _parse_bytea,
    "int2": _parse_int,
    "int4": _parse_int,
    "int8": _parse_int,
    "oid": _parse_int,
    "float4": _parse_float,
    "float8": _parse_float,
    "numeric": _parse_numeric,
    "json": _parse_json,
    "jsonb": _parse_json,
    "uuid": _parse_uuid,
    "date": _parse_date,
    "time": _parse_time,
    "timestamp": lambda s: _parse_timestamp(s, False),
    "timestamptz": lambda s: _parse_timestamp(s, True),
    "interval": _parse_interval,
}


#: Deletes what a plain number list holds: a text left with anything else is not one. (A
#: regex search for the complement costs 4x this on a 384-d embedding's 7.5 KB, more than
#: parsing it; Unicode spaces, which ``\s`` allowed, are left over and take the general
#: parser, as orjson refused them anyway.)
_PLAIN_NUMBER_CHARS = str.maketrans("", "", "0123456789eE+-.,{} \t\n\r\f\v")


def _parse_float_array_text(s: str, ndim: int) -> Any:
    # Fast path for embeddings: only digits, signs, exponents and braces means the literal is
    # JSON once braces become brackets, and orjson parses it (6x faster than json.loads on
    # 384 floats, correctly rounded just the same).
    if not s.translate(_PLAIN_NUMBER_CHARS):
        try:
            return orjson.loads(s.replace("{", "[").replace("}", "]"))
        except orjson.JSONDecodeError:
            pass
    return parse_array_text(s, _parse_float)


def text_decoder(ctype: ColumnType) -> Callable[[str], Any]:
    if ctype.is_vector:
        return {HALFVEC: _parse_halfvec_text, SPARSEVEC: parse_sparsevec_text if
                ctype.is_sparse else _dense_sparsevec_text}.get(str(ctype.domain),
                                                                _parse_vector_text)
    scalar: Callable[[str], Any] = _TEXT_IN.get(ctype.base, lambda s: s)
    if ctype.ndim == 0:
        return scalar
    if ctype.base in ("float4", "float8"):
        ndim = ctype.ndim
        return lambda s: _parse_float_array_text(s, ndim)
    return lambda s: parse_array_text(s, scalar)


# ---------------------------------------------------------------------------------------------
# binary input


def _need(b: bytes, n: int, tname: str) -> None:
    if len(b) != n:
        raise InvalidParameterValue(f"incorrect binary data format for type {tname}")


def _bin_int(fmt: struct.Struct, tname: str) -> Decoder:
    def dec(b: bytes) -> int:
        _need(b, fmt.size, tname)
        return int(fmt.unpack(b)[0])
    return dec


def _bin_float(fmt: struct.Struct, tname: str) -> Decoder:
    def dec(b: bytes) -> float:
        _need(b, fmt.size, tname)
        return float(fmt.unpack(b)[0])
    return dec


def _bin_numeric(b: bytes) -> Decimal:
    if len(b) < 8:
        raise InvalidParameterValue("incorrect binary data format for type numeric")
    ndigits, weight, sign, dscale = struct.unpack_from("!hhHH", b)
    if sign == 0xC000:
        return Decimal("NaN")
    if sign == 0xD000:
        return Decimal("Infinity")
    if sign == 0xF000:
        return Decimal("-Infinity")
    if len(b) != 8 + 2 * ndigits:
        raise InvalidParameterValue("incorrect binary data format for type numeric")
    digits = struct.unpack_from(f"!{ndigits}H", b, 8)
    value = 0
    for d in digits:
        value = value * 10000 + d
    exp = (weight - ndigits + 1) * 4
    d = Decimal(value).scaleb(exp) if ndigits else Decimal(0)
    if sign == 0x4000:
        d = -d
    # dscale is the number of digits after the point that Postgres displays.
    return d.quantize(Decimal(1).scaleb(-dscale))


def _bin_timestamp(tz: bool) -> Decoder:
    def dec(b: bytes) -> dt.datetime:
        _need(b, 8, "timestamp")
        us = _I64.unpack(b)[0]
        base = PG_EPOCH_TZ if tz else PG_EPOCH
        return base + dt.timedelta(microseconds=us)
    return dec


def _bin_date(b: bytes) -> dt.date:
    _need(b, 4, "date")
    return PG_EPOCH_DATE + dt.timedelta(days=_I32.unpack(b)[0])


def _bin_time(b: bytes) -> dt.time:
    _need(b, 8, "time")
    us = _I64.unpack(b)[0]
    secs, frac = divmod(us, 1_000_000)
    h, rem = divmod(secs, 3600)
    m, s = divmod(rem, 60)
    return dt.time(h, m, s, frac)


def _bin_interval(b: bytes) -> dt.timedelta:
    _need(b, 16, "interval")
    us, days, months = struct.unpack("!qii", b)
    return dt.timedelta(days=days + 30 * months, microseconds=us)


def _bin_jsonb(b: bytes) -> Any:
    if not b or b[0] != 1:
        raise InvalidParameterValue("unsupported jsonb version number")
    return _parse_json(b[1:].decode("utf-8"))


def _bin_uuid(b: bytes) -> uuid.UUID:
    _need(b, 16, "uuid")
    return uuid.UUID(bytes=b)


def _bin_text(b: bytes) -> str:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidTextRepresentation("invalid byte sequence for encoding \"UTF8\"") from None


_BIN_IN: dict[str, Decoder] = {
    "bool": lambda b: b != b"\x00",
    "bytea": bytes,
    "int2": _bin_int(_I16, "smallint"),
    "int4": _bin_int(_I32, "integer"),
    "int8": _bin_int(_I64, "bigint"),
    "oid": _bin_int(_U32, "oid"),
    "float4": _bin_float(_F32, "real"),
    "float8": _bin_float(_F64, "double precision"),
    "numeric": _bin_numeric,
    "json": lambda b: _parse_json(_bin_text(b)),
    "jsonb": _bin_jsonb,
    "uuid": _bin_uuid,
    "date": _bin_date,
    "time": _bin_time,
    "timestamp": _bin_timestamp(False),
    "timestamptz": _bin_timestamp(True),
    "interval": _bin_interval,
}


#: A binary float array's items: each value after its length word.
_F4_ITEMS = np.dtype([("len", ">i4"), ("v", ">f4")])
_F8_ITEMS = np.dtype([("len", ">i4"), ("v", ">f8")])


def _bin_array(b: bytes, elem: Decoder, base: str) -> Any:
    if len(b) < 12:
        raise InvalidParameterValue("incorrect binary data format in array")
    ndim, _flags, _oid = struct.unpack_from("!iii", b)
    if ndim == 0:
        return []
    if ndim < 0 or ndim > 6 or len(b) < 12 + 8 * ndim:
        raise InvalidParameterValue("invalid number of array dimensions")
    dims = [struct.unpack_from("!ii", b, 12 + 8 * i)[0] for i in range(ndim)]
    if any(d < 0 for d in dims):
        raise InvalidParameterValue("invalid array dimensions")
    pos = 12 + 8 * ndim
    total = 1
    for d in dims:
        total *= d
    if base in ("float4", "float8") and total:
        width = 4 if base == "float4" else 8
        dtype = _F4_ITEMS if width == 4 else _F8_ITEMS
        if len(b) - pos == total * (4 + width):
            rec = np.frombuffer(b, dtype=dtype, count=total, offset=pos)
            if (rec["len"] == width).all():
                # A numpy array, not a list of Python floats: an embedding goes to Arrow
                # as is (engine/dml.py), and to DuckDB as a list (engine/values.py).
                return rec["v"].astype(np.float32 if width == 4 else np.float64).reshape(dims)
    flat: list[Any] = []
    for _ in range(total):
        if pos + 4 > len(b):
            raise InvalidParameterValue("insufficient data left in message")
        (n,) = _I32.unpack_from(b, pos)
        pos += 4
        if n == -1:
            flat.append(None)
            continue
        if n < 0 or pos + n > len(b):
            raise InvalidParameterValue("insufficient data left in message")
        flat.append(elem(b[pos:pos + n]))
        pos += n
    if pos != len(b):
        raise InvalidParameterValue("incorrect binary data format in array")

    def nest(items: list[Any], ds: list[int]) -> list[Any]:
        if len(ds) == 1:
            return items
        step = len(items) // ds[0] if ds[0] else 0
        return [nest(items[i * step:(i + 1) * step], ds[1:]) for i in range(ds[0])]

    return nest(flat, dims)


def binary_decoder(ctype: ColumnType) -> Decoder:
    if ctype.is_vector:
        return {HALFVEC: _bin_halfvec, SPARSEVEC: sparsevec.decode_binary if ctype.is_sparse
                else _bin_dense_sparsevec}.get(str(ctype.domain), _bin_vector)
    if ctype.base in ("bit", "varbit") and not ctype.ndim:
        return _bin_bit
    scalar = _BIN_IN.get(ctype.base, _bin_text)
    if ctype.ndim == 0:
        return scalar
    base = ctype.base
    return lambda b: _bin_array(b, scalar, base)


def type_for_param_oid(oid: int) -> ColumnType | None:
    """The ColumnType of a parameter type OID, or None for unspecified/unknown (0, 705)."""
    if oid in (0, 705):
        return None
    if oid in VECTOR_BY_OID:
        domain = VECTOR_BY_OID[oid]
        # a sparsevec parameter is a sparse value (ndim 0), whatever its column's layout
        return ColumnType("float4", 0 if domain == SPARSEVEC else 1, domain)
    if oid in BY_OID:
        return ColumnType(BY_OID[oid].name)
    if oid in ARRAY_OIDS:
        return ColumnType(ARRAY_OIDS[oid].name, 1)
    return None


def decode_param(data: bytes, oid: int, fmt: int) -> Any:
    """A Bind parameter as the Python value the engine takes.

    Text parameters of unspecified type stay ``str`` so the engine can coerce them by context
    (``$1::jsonb``); typed ones are decoded so ``$1`` of type int8 arrives as ``int``.
    """
    return param_decoder(oid, fmt)(data)


@functools.lru_cache(maxsize=1024)
def param_decoder(oid: int, fmt: int) -> Decoder:
    """The function :func:`decode_param` applies to a parameter of type ``oid`` sent in format
    ``fmt``: chosen once per (type, format), not once per value (a pipeline binds thousands
    of rows)."""
    ctype = type_for_param_oid(oid)
    if fmt == 0:
        if ctype is None or ctype.base in ("text", "varchar", "bpchar", "name", "char",
                                           "unknown"):
            if ctype is not None and ctype.ndim:
                return lambda data: parse_array_text(_bin_text(data), lambda x: x)
            return _bin_text
        text = text_decoder(ctype)
        return lambda data: text(_bin_text(data))
    if ctype is None:
        if oid in (0, 705):
            return _bin_text

        def refuse(_: bytes) -> Any:
            raise InvalidParameterValue(f"no binary input function available for type {oid}")

        return refuse
    return binary_decoder(ctype)


def type_size(ctype: ColumnType) -> int:
    """typlen for RowDescription (-1 for variable length and arrays)."""
    if ctype.ndim or ctype.is_vector:
        return -1
    scalar = SCALARS.get(ctype.base)
    return scalar.size if scalar else -1


def type_mod(ctype: ColumnType) -> int:
    """atttypmod for RowDescription: numeric(p,s) -> ((p << 16) | s) + 4, vector(n) -> n,
    else -1."""
    if ctype.dim is not None:
        return ctype.dim
    if ctype.base == "numeric" and ctype.typmods:
        p = ctype.typmods[0]
        s = ctype.typmods[1] if len(ctype.typmods) > 1 else 0
        return ((p << 16) | s) + 4
    return -1
