"""HTTP Range header parsing (RFC 9110 section 14), single ranges only."""

from __future__ import annotations

from ..errors import TarnError


class RangeNotSatisfiable(TarnError):
    sqlstate = "22023"
    http_status = 416
    code = "range_not_satisfiable"

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end_exclusive)`` for a satisfiable single byte range, ``None`` to send the
    whole file (no header, a unit other than bytes, several ranges, or a syntax error, all of
    which RFC 9110 lets a server answer with 200), :class:`RangeNotSatisfiable` otherwise."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    first, last = first.strip(), last.strip()
    if (first and not first.isdigit()) or (last and not last.isdigit()) or not (first or last):
        return None
    if not first:  # suffix range: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable(f"range {header!r} is empty", size)
        return max(0, size - n), size
    start = int(first)
    end = min(int(last) + 1, size) if last else size
    if last and int(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(f"range {header!r} starts past the end ({size} bytes)", size)
    return start, end
