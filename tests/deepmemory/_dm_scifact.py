"""SciFact through the Deep Memory API: shared by tests/deepmemory and benchmarks/deepmemory.py.

The corpus (title + " " + text), the train and test queries and the pseudo-query texts are
embedded with the packaged MiniLM once and cached outside the repository by
``tests/search/_scifact.py``; the embedding function handed to the VectorStore looks texts up
in that cache and embeds anything else with the real model.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "search"))

import _scifact  # noqa: E402

import tarndb  # noqa: E402
from tarndb.deepmemory import (  # noqa: E402
    AdapterConfig,
    VectorStore,
    _synthetic,  # noqa: E402
)
from tarndb.deepmemory._store import SENTENCES_PER_DOC, first_sentence  # noqa: E402

KS = [1, 3, 5, 10, 50, 100]
Relevance = list[list[tuple[str, float]]]


@dataclass
class Run:
    store: VectorStore
    job_id: str
    #: from train() until the job completed (checks, embedding lookups, training)
    job_seconds: float
    job: dict[str, Any]
    report: dict[str, Any]
    test_queries: list[str]
    test_relevance: Relevance


class CachedEmbedder:
    """texts -> MiniLM vectors from the on-disk cache (misses go to the model)."""

    def __init__(self) -> None:
        self.table: dict[str, np.ndarray] = {}
        self.misses = 0

    def add(self, texts: list[str]) -> None:
        for t, v in zip(texts, _scifact.embed(texts), strict=True):
            self.table[t] = v

    def __call__(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in texts if t not in self.table]
        if missing:
            self.misses += len(missing)
            for t, v in zip(missing, _scifact.embed(missing, use_cache=False), strict=True):
                self.table[t] = v
        return np.stack([self.table[t] for t in texts])


def titles() -> list[str]:
    with open(_scifact.DATA_DIR / "corpus.jsonl", encoding="utf-8") as f:
        return [json.loads(line)["title"] for line in f]


def build(lake: str, pseudo_queries: str | None = "auto"
          ) -> tuple[tarndb.Database, CachedEmbedder, Any, Any]:
    """The SciFact corpus as ``"sci"."docs"`` (doc_id, title, body, emb) on a new lake."""
    train, test = _scifact.load("train"), _scifact.load("test")
    docs = _scifact.embed(train.doc_texts)
    title_list = titles()
    emb = CachedEmbedder()
    emb.add(train.query_texts)
    emb.add(test.query_texts)
    if pseudo_queries in ("auto", "title"):
        emb.add(title_list)
    elif pseudo_queries == "first_sentence":
        emb.add([first_sentence(t) for t in train.doc_texts])
    # The texts the job makes (same functions, same seed), embedded once and cached.
    if pseudo_queries in ("sentences", "all"):
        emb.add(_synthetic.sentence_queries(train.doc_texts, SENTENCES_PER_DOC)[1])
    if pseudo_queries in ("keywords", "all"):
        emb.add(_synthetic.keyword_queries(train.doc_texts)[1])
    if pseudo_queries == "all":
        emb.add(title_list)
    db = tarndb.open(lake)
    db.execute('CREATE TABLE "sci"."docs" (id BIGSERIAL PRIMARY KEY, doc_id TEXT, '
               'title TEXT, body TEXT, emb FLOAT4[])')
    step = 500
    for s in range(0, len(train.doc_ids), step):
        n = min(step, len(train.doc_ids) - s)
        values = ", ".join(f"(${4 * i + 1}, ${4 * i + 2}, ${4 * i + 3}, ${4 * i + 4})"
                           for i in range(n))
        params: list[Any] = []
        for j in range(s, s + n):
            params += [train.doc_ids[j], title_list[j], train.doc_texts[j], docs[j].tolist()]
        db.execute(f'INSERT INTO "sci"."docs" (doc_id, title, body, emb) VALUES {values}',
                   params)
    return db, emb, train, test


def relevance(data: Any) -> tuple[list[str], Relevance]:
    return data.query_texts, [[(d, float(s)) for d, s in data.qrels[q].items()]
                              for q in data.query_ids]


def run(lake: str, *, pseudo_queries: str | None = "auto",
        config: AdapterConfig | None = None, embedding_function: Any = None,
        synthetic_only: bool = False) -> Run:
    """Train on the train queries through the API and evaluate on the test queries (seen /
    unseen split by the training relevance); ``synthetic_only``: train on no queries at all,
    only the synthetic ones ``pseudo_queries`` makes (every test query is then unseen)."""
    db, emb, train, test = build(lake, pseudo_queries)
    store = VectorStore(db, table="sci.docs", embedding_column="emb", id_column="doc_id",
                        text_column="body", embedding_function=embedding_function or emb)
    q_train, rel_train = relevance(train)
    t0 = time.perf_counter()
    if synthetic_only:
        job_id = store.deep_memory.train(pseudo_queries=pseudo_queries, config=config)
    else:
        job_id = store.deep_memory.train(queries=q_train, relevance=rel_train,
                                         pseudo_queries=pseudo_queries, config=config)
    job = store.deep_memory.wait(job_id, timeout=1200)
    seconds = time.perf_counter() - t0
    if job["status"] != "completed":
        raise RuntimeError(f"training {job['status']}: {job.get('error')}")
    q_test, rel_test = relevance(test)
    report = store.deep_memory.evaluate(relevance=rel_test, queries=q_test, top_k=KS,
                                        embedding_function=emb,
                                        train_relevance=[] if synthetic_only else rel_train)
    return Run(store, job_id, seconds, job, report, q_test, rel_test)


def table(report: dict[str, Any]) -> str:
    """The recall@k table: all / seen / unseen, without and with the model, and the change."""
    lines = [f"{'queries':<8}{'n':>5}  {'model':<14}" + "".join(f"{'R@' + str(k):>8}"
                                                                for k in KS)]
    for name, part in (("all", report), ("seen", report.get("seen")),
                       ("unseen", report.get("unseen"))):
        if not part or "with model" not in part:
            continue
        w, wo = part["with model"], part["without model"]
        lines.append(f"{name:<8}{part['queries']:>5}  {'without model':<14}"
                     + "".join(f"{wo[f'recall@{k}']:>8.3f}" for k in KS))
        lines.append(f"{'':<8}{'':>5}  {'with model':<14}"
                     + "".join(f"{w[f'recall@{k}']:>8.3f}" for k in KS))
        lines.append(f"{'':<8}{'':>5}  {'change':<14}"
                     + "".join(f"{w[f'recall@{k}'] - wo[f'recall@{k}']:>+8.3f}" for k in KS))
    return "\n".join(lines)
