"""The default embedding model (int8 ONNX MiniLM, no torch) beside the torch MiniLM it was
exported from: SciFact test nDCG@10 (exact dense search in numpy), time to load and answer
the first ``embed()``, and documents per second, in one run.

    python benchmarks/search/default_model.py [--model-dir DIR ...] [--docs N]

``--model-dir`` adds other exports (e.g. ``scripts/export_minilm_onnx.py --fp32 --out DIR``)
to compare. The torch reference uses the cached embeddings of tests/search/_scifact.py when
they exist (the ``embeddings`` extra otherwise).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "search"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import _scifact  # noqa: E402


def dense_ndcg(data: _scifact.SciFact, docs: np.ndarray, queries: np.ndarray) -> float:
    scores = queries @ docs.T
    top = np.argsort(-scores, axis=1)[:, :10]
    run = {qid: [data.doc_ids[j] for j in top[i]] for i, qid in enumerate(data.query_ids)}
    return _scifact.ndcg_at_k(run, data.qrels)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", action="append", default=[], type=Path)
    ap.add_argument("--docs", type=int, default=0, help="limit the corpus (0: all 5,183)")
    args = ap.parse_args()
    from tarndb.embeddings._onnx import OnnxEmbedder, packaged_onnx_path

    data = _scifact.load("test")
    if args.docs:
        keep = set(data.doc_ids[:args.docs]) | {d for r in data.qrels.values() for d in r}
        pairs = [(i, t) for i, t in zip(data.doc_ids, data.doc_texts, strict=True) if i in keep]
        data.doc_ids, data.doc_texts = [p[0] for p in pairs], [p[1] for p in pairs]
    print(f"SciFact test: {len(data.doc_texts)} docs, {len(data.query_texts)} queries")
    t0 = time.perf_counter()
    ref_docs = _scifact.embed(data.doc_texts)
    ref_q = _scifact.embed(data.query_texts)
    ref = dense_ndcg(data, ref_docs, ref_q)
    print(f"  torch MiniLM (sentence-transformers)  nDCG@10 {ref:.4f}  "
          f"({time.perf_counter() - t0:.1f} s, cached when present)")
    for d in [packaged_onnx_path(), *args.model_dir]:
        t0 = time.perf_counter()
        m = OnnxEmbedder(d.name, d)
        m.embed(["first query"])
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        docs = m.embed(data.doc_texts)
        dt = time.perf_counter() - t0
        q = m.embed(data.query_texts)
        nd = dense_ndcg(data, docs, q)
        cos = float(np.mean(np.sum(docs * ref_docs, axis=1)))
        size = (d / "model.onnx").stat().st_size / 1e6
        print(f"  {d.name:<36} nDCG@10 {nd:.4f} ({nd - ref:+.4f})  load+first embed "
              f"{first:.2f} s  {len(docs) / dt:.0f} docs/s  mean cosine to torch {cos:.4f}  "
              f"{size:.1f} MB")


if __name__ == "__main__":
    main()
