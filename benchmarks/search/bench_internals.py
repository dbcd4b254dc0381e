"""Search internals before and after issue 18, side by side with numpy / lancedb, in one run.

    python benchmarks/search/bench_internals.py                  # 100k x 384, a few minutes
    python benchmarks/search/bench_internals.py --n 20000 --skip-lancedb   # a quick look

Direct calls into ``tarndb.search`` (no SQL, no wire: see bench_search.py --via psycopg for
those). "before" rows run the code as it was before issue 18 in the same process:
``--before <git rev>`` (default: the commit before the calibrated indexes) loads that
revision's ``_exact.py`` / ``_bm25.py`` beside the current ones, and the fixed 10%-of-lists
probe rule is passed explicitly. Every row prints p50 latency and recall@10 against numpy
brute force; filtered rows count under-filled answers.

- vectors, clustered and isotropic (``--n`` x ``--dim``, cosine): numpy, lancedb (its default
  IVF_PQ index, prefiltered), tarndb before (10% of lists) and calibrated, unfiltered and at
  1% / 50% selectivity;
- exact scans without an index (and pinned versions): before / after (first query, then
  warm) against numpy over the same matrix, unfiltered and 1%;
- MaxSim: exact before / after against numpy's packed kernel, and the pooled index;
- BM25 (``--docs`` short texts): 3-word and 10-word queries, before / after, and a
  table without an index.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import lance
import numpy as np
import pyarrow as pa

import tarndb.search as search
from tarndb.search._kernels import maxsim_scores, normalize_rows

K = 10
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BEFORE = "64ceb35"  # the tree before issue 18's search work


def load_before(rev: str, name: str) -> ModuleType:
    """``tarndb.search.<name>`` as of ``rev``, imported beside the current one."""
    src = subprocess.run(["git", "-C", ROOT, "show", f"{rev}:src/tarndb/search/{name}.py"],
                         check=True, capture_output=True, text=True).stdout
    path = os.path.join(tempfile.mkdtemp(), f"{name}_before.py")
    with open(path, "w") as f:
        f.write(src)
    full = f"tarndb.search.{name}_before"
    spec = importlib.util.spec_from_file_location(full, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    mod.__package__ = "tarndb.search"
    sys.modules[full] = mod
    spec.loader.exec_module(mod)
    return mod


def measure(fn: Callable[..., Any], truth: list[list[int]] | None, nq: int,
            warm: bool = True) -> tuple[float, float | None, int]:
    """(p50 ms, recall@10, under-filled answers) over ``nq`` queries."""
    if warm:
        fn(0)
    lat, rec, under = [], [], 0
    for i in range(nq):
        t0 = time.perf_counter()
        keys = list(fn(i))
        lat.append((time.perf_counter() - t0) * 1000)
        if truth is not None:
            want = truth[i][:K]
            rec.append(len(set(keys[:K]) & set(want)) / max(1, len(want)))
            under += len(keys) < len(want)
    return float(np.median(lat)), (float(np.mean(rec)) if rec else None), under


def row(name: str, res: tuple[float, float | None, int], base: float | None = None,
        note: str = "") -> float:
    p50, rec, under = res
    r = "   n/a" if rec is None else f"{rec:6.3f}"
    ratio = f"  {p50 / base:6.2f}x numpy" if base else ""
    print(f"  {name:<50} p50 {p50:9.2f} ms  recall@10 {r}  under-filled {under}{ratio}"
          + (f"  ({note})" if note else ""), flush=True)
    return p50


def topk(scores: np.ndarray, k: int = K) -> list[int]:
    idx = np.argpartition(-scores, min(k, scores.size - 1))[:k]
    return idx[np.lexsort((idx, -scores[idx]))].tolist()


def vectors(kind: str, n: int, d: int, nq: int, rng: np.random.Generator,
            ) -> tuple[np.ndarray, np.ndarray]:
    if kind == "isotropic":
        x = rng.standard_normal((n, d)).astype(np.float32)
        q = rng.standard_normal((nq, d)).astype(np.float32)
    else:
        centers = rng.standard_normal((256, d)).astype(np.float32)
        x = (centers[rng.integers(0, 256, n)] * 0.6
             + rng.standard_normal((n, d)).astype(np.float32))
        q = (centers[rng.integers(0, 256, nq)] * 0.6
             + rng.standard_normal((nq, d)).astype(np.float32))
    return normalize_rows(x), q


def bench_vectors(root: str, kind: str, n: int, d: int, nq: int, lancedb_too: bool,
                  exact_before: ModuleType) -> None:
    print(f"\nvector top-{K}, {kind}, {n} x {d}", flush=True)
    x, qs = vectors(kind, n, d, nq, np.random.default_rng(1))
    rid = np.arange(n, dtype=np.int64)
    cat = rid % 100
    uri = f"{root}/{kind}.lance"
    lance.write_dataset(pa.table({
        "__rid": rid, "cat": cat,
        "emb": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), d).cast(
            pa.list_(pa.float32()))}), uri)
    ds = lance.dataset(uri)
    filters = {"none": (None, np.ones(n, bool)), "1%": ("cat = 7", cat == 7),
               "50%": ("cat < 50", cat < 50)}
    truth = {}
    base = {}
    preds: dict[str, Callable[[], np.ndarray] | None] = {
        "none": None, "1%": lambda: cat == 7, "50%": lambda: cat < 50}
    for fname, (_, mask) in filters.items():
        sub = np.flatnonzero(mask)
        truth[fname] = [sub[topk(x[sub] @ q)].tolist() for q in qs]

        def brute(i: int, pred: Callable[[], np.ndarray] | None = preds[fname]) -> list[int]:
            # The filter evaluated per query (on the in-memory column), then the product
            # over the rows that pass: what "filter first" means for numpy.
            if pred is None:
                return topk(x @ qs[i])
            keep = np.flatnonzero(pred())
            return keep[topk(x[keep] @ qs[i])].tolist()
        base[fname] = row(f"numpy brute force, filter {fname}", measure(
            brute, truth[fname], nq))

    # Exact scans without an index (also what a pinned version runs).
    slow = min(nq, 10)
    for fname in ("none", "1%"):
        sql = filters[fname][0]
        row(f"exact scan before, filter {fname}", measure(
            lambda i, sql=sql: exact_before.exact_vector_topk(ds, "emb", qs[i], K, sql)[0],
            truth[fname], slow, warm=False), base[fname], f"{slow} queries")
        from tarndb.search import _exact
        _exact.CACHE.clear()
        row(f"exact scan after, first query, filter {fname}", measure(
            lambda i, sql=sql: search.vector_topk(ds, "emb", qs[i], K, filter_sql=sql).row_keys,
            truth[fname], 1, warm=False), base[fname])
        row(f"exact scan after, filter {fname}", measure(
            lambda i, sql=sql: search.vector_topk(ds, "emb", qs[i], K, filter_sql=sql).row_keys,
            truth[fname], nq), base[fname])

    mgr = search.IndexManager.open(uri)
    t0 = time.perf_counter()
    info = mgr.create_index(ds, "emb_idx", "emb")
    print(f"  tarndb index build {time.perf_counter() - t0:.1f} s; calibration {info.tuning}",
          flush=True)
    before = search.AnnParams(nprobe_fraction=0.1, min_nprobes=16)
    for fname, (sql, _) in filters.items():
        row(f"tarndb index before (10% of lists), filter {fname}", measure(
            lambda i, sql=sql: search.vector_topk(ds, "emb", qs[i], K, filter_sql=sql,
                                                  params=before).row_keys,
            truth[fname], nq), base[fname])
        res = measure(lambda i, sql=sql: search.vector_topk(
            ds, "emb", qs[i], K, filter_sql=sql).row_keys, truth[fname], nq)
        plan = search.vector_topk(ds, "emb", qs[0], K, filter_sql=sql).plan
        row(f"tarndb index calibrated, filter {fname}", res, base[fname], plan)
    if lancedb_too:
        bench_lancedb(root, kind, x, qs, cat, filters, truth, base, nq)


def bench_lancedb(root: str, kind: str, x: np.ndarray, qs: np.ndarray, cat: np.ndarray,
                  filters: dict[str, Any], truth: dict[str, list[list[int]]],
                  base: dict[str, float], nq: int) -> None:
    try:
        import lancedb
    except ImportError:
        print("  lancedb: not installed (pip install lancedb)")
        return
    db = lancedb.connect(f"{root}/lancedb-{kind}")
    n, d = x.shape
    tbl = db.create_table("t", pa.table({
        "id": np.arange(n), "cat": cat,
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), d)}))
    t0 = time.perf_counter()
    tbl.create_index(metric="cosine", vector_column_name="vector")
    print(f"  lancedb index build (default IVF_PQ) {time.perf_counter() - t0:.1f} s",
          flush=True)
    for fname, (sql, _) in filters.items():
        def q(i: int, sql: str | None = sql) -> list[int]:
            s = tbl.search(qs[i]).distance_type("cosine")  # type: ignore[attr-defined]
            s = s.limit(K).select(["id"])
            if sql:
                s = s.where(sql, prefilter=True)
            return list(s.to_arrow()["id"].to_pylist())
        row(f"lancedb default, filter {fname}", measure(q, truth[fname], nq), base[fname])


def bench_maxsim(root: str, n: int, nq: int, exact_before: ModuleType) -> None:
    d, tokens = 128, 32
    print(f"\nMaxSim top-{K}, {n} bags x {tokens // 2}-{tokens} vectors x {d}, 16-vector "
          "queries", flush=True)
    rng = np.random.default_rng(2)
    topics = rng.standard_normal((512, d)).astype(np.float32)
    counts = rng.integers(tokens // 2, tokens + 1, n)
    flat = (np.repeat(topics[rng.integers(0, 512, n)], counts, axis=0) * 0.7
            + rng.standard_normal((int(counts.sum()), d)).astype(np.float32))
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    rid = np.arange(n, dtype=np.int64)
    packed = search.PackedBags(normalize_rows(flat), offsets, rid)
    mqs = [topics[rng.integers(0, 512)] * 0.7 + rng.standard_normal((16, d)).astype(np.float32)
           for _ in range(nq)]
    inner = pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), d)
    col = pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), inner).cast(
        pa.list_(pa.list_(pa.float32())))
    ds = lance.write_dataset(pa.table({"__rid": rid, "toks": col}), f"{root}/mv.lance")
    truth = [rid[topk(maxsim_scores(packed, q))].tolist() for q in mqs]
    slow = min(nq, 10)
    base = row("numpy MaxSim (packed in memory, one product per slice)", measure(
        lambda i: rid[topk(maxsim_scores(packed, mqs[i]))].tolist(), truth, nq))
    row("tarndb exact MaxSim before", measure(
        lambda i: exact_before.exact_maxsim_topk(ds, "toks", mqs[i], K)[0], truth, slow,
        warm=False), base, f"{slow} queries")
    row("tarndb exact MaxSim after", measure(
        lambda i: search.maxsim_topk(ds, "toks", mqs[i], K, exact=True).row_keys, truth, nq),
        base)
    mgr = search.IndexManager.open(ds.uri)
    mgr.create_index(ds, "toks_idx", "toks", "pooled_quantized", {"ann_min_rows": 1000})
    exact = row("tarndb pooled index (first stage + exact rerank)", measure(
        lambda i: search.maxsim_topk(ds, "toks", mqs[i], K).row_keys, truth, nq), base)
    print(f"    plan: {search.maxsim_topk(ds, 'toks', mqs[0], K).plan}; "
          f"{exact / base:.2f}x numpy exact")


def bench_bm25(root: str, n: int, nq: int, bm25_before: ModuleType) -> None:
    print(f"\nBM25 top-{K}, {n} short documents (Zipf words)", flush=True)
    rng = np.random.default_rng(3)
    ranks = np.minimum(rng.zipf(1.2, size=n * 30), 30_000) - 1
    lens = rng.integers(6, 31, n)
    texts, pos = [], 0
    for ln in lens.tolist():
        texts.append(" ".join(f"w{r}" for r in ranks[pos:pos + ln].tolist()))
        pos += ln
    rid = np.arange(n, dtype=np.int64)
    ds = lance.write_dataset(pa.table({"__rid": rid, "body": texts}), f"{root}/text.lance")
    mgr = search.IndexManager.open(ds.uri)
    t0 = time.perf_counter()
    mgr.create_index(ds, "body_idx", "body", "bm25")
    print(f"  tarndb bm25 index build {time.perf_counter() - t0:.1f} s", flush=True)
    idx = mgr._bm25_index(mgr.get("body_idx"))
    idx.warm()
    # Queries: words of a random document (what a user types: common and rare words mixed).
    for words in (3, 10):
        queries = []
        for _ in range(nq):
            doc = texts[int(rng.integers(0, n))].split() * 3
            queries.append(" ".join(doc[:words]))
        truth = []
        for q in queries:
            keys, scores = idx.score_all(q)
            truth.append(keys[topk(scores)].tolist())
        row(f"exhaustive scoring, {words}-word queries", measure(
            lambda i, qs=queries: (lambda ks: ks[0][topk(ks[1])].tolist())(
                idx.score_all(qs[i])), truth, nq))
        row(f"tarndb bm25 before, {words}-word queries", measure(
            lambda i, qs=queries: bm25_before.BM25Index.search(idx, qs[i], K)[0], truth, nq))
        row(f"tarndb bm25 after, {words}-word queries", measure(
            lambda i, qs=queries: idx.search(qs[i], K)[0], truth, nq))


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--mv-rows", type=int, default=20_000)
    ap.add_argument("--docs", type=int, default=200_000)
    ap.add_argument("--kinds", default="clustered,isotropic")
    ap.add_argument("--before", default=BEFORE, help="git revision of the 'before' rows")
    ap.add_argument("--skip-lancedb", action="store_true")
    ap.add_argument("--skip-vector", action="store_true")
    ap.add_argument("--skip-maxsim", action="store_true")
    ap.add_argument("--skip-bm25", action="store_true")
    ap.add_argument("--dir", default=None)
    a = ap.parse_args()
    root = a.dir or tempfile.mkdtemp(prefix="tarndb-internals-")
    os.environ.setdefault("TARNDB_SEARCH_CACHE", os.path.join(root, "search-cache"))
    exact_before = load_before(a.before, "_exact")
    bm25_before = load_before(a.before, "_bm25")
    try:
        if not a.skip_vector:
            for kind in a.kinds.split(","):
                bench_vectors(root, kind, a.n, a.dim, a.queries, not a.skip_lancedb,
                              exact_before)
        if not a.skip_maxsim:
            bench_maxsim(root, a.mv_rows, a.queries, exact_before)
        if not a.skip_bm25:
            bench_bm25(root, a.docs, a.queries, bm25_before)
    finally:
        if a.dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
