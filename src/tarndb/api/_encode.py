"""Engine values to JSON and JSON request values to engine parameters."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
import uuid
from typing import Any


def _default(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            return str(value)
        # Numbers keep JSON clients simple; a value a double would round goes out as text.
        as_float = float(value)
        if value == value.to_integral_value() and abs(value) < 2**53:
            return int(value)
        return as_float if decimal.Decimal(repr(as_float)) == value else str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dt.timedelta):
        return _iso_duration(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def _iso_duration(td: dt.timedelta) -> str:
    total = td.total_seconds()
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{sign}P{int(days)}DT{int(hours)}H{int(minutes)}M{seconds:g}S"


def _sanitize(value: Any) -> Any:
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, (list, tuple)):
        return [_sanitize(v) for v in value]
    if isinstance(value, dict):
        return {k: _sanitize(v) for k, v in value.items()}
    return value


def dumps(payload: Any) -> bytes:
    """Strict JSON; NaN and infinities become the strings Postgres prints for them."""
    try:
        text = json.dumps(payload, default=_default, allow_nan=False, separators=(",", ":"))
    except ValueError:
        # Rare (NaN in a float column): walk the payload once instead of on every response.
        text = json.dumps(_sanitize(payload), default=_default, allow_nan=False,
                          separators=(",", ":"))
    return text.encode("utf-8")


def to_param(value: Any) -> Any:
    """A JSON request value as a statement parameter: objects become JSON text, which is
    what a Postgres driver would send for a json/jsonb parameter."""
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, list) and any(isinstance(v, dict) for v in value):
        return json.dumps(value)
    return value


def result_json(res: Any) -> dict[str, Any]:
    """The body of a query response for a :class:`tarndb.engine.result.Result`."""
    columns = list(res.columns)
    rows = [list(r) for r in res.rows] if columns else []
    out: dict[str, Any] = {
        "columns": [c.name for c in columns],
        "column_types": [c.type.pg_name for c in columns],
        "rows": rows,
        "row_count": len(rows) if columns else res.rowcount,
        "command": res.command,
    }
    if res.notices:
        out["notices"] = list(res.notices)
    return out
