"""Timing helpers shared by the benchmark scripts (run as ``python benchmarks/<name>.py``, so
this folder is on ``sys.path``)."""

from __future__ import annotations

import time
from collections.abc import Callable


def pct(xs: list[float], p: float) -> float:
    """The ``p`` quantile (0-1) of durations in seconds, in milliseconds."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] * 1000


def timed(fn: Callable[[], object], n: int) -> list[float]:
    """Durations in seconds of ``n`` calls of ``fn``."""
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out
