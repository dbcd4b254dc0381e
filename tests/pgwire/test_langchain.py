"""langchain-postgres ``PGVector`` against a real server: its tables (foreign key, JSONB, a GIN
index, ``vector(n)``), add_texts with ids (an upsert), similarity search with metadata
filters, delete, and re-adding an id. Embeddings come from a deterministic hashing class."""

from __future__ import annotations

import hashlib
import uuid

import numpy as np
import pytest

from .conftest import Server

pytest.importorskip("psycopg")
lc_postgres = pytest.importorskip("langchain_postgres")
lc_embeddings = pytest.importorskip("langchain_core.embeddings")

DIM = 32


class HashEmbeddings(lc_embeddings.Embeddings):  # type: ignore[misc,name-defined]
    """Bag of hashed words, L2-normalised: equal texts embed equally, no model needed."""

    def _one(self, text: str) -> list[float]:
        v = np.zeros(DIM, np.float32)
        for word in text.lower().split():
            v[int(hashlib.sha256(word.encode()).hexdigest(), 16) % DIM] += 1.0
        n = float(np.linalg.norm(v))
        return (v / n if n else v).tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._one(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._one(text)


def _texts(docs: list[object]) -> list[str]:
    return [d.page_content for d in docs]  # type: ignore[attr-defined]


def test_pgvector_store_add_search_filter_delete(pg_server: Server) -> None:
    store = lc_postgres.PGVector(
        embeddings=HashEmbeddings(), collection_name=f"docs_{uuid.uuid4().hex[:6]}",
        connection=pg_server.url("postgresql+psycopg"), use_jsonb=True, embedding_length=DIM)
    texts = ["red apple fruit", "green apple pie", "blue car engine", "red sports car"]
    metas = [{"kind": "fruit", "n": 1}, {"kind": "fruit", "n": 2},
             {"kind": "car", "n": 3}, {"kind": "car", "n": 4}]
    assert store.add_texts(texts, metadatas=metas, ids=["a", "b", "c", "d"]) == [
        "a", "b", "c", "d"]
    emb = HashEmbeddings()
    q = np.asarray(emb.embed_query("red apple"))
    x = np.asarray(emb.embed_documents(texts))
    order = np.argsort(1 - x @ q, kind="stable")
    assert _texts(store.similarity_search("red apple", k=2)) == [texts[i] for i in order[:2]]
    assert _texts(store.similarity_search("red", k=2, filter={"kind": "car"})) == [
        "red sports car", "blue car engine"]
    got = store.similarity_search("red", k=4, filter={"n": {"$gte": 2}})
    assert sorted(d.metadata["n"] for d in got) == [2, 3, 4]
    got = store.similarity_search("apple", k=4, filter={"kind": {"$in": ["fruit"]}})
    assert sorted(d.id for d in got) == ["a", "b"]
    assert len(store.similarity_search("red", k=4, filter={"kind": {"$exists": True}})) == 4
    assert store.similarity_search("red", k=4, filter={"nope": {"$exists": True}}) == []
    with_scores = store.similarity_search_with_score("red sports car", k=1)
    assert with_scores[0][0].id == "d" and abs(with_scores[0][1]) < 1e-6
    store.delete(["d"])
    assert [d.id for d in store.similarity_search("red", k=4, filter={"kind": "car"})] == ["c"]
    # The same id again replaces the row (ON CONFLICT (id) DO UPDATE).
    store.add_texts(["red car again"], metadatas=[{"kind": "car", "n": 5}], ids=["c"])
    got = store.similarity_search("red car", k=4, filter={"kind": "car"})
    assert [(d.id, d.page_content, d.metadata["n"]) for d in got] == [
        ("c", "red car again", 5)]
    store.delete_collection()


def test_pgvector_store_without_a_dimension_and_mmr(pg_server: Server) -> None:
    """LangChain's default column is ``vector`` with no dimension; MMR reads vectors back."""
    store = lc_postgres.PGVector(
        embeddings=HashEmbeddings(), collection_name=f"mmr_{uuid.uuid4().hex[:6]}",
        connection=pg_server.url("postgresql+psycopg"), use_jsonb=True)
    texts = ["red apple fruit", "red apple fruit", "green apple pie", "blue car engine"]
    store.add_texts(texts, ids=["a", "a2", "b", "c"])
    assert [d.id for d in store.similarity_search("red apple fruit", k=1)] in (["a"], ["a2"])
    # MMR: the duplicate of the best hit is passed over for a different document.
    got = store.max_marginal_relevance_search("red apple fruit", k=2, fetch_k=4,
                                              lambda_mult=0.25)
    assert len(got) == 2 and got[0].page_content == "red apple fruit"
    assert got[1].page_content != "red apple fruit"
    store.delete_collection()
