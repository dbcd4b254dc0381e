"""Helpers of the Deep Memory tests: a small synthetic table where queries are a fixed
rotation of their document's vector.

MiniLM would be slow here, so the "embedding function" is a lookup: texts name their vectors.
Without a model, recall is near chance; an adapter that learns the rotation back finds the
documents, so every lift asserted in these tests comes from training.

The table has Deep Lake's default columns (``id``, ``text``, ``embedding``, ``metadata``), so
``VectorStore`` works on it with its defaults, as the seed writes it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import tarndb
from tarndb.deepmemory import AdapterConfig
from tarndb.deepmemory import _jobs as jobs_mod
from tarndb.embeddings._base import Embedder

DIM = 16
N_DOCS = 120
MODEL = "synthetic-deepmemory-test"


@dataclass
class Synthetic:
    docs: np.ndarray
    vectors: dict[str, np.ndarray]
    train_queries: list[str]
    train_relevance: list[list[tuple[str, float]]]
    test_queries: list[str]
    test_relevance: list[list[tuple[str, float]]]
    #: cleared to make the embedding function block (to hold a job in a known state)
    gate: threading.Event = field(default_factory=threading.Event)

    def embed(self, texts: list[str]) -> np.ndarray:
        # One text is the dimension check train() makes before the job starts; only the
        # job's own (batched) calls wait at the gate.
        if len(texts) > 1 and not self.gate.wait(60):
            raise TimeoutError("test gate never opened")
        return np.stack([self.vectors[t] for t in texts])


class SyntheticEmbedder(Embedder):
    """The lookup as a named model, for jobs started over HTTP."""

    name = MODEL

    def __init__(self, syn: Synthetic) -> None:
        super().__init__()
        self.syn = syn

    @property
    def dim(self) -> int:
        return DIM

    def _encode_texts(self, texts: list[str]) -> list[np.ndarray]:
        return list(self.syn.embed(texts))


def make_synthetic(seed: int = 0) -> Synthetic:
    rng = np.random.default_rng(seed)
    docs = rng.standard_normal((N_DOCS, DIM)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    rot, _ = np.linalg.qr(rng.standard_normal((DIM, DIM)))
    vectors: dict[str, np.ndarray] = {}

    def queries(n: int, prefix: str) -> tuple[list[str], list[list[tuple[str, float]]]]:
        qs, rels = [], []
        for i in range(n):
            d = int(rng.integers(N_DOCS))
            v = rot @ docs[d] + 0.15 * rng.standard_normal(DIM)
            name = f"{prefix} query {i} about doc {d}"
            vectors[name] = (v / np.linalg.norm(v)).astype(np.float32)
            qs.append(name)
            rels.append([(f"doc-{d}", 1.0)])
        return qs, rels

    trq, trr = queries(400, "train")
    teq, ter = queries(100, "test")
    for i in range(N_DOCS):
        vectors[f"title {i}."] = docs[i]  # the first sentence of its text
    s = Synthetic(docs, vectors, trq, trr, teq, ter)
    s.gate.set()
    return s


FAST = AdapterConfig(max_epochs=40, patience=6, lr=1e-2, ema=0.9)


def make_table(db: tarndb.Database, docs: np.ndarray, name: str = "docs") -> None:
    db.execute(f'CREATE TABLE "ws"."{name}" (id TEXT PRIMARY KEY, text TEXT, '
               'embedding FLOAT4[], metadata JSONB)')
    values = ", ".join(f"(${4 * i + 1}, ${4 * i + 2}, ${4 * i + 3}, ${4 * i + 4})"
                       for i in range(len(docs)))
    params: list[Any] = []
    for i, v in enumerate(docs):
        params += [f"doc-{i}", f"title {i}. body of document {i}", v.tolist(),
                   {"part": "even" if i % 2 == 0 else "odd"}]
    db.execute(f'INSERT INTO "ws"."{name}" (id, text, embedding, metadata) VALUES {values}',
               params)


def stop_jobs(db: tarndb.Database) -> None:
    """Cancel and wait for every job this process runs (never leave a thread behind)."""
    for job_id in jobs_mod.running_here():
        try:
            jobs_mod.request_cancel(db, job_id)
        except tarndb.TarnError:
            pass
        jobs_mod.wait(job_id, 60)
