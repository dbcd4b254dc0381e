"""Search latency and recall, side by side with baselines, on synthetic data.

    python benchmarks/search/bench_search.py                 # reduced: 100k rows, a few minutes
    python benchmarks/search/bench_search.py --full          # issue 9's sizes: 1M x 384, 100k bags
    python benchmarks/search/bench_search.py --via psycopg   # through the wire vs PostgreSQL +
                                                             # pgvector (bench_wire.py)
    python benchmarks/search/bench_search.py --via psycopg --only-maxsim  # MaxSim rows only

Every row prints p50/p95 latency (ms) and recall@10 against the exact answer; filtered rows
also count under-filled answers (fewer than 10 rows while at least 10 rows match):

- vector top-10 over ``--n`` x ``--dim`` (cosine), unfiltered and with 1% / 50% filters:
  numpy brute force (data in memory), raw Lance ``nearest`` (IVF_PQ + refine, on a
  fixed-size-list copy), the ``deeplake`` package (its clustered embedding index, TQL
  ``COSINE_SIMILARITY``), tarndb ``clustered`` (and ``--index-types``) with the filter as SQL
  or as the ``__rid`` list the SQL engine hands over, and the same queries through SQL;
- BM25 top-10 over ``--n`` short documents: exhaustive scoring, tarndb's index, Lance
  full-text search and deeplake's BM25 index (both with their own BM25 variant);
- hybrid top-10 (cosine + BM25, min-max, depth 100): exact hybrid in numpy, tarndb, and the
  two legs of Lance / deeplake fused on the client;
- MaxSim top-10 over ``--mv-rows`` bags of ``--mv-tokens // 2 .. --mv-tokens`` vectors of
  ``--mv-dim``: exact numpy MaxSim, tarndb ``pooled_quantized``, raw Lance multivector
  ``nearest`` (IVF_FLAT) and deeplake ``MAXSIM`` (its embeddings-matrix index);
- index build times, and a closing table of issue 9's targets, met or missed.

Each timing loop runs ``--repeats`` times (default 2); a row shows the medians. Generated
data lives in a temporary directory (``--dir``; removed at exit unless given) and the search
cache (mapped vector files) under it. Install the baseline with ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import lance
import numpy as np
import pyarrow as pa

K = 10
DEPTH = 100  # hybrid: candidates per leg, as tarndb's default
# Baselines that take a large fraction of a second per query (brute force over 1M rows, scans)
# are timed on the first this-many queries (--slow-queries).
SLOW_QUERIES = 20


@dataclass
class Row:
    p50: float
    p95: float
    recall: float | None
    underfilled: int | None = None


RESULTS: dict[str, Row] = {}
BUILDS: dict[str, float] = {}


def clustered(rng: np.random.Generator, n: int, d: int, n_centers: int = 256) -> np.ndarray:
    centers = rng.standard_normal((n_centers, d)).astype(np.float32)
    out = np.empty((n, d), np.float32)
    for s in range(0, n, 100_000):
        e = min(n, s + 100_000)
        out[s:e] = centers[rng.integers(0, n_centers, e - s)] * 0.6 + rng.standard_normal(
            (e - s, d)).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def docs(rng: np.random.Generator, n: int, vocab: int = 30_000) -> list[str]:
    # Zipf-distributed words, 6-30 per document: short texts like agent memory rows.
    ranks = np.minimum(rng.zipf(1.2, size=n * 30), vocab) - 1
    lens = rng.integers(6, 31, n)
    out, pos = [], 0
    for ln in lens.tolist():
        out.append(" ".join(f"t{r}" for r in ranks[pos:pos + ln].tolist()))
        pos += ln
    return out


def measure(fn: Callable[[int], Sequence[int]], truth: list[set[int]] | None, nq: int,
            repeats: int, want: list[int] | None = None) -> Row:
    """Median over ``repeats`` loops of the p50/p95 latency; recall@10 and under-filled
    answers (fewer than ``want[i]`` rows) from the first loop."""
    fn(0)  # warm caches (index open, page cache)
    p50s, p95s, rec, under = [], [], [], 0
    for r in range(repeats):
        lat = []
        for i in range(nq):
            t0 = time.perf_counter()
            keys = list(fn(i))
            lat.append((time.perf_counter() - t0) * 1000)
            if r == 0 and truth is not None:
                rec.append(len(set(keys[:K]) & truth[i]) / max(1, min(K, len(truth[i]))))
            if r == 0 and want is not None and len(keys) < want[i]:
                under += 1
        p50s.append(float(np.percentile(lat, 50)))
        p95s.append(float(np.percentile(lat, 95)))
    return Row(statistics.median(p50s), statistics.median(p95s),
               float(np.mean(rec)) if rec else None, under if want is not None else None)


def row(name: str, res: Row, note: str = "") -> None:
    RESULTS[name] = res
    r = "   n/a" if res.recall is None else f"{res.recall:6.3f}"
    u = "" if res.underfilled is None else f"   under-filled {res.underfilled}"
    print(f"  {name:<52} p50 {res.p50:8.2f} ms   p95 {res.p95:8.2f} ms   recall@10 {r}{u}"
          + (f"   ({note})" if note else ""), flush=True)


def skipped(name: str, why: str) -> None:
    print(f"  {name:<52} not run: {why}", flush=True)


def build(name: str, fn: Callable[[], Any]) -> Any:
    t0 = time.perf_counter()
    out = fn()
    BUILDS[name] = time.perf_counter() - t0
    print(f"  build: {name}: {BUILDS[name]:.1f} s", flush=True)
    return out


def topk(scores: np.ndarray, k: int) -> np.ndarray:
    from tarndb.search._kernels import topk_indices

    return topk_indices(scores, k)


# -- vectors -------------------------------------------------------------------------------

@dataclass
class VectorData:
    data: np.ndarray
    qs: np.ndarray
    rid: np.ndarray
    cat: np.ndarray
    text: list[str]
    qtexts: list[str]
    ds: lance.LanceDataset
    filters: dict[str, tuple[str | None, np.ndarray | None]]
    truths: dict[str, list[set[int]]]


def make_vectors(root: str, n: int, d: int, nq: int, rng: np.random.Generator,
                 text: bool) -> VectorData:
    data = clustered(rng, n, d)
    # Queries near stored vectors (noise of norm ~0.5 against unit vectors).
    qs = data[rng.integers(0, n, nq)] + rng.standard_normal((nq, d)).astype(np.float32) * (
        0.5 / np.sqrt(d))
    rid = np.arange(n, dtype=np.int64)
    cat = (rid % 100).astype(np.int64)
    text_col = docs(rng, n) if text else [""] * n
    qtexts = [" ".join(text_col[j].split()[:3]) for j in rng.integers(0, n, nq)]
    t = pa.table({"__rid": rid, "cat": cat, "body": text_col,
                  "emb": pa.ListArray.from_arrays(pa.array(np.arange(0, n * d + 1, d,
                                                                     dtype=np.int32)),
                                                  pa.array(data.reshape(-1)))})
    ds = lance.write_dataset(t, f"{root}/vec.lance", max_rows_per_file=1 << 20)
    filters: dict[str, tuple[str | None, np.ndarray | None]] = {
        "unfiltered": (None, None), "1% filter": ("cat = 0", cat == 0),
        "50% filter": ("cat < 50", cat < 50)}
    truths: dict[str, list[set[int]]] = {}
    for fname, (_, mask) in filters.items():
        sub = np.flatnonzero(mask) if mask is not None else None
        xs = data if sub is None else data[sub]
        tr = []
        for s in range(0, nq, 32):
            block = qs[s:s + 32] @ xs.T
            for srow in block:
                top = topk(srow, K)
                tr.append(set((top if sub is None else sub[top]).tolist()))
        truths[fname] = tr
    return VectorData(data, qs, rid, cat, text_col, qtexts, ds, filters, truths)


def bench_vectors(root: str, v: VectorData, nq: int, repeats: int, index_types: Sequence[str],
                  raw_lance: bool, deeplake_baseline: bool) -> None:
    import tarndb.search as search

    n, d = v.data.shape
    print(f"\nvector top-{K}, {n} x {d} (cosine)")
    want = {f: [min(K, int(m.sum()) if m is not None else n)] * nq
            for f, (_, m) in v.filters.items()}
    for fname, (_, mask) in v.filters.items():
        sub = np.flatnonzero(mask) if mask is not None else None
        xs = v.data if sub is None else v.data[sub]

        def brute(i: int, xs: np.ndarray = xs, sub: Any = sub) -> list[int]:
            top = topk(xs @ v.qs[i], K)
            return (top if sub is None else sub[top]).tolist()

        slow = min(nq, SLOW_QUERIES)
        row(f"numpy brute force, {fname}", measure(brute, v.truths[fname], slow, repeats,
                                                   want[fname]), f"{slow} queries")
    if raw_lance:
        bench_raw_lance(root, v, nq, repeats, want)
    if deeplake_baseline:
        bench_deeplake(v, nq, repeats, want)
    for itype in index_types:
        mgr = search.IndexManager.open(v.ds.uri)
        mgr.drop_index("emb_idx", if_exists=True)
        build(f"tarndb {itype} index, {n} x {d}",
              lambda itype=itype, mgr=mgr: mgr.create_index(v.ds, "emb_idx", "emb", itype))
        for fname, (sql, mask) in v.filters.items():
            def ours(i: int, sql: str | None = sql) -> list[int]:
                return search.vector_topk(v.ds, "emb", v.qs[i], K,
                                          filter_sql=sql).row_keys.tolist()

            label = "" if mask is None else " (filter as SQL)"
            row(f"tarndb {itype}, {fname}{label}",
                measure(ours, v.truths[fname], nq, repeats, want[fname]))
            if mask is not None:
                # What the SQL engine does: DuckDB evaluates the WHERE clause, the search
                # gets the allowed __rid values.
                keys = v.rid[mask]

                def ours_keys(i: int, keys: np.ndarray = keys) -> list[int]:
                    return search.vector_topk(v.ds, "emb", v.qs[i], K,
                                              allowed_row_keys=keys).row_keys.tolist()

                row(f"tarndb {itype}, {fname} (__rid list)",
                    measure(ours_keys, v.truths[fname], nq, repeats, want[fname]))
        for fname, (sql, _) in v.filters.items():
            plan = search.vector_topk(v.ds, "emb", v.qs[0], K, filter_sql=sql).plan
            print(f"    plan, {fname}: {plan}")


def bench_raw_lance(root: str, v: VectorData, nq: int, repeats: int,
                    want: dict[str, list[int]]) -> None:
    """Raw Lance ``nearest`` on a fixed-size-list copy with its own IVF_PQ index."""
    n, d = v.data.shape
    fsl = pa.table({"__rid": v.rid, "cat": v.cat,
                    "vec": pa.FixedSizeListArray.from_arrays(pa.array(v.data.reshape(-1)), d)})
    raw = lance.write_dataset(fsl, f"{root}/raw.lance")
    parts = max(2, int(np.sqrt(n) / 2))
    build(f"raw Lance IVF_PQ index, {n} x {d}", lambda: raw.create_index(
        "vec", "IVF_PQ", metric="L2", num_partitions=parts,
        num_sub_vectors=d // 16 if d % 16 == 0 else d // 8))
    raw = lance.dataset(raw.uri)
    probes = max(16, int(parts * 0.1))
    for fname, (sql, _) in v.filters.items():
        def lance_raw(i: int, sql: str | None = sql) -> list[int]:
            kw: dict[str, Any] = {"filter": sql, "prefilter": True} if sql else {}
            r = raw.to_table(columns=["__rid"], nearest={
                "column": "vec", "q": v.qs[i], "k": K, "minimum_nprobes": probes,
                "refine_factor": 20}, disable_scoring_autoprojection=True, **kw)
            return r["__rid"].to_pylist()

        row(f"raw Lance nearest (IVF_PQ), {fname}",
            measure(lance_raw, v.truths[fname], nq, repeats, want[fname]))


_DL: dict[str, Any] = {}


def _deeplake() -> Any:
    try:
        import deeplake  # type: ignore[import-not-found,unused-ignore]
    except ImportError as e:
        print(f"  deeplake (PyPI): not run, the package cannot be imported here ({e}); "
              "pip install -e '.[bench]'")
        return None
    return deeplake


def _array_literal(q: np.ndarray) -> str:
    if q.ndim == 2:
        return "ARRAY[" + ",".join(_array_literal(r) for r in q) + "]"
    return "ARRAY[" + ",".join(f"{x:.7g}" for x in q.tolist()) + "]"


def load_deeplake(root: str, v: VectorData) -> None:
    """deeplake's own indexes (clustered embedding index, BM25 text index) on the same rows,
    built at commit (``IndexingMode.Always``; without it the first queries scan)."""
    deeplake = _deeplake()
    if deeplake is None:
        return
    n, d = v.data.shape
    types = deeplake.types
    print(f"\ndeeplake {deeplake.__version__} (PyPI) on the same {n} rows")

    def load() -> Any:
        dl = deeplake.create(f"file://{root}/deeplake")
        dl.indexing_mode = deeplake.IndexingMode.Always
        dl.add_column("rid", types.Int64())
        dl.add_column("cat", types.Int64())
        dl.add_column("emb", types.Embedding(d, index_type=types.EmbeddingIndex(types.Clustered)))
        dl.add_column("body", types.Text(index_type=types.BM25))
        for s in range(0, n, 100_000):
            e = min(n, s + 100_000)
            dl.append({"rid": v.rid[s:e], "cat": v.cat[s:e], "emb": v.data[s:e],
                       "body": v.text[s:e]})
        dl.commit()
        return dl

    try:
        _DL["ds"] = build(f"deeplake load + clustered & BM25 indexes, {n} rows", load)
    except Exception as e:  # noqa: BLE001 - a baseline that cannot run says why
        print(f"  deeplake (PyPI): not run, loading the data failed: {e!r}")
        return
    # Query text is built outside the timed calls: TQL takes the vector as an ARRAY literal.
    _DL["qtext"] = [_array_literal(q) for q in v.qs]


def bench_deeplake(v: VectorData, nq: int, repeats: int, want: dict[str, list[int]]) -> None:
    """TQL ``ORDER BY COSINE_SIMILARITY`` as deeplake's docs show; the filtered queries are
    plain ``WHERE`` clauses (deeplake plans them as a scan)."""
    dl = _DL.get("ds")
    if dl is None:
        return
    qtext = _DL["qtext"]
    wheres = {"unfiltered": "", "1% filter": "WHERE cat = 0 ", "50% filter": "WHERE cat < 50 "}
    for fname in v.filters:
        def dl_query(i: int, where: str = wheres[fname]) -> list[int]:
            r = dl.query(f"SELECT rid {where}ORDER BY COSINE_SIMILARITY(emb, {qtext[i]}) "
                         f"DESC LIMIT {K}")
            return [int(x) for x in np.asarray(r["rid"][:]).reshape(-1).tolist()]

        try:
            plan = str(dl.explain_query(
                f"SELECT rid {wheres[fname]}ORDER BY COSINE_SIMILARITY(emb, {qtext[0]}) DESC "
                f"LIMIT {K}").to_dict().get("Plan"))
            # A filtered TQL query scans the table: timed on the slow-baseline subset.
            nqf = nq if fname == "unfiltered" else min(nq, SLOW_QUERIES)
            row(f"deeplake TQL COSINE_SIMILARITY, {fname}",
                measure(dl_query, v.truths[fname], nqf, repeats, want[fname]),
                plan + ("" if nqf == nq else f", {nqf} queries"))
        except Exception as e:  # noqa: BLE001
            print(f"  deeplake (PyPI), {fname}: not run, the query failed: {e!r}")


# -- SQL -----------------------------------------------------------------------------------

def bench_sql(root: str, v: VectorData, nq: int, repeats: int, text: bool) -> None:
    """The same queries through ``tarndb.open(...).execute``: parse, plan (DuckDB evaluates
    the WHERE clause), search, fetch the rows."""
    import tarndb

    n, d = v.data.shape
    print(f"\nthrough SQL (tarndb.open(...).execute), {n} rows")
    db = tarndb.open(f"{root}/lake")
    db.execute('CREATE TABLE "bench"."docs" (id BIGINT, cat BIGINT, body TEXT, emb FLOAT4[])')
    sess = db.session(workspace="bench")

    def load() -> None:
        for s in range(0, n, 100_000):
            e = min(n, s + 100_000)
            chunk = pa.table({
                "id": v.rid[s:e], "cat": v.cat[s:e], "body": v.text[s:e],
                "emb": pa.ListArray.from_arrays(
                    pa.array(np.arange(0, (e - s) * d + 1, d, dtype=np.int32)),
                    pa.array(v.data[s:e].reshape(-1)))})
            sess.insert_arrow('"bench"."docs"', chunk)

    build(f"SQL bulk insert, {n} rows", load)
    build(f"SQL CREATE INDEX ... USING deeplake_index (emb), {n} x {d}", lambda: db.execute(
        'CREATE INDEX docs_emb ON "bench"."docs" USING deeplake_index (emb DESC)'))
    if text:
        build(f"SQL CREATE INDEX ... (body) WITH (index_type = 'bm25'), {n} rows",
              lambda: db.execute('CREATE INDEX docs_body ON "bench"."docs" USING '
                                 "deeplake_index (body) WITH (index_type = 'bm25')"))
    # The table's __rid values follow insertion order, so id == __rid == the array row.
    wheres = {"unfiltered": "", "1% filter": "WHERE cat = 0 ", "50% filter": "WHERE cat < 50 "}
    for fname, where in wheres.items():
        sql = f'SELECT id FROM "bench"."docs" {where}ORDER BY emb <#> $1 DESC LIMIT {K}'

        def q(i: int, sql: str = sql) -> list[int]:
            return [r[0] for r in sess.execute(sql, [v.qs[i]]).rows]

        want = [K] * nq
        row(f"tarndb SQL vector, {fname}", measure(q, v.truths[fname], nq, repeats, want))
        if where:
            # The same with the filter's allowed rows forgotten before every query: a filter
            # seen for the first time on this table version (and the previous release).
            def cold(i: int, q: Any = q) -> list[int]:
                db.filter_cache.clear()
                return q(i)

            row(f"tarndb SQL vector, {fname}, new filter each query",
                measure(cold, v.truths[fname], nq, repeats, want))
    if text:
        sql = f'SELECT id FROM "bench"."docs" ORDER BY body <#> $1 DESC LIMIT {K}'
        row("tarndb SQL BM25", measure(
            lambda i: [r[0] for r in sess.execute(sql, [v.qtexts[i]]).rows],
            _TRUTH.get("bm25"), nq, repeats))
        # The exact reference is min-max fusion (the default is chosen for quality in
        # docs/hybrid-fusion.md; this row measures speed at a known answer).
        sess.execute("SET tarndb.hybrid_fusion = 'minmax'")
        sql = (f'SELECT id FROM "bench"."docs" ORDER BY (emb, body) <#> '
               f"deeplake_hybrid_record($1, $2, 0.5, 0.5) DESC LIMIT {K}")
        row("tarndb SQL hybrid", measure(
            lambda i: [r[0] for r in sess.execute(sql, [v.qs[i], v.qtexts[i]]).rows],
            _TRUTH.get("hybrid unfiltered"), nq, repeats))
    db.close()


# -- text ----------------------------------------------------------------------------------

_TRUTH: dict[str, list[set[int]]] = {}


def bench_text(root: str, v: VectorData, nq: int, repeats: int,
               deeplake_baseline: bool) -> None:
    """BM25 and hybrid on the vector table's ``body`` column."""
    import tarndb.search as search

    n = len(v.text)
    ds = v.ds
    print(f"\nBM25 top-{K}, {n} short documents (6-30 Zipf words), 3-word queries")
    mgr = search.IndexManager.open(ds.uri)
    build(f"tarndb bm25 index, {n} rows", lambda: mgr.create_index(ds, "body_idx", "body",
                                                                   "bm25"))
    exact_idx = search.BM25Index()
    exact_idx.add(v.rid, v.text)

    def bm25_exact(i: int, k: int = K) -> list[int]:
        keys, scores = exact_idx.score_all(v.qtexts[i])
        return keys[topk(scores, k)].tolist()

    bm_truth = [set(bm25_exact(i)) for i in range(nq)]
    _TRUTH["bm25"] = bm_truth
    row("exhaustive BM25 (every matching row scored)", measure(bm25_exact, bm_truth, nq,
                                                               repeats))
    row("tarndb bm25 index", measure(
        lambda i: search.bm25_topk(ds, "body", v.qtexts[i], K).row_keys.tolist(), bm_truth,
        nq, repeats))
    build(f"Lance INVERTED (FTS) index, {n} rows",
          lambda: ds.create_scalar_index("body", "INVERTED"))
    lds = lance.dataset(ds.uri)
    row("raw Lance full-text search", measure(
        lambda i: lds.to_table(columns=["__rid"], full_text_query=v.qtexts[i], limit=K,
                               disable_scoring_autoprojection=True)["__rid"].to_pylist(),
        bm_truth, nq, repeats), "Lance's BM25 variant")
    dl = _DL.get("ds") if deeplake_baseline else None
    if dl is not None:
        def dl_bm25(i: int) -> list[int]:
            r = dl.query(f"SELECT rid ORDER BY BM25_SIMILARITY(body, '{v.qtexts[i]}') DESC "
                         f"LIMIT {K}")
            return [int(x) for x in np.asarray(r["rid"][:]).reshape(-1).tolist()]

        try:
            row("deeplake TQL BM25_SIMILARITY", measure(dl_bm25, bm_truth, nq, repeats),
                "deeplake's BM25 variant")
        except Exception as e:  # noqa: BLE001
            print(f"  deeplake BM25: not run, the query failed: {e!r}")

    print(f"\nhybrid top-{K} (cosine + BM25, 0.5/0.5, min-max, depth {DEPTH}; recall against "
          "the exact hybrid: both legs exact, candidates rescored on both sides)")
    def exact_hybrid(i: int, mask: np.ndarray | None, k: int = K) -> list[int]:
        q = v.qs[i] / np.linalg.norm(v.qs[i])
        cos = v.data @ q
        tk, ts = exact_idx.score_all(v.qtexts[i])
        if mask is not None:
            cos = np.where(mask, cos, -np.inf)
            ok = mask[tk]
            tk, ts = tk[ok], ts[ok]
        vk = topk(cos, DEPTH)
        cand = np.union1d(vk, tk[topk(ts, DEPTH)])
        tlook = np.zeros(cand.size, np.float32)
        pos = np.clip(np.searchsorted(tk, cand), 0, max(tk.size - 1, 0))
        hit = tk[pos] == cand if tk.size else np.zeros(cand.size, bool)
        tlook[hit] = ts[pos[hit]]
        keys, _ = search.hybrid_fuse((cand, cos[cand]), (cand, tlook), 0.5, 0.5, "minmax", k=k)
        return keys.tolist()

    half = v.cat < 50
    truths = {"unfiltered": [set(exact_hybrid(i, None)) for i in range(nq)],
              "50% filter": [set(exact_hybrid(i, half)) for i in range(nq)]}
    slow = min(nq, SLOW_QUERIES)
    for fname, sql, mask in (("unfiltered", None, None), ("50% filter", "cat < 50", half)):
        truth = _TRUTH[f"hybrid {fname}"] = truths[fname]
        row(f"exact hybrid in numpy (data in memory), {fname}",
            measure(lambda i, mask=mask: exact_hybrid(i, mask), truth, slow, repeats),
            f"{slow} queries")
        row(f"tarndb hybrid, {fname}" + ("" if mask is None else " (filter as SQL)"),
            measure(lambda i, sql=sql: search.hybrid_topk(
                ds, "emb", "body", v.qs[i], v.qtexts[i], K, filter_sql=sql,
                method="minmax").row_keys.tolist(),
                truth, nq, repeats))
        if mask is not None:
            keys = v.rid[mask]
            row(f"tarndb hybrid, {fname} (__rid list)", measure(
                lambda i, keys=keys: search.hybrid_topk(
                    ds, "emb", "body", v.qs[i], v.qtexts[i], K, method="minmax",
                    allowed_row_keys=keys).row_keys.tolist(), truth, nq, repeats))
    truth = _TRUTH["hybrid unfiltered"]
    raw_path = f"{root}/raw.lance"
    if os.path.exists(raw_path):
        raw = lance.dataset(raw_path)
        parts = max(2, int(np.sqrt(n) / 2))
        probes = max(16, int(parts * 0.1))

        def lance_legs(i: int) -> list[int]:
            vt = raw.to_table(columns=["__rid"], nearest={
                "column": "vec", "q": v.qs[i], "k": DEPTH, "minimum_nprobes": probes,
                "refine_factor": 20})
            tt = lds.to_table(columns=["__rid"], full_text_query=v.qtexts[i], limit=DEPTH)
            keys, _ = search.hybrid_fuse(
                (vt["__rid"].to_numpy(), -vt["_distance"].to_numpy()),
                (tt["__rid"].to_numpy(), tt["_score"].to_numpy()), 0.5, 0.5, "minmax", k=K)
            return keys.tolist()

        row("raw Lance legs (nearest + FTS) fused on the client", measure(
            lance_legs, truth, nq, repeats), "min-max, no rescoring, Lance's BM25")
    if dl is not None:
        qtext = _DL["qtext"]

        def dl_legs(i: int) -> list[int]:
            rv = dl.query(f"SELECT rid ORDER BY COSINE_SIMILARITY(emb, {qtext[i]}) DESC "
                          f"LIMIT {DEPTH}")
            rt = dl.query(f"SELECT rid ORDER BY BM25_SIMILARITY(body, '{v.qtexts[i]}') DESC "
                          f"LIMIT {DEPTH}")
            vk = np.asarray(rv["rid"][:]).reshape(-1)
            tk = np.asarray(rt["rid"][:]).reshape(-1)
            # TQL returns no BM25 scores to a client, so the legs are fused by rank.
            keys, _ = search.hybrid_fuse((vk, -np.arange(vk.size, dtype=np.float64)),
                                         (tk, -np.arange(tk.size, dtype=np.float64)),
                                         0.5, 0.5, "rrf", k=K)
            return keys.tolist()

        try:
            row("deeplake legs (two TQL queries) fused on the client", measure(
                dl_legs, truth, nq, repeats), "RRF: TQL gives no BM25 scores")
        except Exception as e:  # noqa: BLE001
            print(f"  deeplake hybrid: not run, the query failed: {e!r}")


# -- MaxSim --------------------------------------------------------------------------------

def bench_maxsim(root: str, n: int, tokens: int, d: int, nq: int, repeats: int,
                 rng: np.random.Generator, raw_lance: bool, deeplake_baseline: bool) -> None:
    import tarndb.search as search
    from tarndb.search._kernels import maxsim_scores, normalize_rows

    print(f"\nMaxSim top-{K}, {n} rows x {tokens // 2}-{tokens} vectors x {d}, 16-vector "
          "queries")
    topics = rng.standard_normal((512, d)).astype(np.float32)
    row_topic = rng.integers(0, 512, n)
    counts = rng.integers(tokens // 2, tokens + 1, n)
    rid = np.arange(n, dtype=np.int64)
    vec_parts = []
    for s in range(0, n, 10_000):
        e = min(n, s + 10_000)
        rows = int(counts[s:e].sum())
        vec_parts.append(np.repeat(topics[row_topic[s:e]], counts[s:e], axis=0) * 0.7
                         + rng.standard_normal((rows, d)).astype(np.float32))
    flat = np.concatenate(vec_parts).astype(np.float32)
    del vec_parts
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    packed = search.PackedBags(normalize_rows(flat), offsets, rid)
    mqs = [topics[rng.integers(0, 512)] * 0.7 + rng.standard_normal((16, d)).astype(np.float32)
           for _ in range(nq)]
    inner = pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), d)
    bags_col = pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), inner)
    del flat
    # tarndb stores float4[][] as list<list<float32>>; Lance's multivector index wants
    # list<fixed_size_list<float32, d>>: the same numbers, two datasets.
    ds = lance.write_dataset(pa.table({"__rid": rid, "toks": bags_col.cast(
        pa.list_(pa.list_(pa.float32())))}), f"{root}/mv.lance")
    truth = [set(rid[topk(maxsim_scores(packed, q), K)].tolist()) for q in mqs]
    slow = min(nq, SLOW_QUERIES)
    row("numpy exact MaxSim (packed, in memory)", measure(
        lambda i: rid[topk(maxsim_scores(packed, mqs[i]), K)].tolist(), truth, slow, repeats),
        f"{slow} queries")
    mgr = search.IndexManager.open(ds.uri)
    build(f"tarndb pooled_quantized index, {n} rows",
          lambda: mgr.create_index(ds, "toks_idx", "toks", "pooled_quantized"))
    row("tarndb pooled_quantized", measure(
        lambda i: search.maxsim_topk(ds, "toks", mqs[i], K).row_keys.tolist(), truth, nq,
        repeats))
    print(f"    plan: {search.maxsim_topk(ds, 'toks', mqs[0], K).plan}")
    if raw_lance:
        mv = lance.write_dataset(pa.table({"__rid": rid, "toks": bags_col}),
                                 f"{root}/mv_fsl.lance")
        parts = max(2, int(np.sqrt(n) / 2))
        build(f"raw Lance multivector IVF_FLAT index, {n} rows", lambda: mv.create_index(
            "toks", "IVF_FLAT", metric="cosine", num_partitions=parts))
        mv = lance.dataset(mv.uri)
        probes = max(8, int(parts * 0.1))
        row("raw Lance multivector nearest (IVF_FLAT)", measure(
            lambda i: mv.to_table(columns=["__rid"], nearest={
                "column": "toks", "q": mqs[i], "k": K, "minimum_nprobes": probes},
                disable_scoring_autoprojection=True)["__rid"].to_pylist(), truth, slow,
            repeats), f"{slow} queries")
    if deeplake_baseline:
        bench_deeplake_maxsim(root, packed, mqs, truth, nq, repeats)


def bench_deeplake_maxsim(root: str, packed: Any, mqs: list[np.ndarray],
                          truth: list[set[int]], nq: int, repeats: int) -> None:
    deeplake = _deeplake()
    if deeplake is None:
        return
    from tarndb.search._kernels import normalize_rows

    types = deeplake.types
    n = len(packed)

    def load() -> Any:
        dl = deeplake.create(f"file://{root}/deeplake_mv")
        dl.indexing_mode = deeplake.IndexingMode.Always
        dl.add_column("rid", types.Int64())
        dl.add_column("toks", types.Array(types.Float32(), dimensions=2))
        dl["toks"].create_index(types.EmbeddingsMatrixIndex())
        for s in range(0, n, 10_000):
            e = min(n, s + 10_000)
            # Normalised vectors on both sides: MaxSim as tarndb defines it.
            bags = [packed.vectors[packed.offsets[i]:packed.offsets[i + 1]]
                    for i in range(s, e)]
            dl.append({"rid": packed.row_keys[s:e], "toks": bags})
        dl.commit()
        return dl

    try:
        dl = build(f"deeplake load + embeddings-matrix index, {n} rows", load)
    except Exception as e:  # noqa: BLE001
        print(f"  deeplake MaxSim: not run, loading the data failed: {e!r}")
        return
    qtext = [_array_literal(normalize_rows(q)) for q in mqs]

    def dl_q(i: int) -> list[int]:
        r = dl.query(f"SELECT rid ORDER BY MAXSIM(toks, {qtext[i]}) DESC LIMIT {K}")
        return [int(x) for x in np.asarray(r["rid"][:]).reshape(-1).tolist()]

    try:
        plan = str(dl.explain_query(f"SELECT rid ORDER BY MAXSIM(toks, {qtext[0]}) DESC "
                                    f"LIMIT {K}").to_dict().get("Plan"))
        slow = min(nq, SLOW_QUERIES)
        row("deeplake TQL MAXSIM", measure(dl_q, truth, slow, repeats),
            f"{plan}, {slow} queries")
    except Exception as e:  # noqa: BLE001
        print(f"  deeplake MaxSim: not run, the query failed: {e!r}")


# -- targets -------------------------------------------------------------------------------

def targets(n: int, d: int, mv_rows: int) -> None:
    print(f"\nissue 9 targets (2-core machine; measured here at {n} x {d}, MaxSim {mv_rows} "
          "rows):")

    def get(name: str) -> Row | None:
        return RESULTS.get(name)

    def line(what: str, ok: bool | None, got: str) -> None:
        mark = "n/a " if ok is None else ("met " if ok else "MISS")
        print(f"  [{mark}] {what:<58} {got}")

    r = get("tarndb clustered, unfiltered")
    line("vector p50 <= 8 ms at recall@10 >= 0.95", None if r is None else
         (r.p50 <= 8 and (r.recall or 0) >= 0.95),
         "" if r is None else f"p50 {r.p50:.2f} ms, recall {r.recall:.3f}")
    filt = [v for k, v in RESULTS.items() if k.startswith("tarndb clustered, ") and "filter" in k]
    filt += [v for k, v in RESULTS.items() if k.startswith("tarndb SQL vector, ") and "filter"
             in k]
    if filt:
        worst = min(v.recall or 0 for v in filt)
        under = sum(v.underfilled or 0 for v in filt)
        line("filtered recall >= 0.95, never under-filled", worst >= 0.95 and under == 0,
             f"worst recall {worst:.3f}, under-filled answers {under}")
    else:
        line("filtered recall >= 0.95, never under-filled", None, "")
    for what, name, limit in (("BM25 p50 <= 10 ms", "tarndb bm25 index", 10.0),
                              ("hybrid p50 <= 20 ms", "tarndb hybrid, unfiltered", 20.0)):
        r = get(name)
        line(what, None if r is None else r.p50 <= limit,
             "" if r is None else f"p50 {r.p50:.2f} ms, recall {r.recall:.3f}")
    r = get("tarndb pooled_quantized")
    line("MaxSim p50 <= 50 ms at recall@10 >= 0.9 (vs exact)", None if r is None else
         (r.p50 <= 50 and (r.recall or 0) >= 0.9),
         "" if r is None else f"p50 {r.p50:.2f} ms, recall {r.recall:.3f}")
    b = BUILDS.get(f"tarndb clustered index, {n} x {d}")
    line(f"index build of {n} x {d} <= 5 min", None if b is None else b <= 300,
         "" if b is None else f"{b:.1f} s")
    if n != 1_000_000 or d != 384:
        print("  (the targets are for 1M x 384 and 100k MaxSim rows: run with --full)")


def main() -> None:
    global SLOW_QUERIES
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join((__doc__ or "").split("\n")[2:]))
    ap.add_argument("--full", action="store_true",
                    help="issue 9's sizes: --n 1000000 --mv-rows 100000 (explicit flags win)")
    ap.add_argument("--n", type=int, default=None,
                    help="rows for vector/BM25/hybrid (default 100000; --full: 1000000)")
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=2,
                    help="timing loops per row; rows show the medians (default 2)")
    ap.add_argument("--slow-queries", type=int, default=SLOW_QUERIES,
                    help="queries timed for the slow baselines: brute force, exact MaxSim, "
                         f"scans (default {SLOW_QUERIES})")
    ap.add_argument("--mv-rows", type=int, default=None,
                    help="MaxSim rows (default 10000; --full: 100000)")
    ap.add_argument("--mv-tokens", type=int, default=32, help="most vectors in a bag")
    ap.add_argument("--mv-dim", type=int, default=128)
    ap.add_argument("--skip-vector", action="store_true",
                    help="no vector section (BM25 and hybrid still build the table)")
    ap.add_argument("--skip-text", action="store_true", help="no BM25 / hybrid")
    ap.add_argument("--skip-maxsim", action="store_true")
    ap.add_argument("--only-maxsim", action="store_true",
                    help="only the MaxSim rows (and their targets): a minute, for iterating")
    ap.add_argument("--skip-sql", action="store_true", help="no queries through SQL")
    ap.add_argument("--skip-raw-lance", action="store_true",
                    help="no raw Lance baselines (IVF_PQ training is slow)")
    ap.add_argument("--skip-deeplake", action="store_true",
                    help="no baselines with the deeplake package from PyPI")
    ap.add_argument("--index-types", default="clustered",
                    help="tarndb vector index types to time (e.g. clustered,clustered_quantized)")
    ap.add_argument("--dir", default=None,
                    help="work directory (default: a temp dir, removed at exit)")
    ap.add_argument("--via", choices=("direct", "psycopg", "both"), default="direct",
                    help="psycopg: tarndb serve vs PostgreSQL + pgvector through psycopg over "
                         "TLS, with issue 18's targets (bench_wire.py); both: that first, then "
                         "the direct mode (default: direct)")
    ap.add_argument("--ef-search", type=int, default=100,
                    help="--via psycopg: pgvector's hnsw.ef_search (default 100)")
    ap.add_argument("--real-n", type=int, default=None,
                    help="--via psycopg: rows of SciFact MiniLM embeddings (the 5,183 "
                         "abstracts repeated with noise; default min(--n, 100000))")
    ap.add_argument("--skip-real", action="store_true",
                    help="--via psycopg: no SciFact MiniLM / real-claims BM25 rows")
    ap.add_argument("--file-mb", type=int, default=64,
                    help="--via psycopg: size of the file uploaded and downloaded over HTTP")
    ap.add_argument("--skip-files", action="store_true",
                    help="--via psycopg: no HTTP upload / download rows")
    ap.add_argument("--probes", type=int, default=None,
                    help="--via psycopg: pgvector's ivfflat.probes (default sqrt(lists))")
    args = ap.parse_args()
    SLOW_QUERIES = args.slow_queries
    n = args.n or (1_000_000 if args.full else 100_000)
    mv_rows = args.mv_rows or (100_000 if args.full else 10_000)
    root = args.dir or tempfile.mkdtemp(prefix="tarn-bench-")
    os.makedirs(root, exist_ok=True)
    # Mapped copies of the index vectors go with the rest of the generated data.
    os.environ["TARNDB_SEARCH_CACHE"] = os.path.join(root, "search-cache")
    print(f"bench_search: n={n} dim={args.dim} queries={args.queries} repeats={args.repeats} "
          f"mv_rows={mv_rows} cpus={os.cpu_count()} dir={root}", flush=True)
    rng = np.random.default_rng(0)
    t_start = time.perf_counter()
    try:
        if args.only_maxsim:
            if args.via != "direct":
                import bench_wire

                bench_wire.run_maxsim_only(root, args.queries, args.repeats, SLOW_QUERIES,
                                           bench_wire.Extras(mv_rows=mv_rows,
                                                             mv_tokens=args.mv_tokens,
                                                             mv_dim=args.mv_dim))
            if args.via != "psycopg":
                bench_maxsim(root, mv_rows, args.mv_tokens, args.mv_dim, args.queries,
                             args.repeats, rng, raw_lance=not args.skip_raw_lance,
                             deeplake_baseline=not args.skip_deeplake)
            print(f"\ntotal {time.perf_counter() - t_start:.0f} s")
            return
        if args.via != "direct":
            import bench_wire

            v = make_vectors(root, n, args.dim, args.queries, rng, text=not args.skip_text)
            extras = bench_wire.Extras(
                mv_rows=0 if args.skip_maxsim else (
                    args.mv_rows or (100_000 if args.full else 10_000)),
                mv_tokens=args.mv_tokens, mv_dim=args.mv_dim,
                real_n=0 if args.skip_real else (args.real_n or min(n, 100_000)),
                file_mb=0 if args.skip_files else args.file_mb)
            bench_wire.run(root, v, args.queries, args.repeats, SLOW_QUERIES, args.ef_search,
                           args.probes, text=not args.skip_text, extras=extras)
            del v
            if args.via == "psycopg":
                print(f"\ntotal {time.perf_counter() - t_start:.0f} s")
                return
            print("\n-- direct mode (in process) --")
            rng = np.random.default_rng(0)
        if not (args.skip_vector and args.skip_text):
            v = make_vectors(root, n, args.dim, args.queries, rng, text=not args.skip_text)
            if not args.skip_deeplake:
                load_deeplake(root, v)
            if not args.skip_vector:
                bench_vectors(root, v, args.queries, args.repeats,
                              [t for t in args.index_types.split(",") if t],
                              raw_lance=not args.skip_raw_lance,
                              deeplake_baseline=not args.skip_deeplake)
            if not args.skip_text:
                if args.skip_vector:
                    import tarndb.search as search

                    search.IndexManager.open(v.ds.uri).create_index(v.ds, "emb_idx", "emb")
                bench_text(root, v, args.queries, args.repeats,
                           deeplake_baseline=not args.skip_deeplake)
            if not args.skip_sql:
                bench_sql(root, v, args.queries, args.repeats, text=not args.skip_text)
            del v
        if not args.skip_maxsim:
            bench_maxsim(root, mv_rows, args.mv_tokens, args.mv_dim, args.queries,
                         args.repeats, rng, raw_lance=not args.skip_raw_lance,
                         deeplake_baseline=not args.skip_deeplake)
        targets(n, args.dim, mv_rows)
        print(f"\ntotal {time.perf_counter() - t_start:.0f} s")
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
