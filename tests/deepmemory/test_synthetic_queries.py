"""Synthetic queries over the whole corpus, the held-out split of documents, and jobs with
no labelled queries at all (issue 21).

The table here has real text: every document is three sentences of words drawn from a small
vocabulary. The embedding is a bag of words (each word a fixed random vector), and queries
pass through a fixed rotation that documents do not, the way a query encoder's space differs
from a passage encoder's. So without a model recall is near chance, and a model trained on
the documents' own sentences (made by the job, embedded as queries) can only lift the real
queries below, which the job never sees, by learning the rotation back.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

import tarndb
from tarndb.deepmemory import AdapterConfig, VectorStore, format_status
from tarndb.deepmemory import _synthetic as synthetic_mod
from tarndb.deepmemory._model import split_by_document
from tarndb.errors import InvalidParameterValue

pytest.importorskip("torch")

DIM = 32
N = 100
VOCAB = [f"w{i:03d}" for i in range(400)]


class BagOfWords:
    """A deterministic text embedding: the normalised sum of per-word random vectors;
    ``rotate`` turns the result by a fixed orthogonal matrix (the query side)."""

    def __init__(self, rotate: bool) -> None:
        rng = np.random.default_rng(7)
        self.words = {w: rng.standard_normal(DIM) for w in VOCAB}
        self.rot = np.linalg.qr(rng.standard_normal((DIM, DIM)))[0] if rotate else np.eye(DIM)

    def __call__(self, texts: list[str]) -> np.ndarray:
        out = []
        for t in texts:
            ws = [w for w in re.findall(r"w\d{3}", t) if w in self.words]
            v = self.rot @ (sum((self.words[w] for w in ws), np.zeros(DIM)) + 1e-6)
            out.append(v / np.linalg.norm(v))
        return np.asarray(out, dtype=np.float32)


def _corpus() -> tuple[list[str], list[str], list[list[tuple[str, float]]]]:
    """Documents (three sentences each, a topic of 12 words per document) and one held-out
    query per document: 5 of its topic words in a new order (a sentence it does not hold)."""
    rng = np.random.default_rng(3)
    docs, queries, relevance = [], [], []
    for i in range(N):
        topic = rng.choice(len(VOCAB), 12, replace=False)
        sents = [" ".join(VOCAB[j] for j in rng.choice(topic, 6, replace=False)).capitalize()
                 + "." for _ in range(3)]
        docs.append(" ".join(sents))
        queries.append(" ".join(VOCAB[j] for j in rng.choice(topic, 5, replace=False)))
        relevance.append([(f"doc-{i}", 1.0)])
    return docs, queries, relevance


@pytest.fixture
def text_store(tmp_path: Any) -> Any:
    db = tarndb.open(str(tmp_path / "lake"))
    docs, queries, relevance = _corpus()
    emb = BagOfWords(rotate=False)(docs)
    db.execute('CREATE TABLE "ws"."notes" (id TEXT PRIMARY KEY, text TEXT, embedding FLOAT4[])')
    values = ", ".join(f"(${3 * i + 1}, ${3 * i + 2}, ${3 * i + 3})" for i in range(N))
    db.execute(f'INSERT INTO "ws"."notes" (id, text, embedding) VALUES {values}',
               [x for i in range(N) for x in (f"doc-{i}", docs[i], emb[i].tolist())])
    store = VectorStore(db, table="ws.notes", embedding_function=BagOfWords(rotate=True))
    yield store, docs, queries, relevance
    db.close()


def test_sentence_and_keyword_queries() -> None:
    text = ("Aspirin lowers the risk of stroke in adults. It was tested in 3 trials. "
            "e.g. short. Aspirin also lowers fever (in most patients).")
    assert synthetic_mod.sentences(text) == [
        "Aspirin lowers the risk of stroke in adults.", "It was tested in 3 trials. e.g. short.",
        "Aspirin also lowers fever (in most patients)."]
    rows, got = synthetic_mod.sentence_queries([text, "", "Too short."], per_doc=2, seed=0)
    assert rows == [0, 0] and len(set(got)) == 2
    assert set(got) <= set(synthetic_mod.sentences(text))
    # the same seed makes the same queries (a resumed job embeds the same texts)
    assert synthetic_mod.sentence_queries([text], 2, seed=0)[1] == got
    docs = ["aspirin stroke aspirin risk the of", "fever aspirin children the of",
            "stroke imaging the of"]
    rows, kw = synthetic_mod.keyword_queries(docs, terms=2)
    # "aspirin" is in two documents, "stroke" in two, the rest in one; stop words never
    assert rows == [0, 1, 2]
    assert kw == ["aspirin risk", "fever children", "stroke imaging"]


def test_split_by_document_holds_out_documents() -> None:
    rng = np.random.default_rng(0)
    # 60 queries over 30 documents: queries 2k and 2k+1 share document k
    positives = [{i // 2} for i in range(60)]
    split = split_by_document(positives, [], 0.1, rng)
    assert split.kind == "real"
    val, train = set(split.val_queries), set(split.train_queries)
    assert val and train and not val & train and val | train == set(range(60))
    # no training query is about a held-out document, and every query about one validates
    assert not {d for i in train for d in positives[i]} & split.val_docs
    assert all(i in val for i in range(60) if positives[i] & split.val_docs)
    assert split.val_relevant == [sorted(positives[i]) for i in split.val_queries]
    # no real queries: held-out documents' synthetic queries, labelled synthetic
    split = split_by_document([], [0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 0.2, rng)
    assert split.kind == "synthetic" and len(split.val_docs) == 2
    assert {split.val_relevant[j][0] for j in range(len(split.val_queries))} == split.val_docs
    # one real query and nothing else: nothing to hold out
    assert split_by_document([{1}], [], 0.1, rng).kind == "none"


def test_a_job_with_no_queries_trains_on_synthetic_queries_and_lifts_real_ones(
        text_store: Any) -> None:
    store, docs, queries, relevance = text_store
    cfg = AdapterConfig(max_epochs=40, patience=6, lr=1e-2, ema=0.9, seed=1)
    job_id = store.deep_memory.train(pseudo_queries="sentences", config=cfg)
    job = store.deep_memory.wait(job_id, 120)
    assert job["status"] == "completed", job
    res = job["results"]
    assert res["pseudo_queries"] == 2 * N and job["queries"] == 0
    # the job's figure is on held-out documents' synthetic queries, and says so
    assert res["validation"] == "synthetic" and res["val_queries"] > 0
    box = format_status(job)
    assert "synthetic queries of" in box and "held-out documents" in box, box
    # real queries it never saw, about documents whose text it only made queries from
    rep = store.deep_memory.evaluate(relevance=relevance, queries=queries, top_k=[1, 10])
    w, wo = rep["with model"], rep["without model"]
    assert wo["recall@10"] < 0.4
    assert w["recall@10"] > wo["recall@10"] + 0.3, rep


def test_keywords_and_all_modes(text_store: Any) -> None:
    store, docs, queries, relevance = text_store
    cfg = AdapterConfig(max_epochs=3, seed=1)
    for mode, per_doc in (("keywords", 1), ("all", 4)):
        job = store.deep_memory.wait(store.deep_memory.train(pseudo_queries=mode, config=cfg),
                                     120)
        assert job["status"] == "completed", job
        # "all": the first sentence ("auto" without a title column), 2 sentences, keywords
        assert job["results"]["pseudo_queries"] == per_doc * N


def test_real_queries_validate_on_documents_training_never_saw(text_store: Any) -> None:
    store, docs, queries, relevance = text_store
    cfg = AdapterConfig(max_epochs=5, seed=2, val_fraction=0.2)
    job = store.deep_memory.wait(store.deep_memory.train(
        queries=queries, relevance=relevance, pseudo_queries=None, config=cfg), 120)
    assert job["status"] == "completed", job
    res = job["results"]
    assert res["validation"] == "real" and res["val_queries"] == res["val_documents"] == 20
    assert res["train_pairs"] == N - 20
    # the seed's status box, without the synthetic label
    assert "synthetic" not in format_status(job)


def test_no_queries_and_no_pseudo_queries_is_refused(text_store: Any) -> None:
    store = text_store[0]
    with pytest.raises(InvalidParameterValue, match="no queries to train on"):
        store.deep_memory.train(pseudo_queries=None)
    assert store.deep_memory.jobs() == []
