"""Retrieval quality on BEIR-format folders: BM25, dense and every hybrid fusion, through SQL.

    python benchmarks/search/quality.py DIR[:SPLIT]... [--halves] [--depth 100]

For each folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/SPLIT.tsv``; SPLIT defaults to
``test``) it prints nDCG@10 and recall@100 of

- BM25 (``body <#> 'query'``, tarndb's default BM25: k1 0.9, b 0.4, English stop words and
  Snowball stemming) beside bm25s with the same settings;
- dense (``emb <#> $1``, MiniLM cosine) beside numpy on the same embeddings;
- every fusion (``(emb, body) <#> deeplake_hybrid_record($1, $2, 0.5, 0.5)`` under
  ``SET tarndb.hybrid_fusion``) beside the same fusion of the bm25s and numpy legs (top
  ``--depth`` of each, both scores for every candidate, as tarndb's rescoring does).

The default fusion is marked ``*``. ``--halves`` scores each folder's queries also as two
sets, odd and even query ids (SciFact is the only judged text set in ../shared/data).
A summary gives, per fusion, how far it is above or below the better single leg on each set.
Documents are ``title + " " + text``. MiniLM embeddings are cached by content under
$TARNDB_CACHE_DIR (default ~/.cache/tarndb/search). docs/hybrid-fusion.md has the results.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "search"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import _scifact  # noqa: E402

from tarndb.search import DEFAULT_FUSION, FUSION_METHODS, hybrid_fuse  # noqa: E402

K1, B = 0.9, 0.4
Run = dict[str, list[str]]


@dataclass
class BeirSet:
    name: str
    doc_ids: list[str]
    doc_texts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    qrels: dict[str, dict[str, int]]


def load_beir(spec: str) -> BeirSet:
    """``DIR`` or ``DIR:SPLIT`` (qrels/SPLIT.tsv; queries without judgements are left out)."""
    folder, _, split = spec.partition(":")
    root = Path(folder)
    split = split or "test"
    doc_ids: list[str] = []
    doc_texts: list[str] = []
    with open(root / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            doc_ids.append(str(d["_id"]))
            doc_texts.append(f"{d.get('title') or ''} {d.get('text') or ''}".strip())
    qrels: dict[str, dict[str, int]] = {}
    with open(root / "qrels" / f"{split}.tsv", encoding="utf-8") as f:
        for i, line in enumerate(f):
            parts = line.rstrip("\n").split("\t")
            if i == 0 and not parts[-1].lstrip("-").isdigit():
                continue  # header
            qid, did, score = parts[0], parts[1], int(parts[-1])
            if score > 0:
                qrels.setdefault(qid, {})[did] = score
    queries: dict[str, str] = {}
    with open(root / "queries.jsonl", encoding="utf-8") as f:
        for line in f:
            q = json.loads(line)
            queries[str(q["_id"])] = q["text"]
    qids = [q for q in queries if q in qrels]
    return BeirSet(f"{root.name}:{split}", doc_ids, doc_texts, qids, [queries[q] for q in qids],
                   {q: qrels[q] for q in qids})


def metrics(run: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]
            ) -> tuple[float, float]:
    """Mean nDCG@10 and recall@100 over the queries of ``qrels``."""
    ndcg = _scifact.ndcg_at_k(run, qrels, 10)
    recall = 0.0
    for qid, rel in qrels.items():
        hits = set(list(run.get(qid, []))[:100])
        recall += len(hits & set(rel)) / len(rel)
    return ndcg, recall / len(qrels)


def tarndb_runs(data: BeirSet, doc_emb: np.ndarray, q_emb: np.ndarray, root: str,
                depth: int) -> dict[str, Run]:
    """Every mode through SQL on an embedded database, as a user would run it."""
    import tarndb

    db = tarndb.open(f"{root}/lake")
    try:
        db.execute('CREATE TABLE "quality"."docs" (doc_id TEXT, body TEXT, emb FLOAT4[])')
        sess = db.session(workspace="quality")
        n, d = doc_emb.shape
        sess.insert_arrow('"quality"."docs"', pa.table({
            "doc_id": pa.array(data.doc_ids), "body": pa.array(data.doc_texts),
            "emb": pa.ListArray.from_arrays(pa.array(np.arange(0, n * d + 1, d, dtype=np.int32)),
                                            pa.array(doc_emb.reshape(-1)))}))
        sess.execute("CREATE INDEX docs_body ON docs USING deeplake_index (body) "
                     "WITH (index_type = 'bm25')")
        sess.execute("CREATE INDEX docs_emb ON docs USING deeplake_index (emb DESC)")
        runs: dict[str, Run] = {}

        def run(sql: str, args: list[list[object]]) -> Run:
            return {qid: [r[0] for r in sess.execute(sql, a).rows]
                    for qid, a in zip(data.query_ids, args, strict=True)}

        runs["bm25"] = run(f"SELECT doc_id FROM docs ORDER BY body <#> $1 DESC LIMIT {depth}",
                           [[t] for t in data.query_texts])
        vecs = [q_emb[i] for i in range(len(data.query_ids))]
        runs["dense"] = run(f"SELECT doc_id FROM docs ORDER BY emb <#> $1 DESC LIMIT {depth}",
                            [[v] for v in vecs])
        for method in FUSION_METHODS:
            sess.execute(f"SET tarndb.hybrid_fusion = '{method}'")
            runs[method] = run(
                "SELECT doc_id FROM docs ORDER BY (emb, body) <#> "
                f"deeplake_hybrid_record($1, $2, 0.5, 0.5) DESC LIMIT {depth}",
                [[v, t] for v, t in zip(vecs, data.query_texts, strict=True)])
        return runs
    finally:
        db.close()


def reference_runs(data: BeirSet, doc_emb: np.ndarray, q_emb: np.ndarray,
                   depth: int) -> dict[str, Run]:
    """bm25s and numpy legs, and every fusion of those two legs (tarndb.search.hybrid_fuse
    on the union of their top ``depth``, each candidate scored by both)."""
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25(k1=K1, b=B, method="lucene")
    retriever.index(bm25s.tokenize(data.doc_texts, stopwords="en", stemmer=stemmer,
                                   show_progress=False), show_progress=False)
    q_tokens = bm25s.tokenize(data.query_texts, stopwords="en", stemmer=stemmer,
                              return_ids=False, show_progress=False)
    ids = np.asarray(data.doc_ids)
    sims = q_emb @ doc_emb.T
    runs: dict[str, Run] = {m: {} for m in ("bm25", "dense", *FUSION_METHODS)}
    for i, qid in enumerate(data.query_ids):
        text = np.asarray(retriever.get_scores(q_tokens[i]), dtype=np.float64)
        dense = sims[i].astype(np.float64)
        # Best first, ties to the lower row (as tarndb breaks them).
        t_top = np.lexsort((np.arange(text.size), -text))[:depth]
        d_top = np.lexsort((np.arange(dense.size), -dense))[:depth]
        runs["bm25"][qid] = ids[t_top].tolist()
        runs["dense"][qid] = ids[d_top].tolist()
        cand = np.union1d(t_top, d_top)
        for method in FUSION_METHODS:
            keys, _ = hybrid_fuse((cand, dense[cand]), (cand, text[cand]), 0.5, 0.5, method,
                                  k=depth)
            runs[method][qid] = ids[keys].tolist()
    return runs


def subsets(data: BeirSet, halves: bool) -> list[tuple[str, dict[str, dict[str, int]]]]:
    out = [(data.name, data.qrels)]
    if halves:
        def parity(i: int, qid: str) -> int:
            return int(qid) % 2 if qid.isdigit() else i % 2

        for p, tag in ((1, "odd"), (0, "even")):
            out.append((f"{data.name}/{tag}", {q: data.qrels[q] for i, q in
                                               enumerate(data.query_ids) if parity(i, q) == p}))
    return out


def label(method: str) -> str:
    return method if method in ("bm25", "dense") else f"hybrid {method}"


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("dirs", nargs="+", metavar="DIR[:SPLIT]", help="BEIR-format folders")
    ap.add_argument("--halves", action="store_true",
                    help="also score odd and even query ids as two sets")
    ap.add_argument("--depth", type=int, default=100,
                    help="rows per leg and rows ranked (recall@100 needs >= 100)")
    args = ap.parse_args()
    methods = ["bm25", "dense", *FUSION_METHODS]
    table: dict[tuple[str, str], float] = {}
    set_names: list[str] = []
    for spec in args.dirs:
        t0 = time.perf_counter()
        data = load_beir(spec)
        doc_emb = _scifact.embed(data.doc_texts)
        q_emb = _scifact.embed(data.query_texts)
        with tempfile.TemporaryDirectory() as root:
            ours = tarndb_runs(data, doc_emb, q_emb, root, args.depth)
        ref = reference_runs(data, doc_emb, q_emb, args.depth)
        for name, qrels in subsets(data, args.halves):
            set_names.append(name)
            print(f"\n{name}: {len(qrels)} queries, {len(data.doc_ids)} documents "
                  f"({time.perf_counter() - t0:.0f} s)")
            print(f"  {'':<24}{'nDCG@10':>9}{'':>10}{'recall@100':>12}")
            print(f"  {'':<24}{'tarndb':>9}{'reference':>10}{'tarndb':>12}{'reference':>10}"
                  "   (reference: bm25s, numpy, and their legs fused)")
            for m in methods:
                n_ours, r_ours = metrics(ours[m], qrels)
                n_ref, r_ref = metrics(ref[m], qrels)
                table[(name, m)] = n_ours
                mark = " *default" if m == DEFAULT_FUSION else ""
                print(f"  {label(m):<24}{n_ours:>9.4f}{n_ref:>10.4f}{r_ours:>12.4f}"
                      f"{r_ref:>10.4f}{mark}")
    print("\nnDCG@10 (tarndb, through SQL) minus that of the better single leg (* default)")
    width = max(len(n) for n in set_names) + 2
    print(f"  {'set':<{width}}{'better leg':>11}"
          + "".join(f"{m + ('*' if m == DEFAULT_FUSION else ''):>15}" for m in FUSION_METHODS))
    diffs: dict[str, list[float]] = {m: [] for m in FUSION_METHODS}
    best: list[float] = []
    for n in set_names:
        best.append(max(table[(n, "bm25")], table[(n, "dense")]))
        for m in FUSION_METHODS:
            diffs[m].append(table[(n, m)] - best[-1])
        print(f"  {n:<{width}}{best[-1]:>11.4f}"
              + "".join(f"{diffs[m][-1]:>+15.4f}" for m in FUSION_METHODS))
    print(f"  {'worst':<{width}}{'':>11}" + "".join(f"{min(diffs[m]):>+15.4f}"
                                                     for m in FUSION_METHODS))
    print(f"  {'mean':<{width}}{math.fsum(best) / len(best):>11.4f}"
          + "".join(f"{math.fsum(diffs[m]) / len(best):>+15.4f}" for m in FUSION_METHODS))

if __name__ == "__main__":
    main()
