"""``pseudo_queries="auto"`` when the table has a ``title`` column that is empty (BEIR and MS
MARCO passage sets), and a job left with no training pairs (issue 21)."""

from __future__ import annotations

from typing import Any

import pytest
from _dm_support import FAST, N_DOCS, Synthetic, make_table

import tarndb
from tarndb.deepmemory import AdapterConfig, VectorStore
from tarndb.deepmemory import _store as store_mod

pytest.importorskip("torch")


def _titled(db: tarndb.Database, syn: Synthetic, titles: list[str | None]) -> VectorStore:
    make_table(db, syn.docs, name="titled")
    db.execute('ALTER TABLE "ws"."titled" ADD COLUMN title TEXT')
    for i, t in enumerate(titles):
        db.execute('UPDATE "ws"."titled" SET title = $1 WHERE id = $2', [t, f"doc-{i}"])
    return VectorStore(db, table="ws.titled", embedding_function=syn.embed)


def _pseudo(store: VectorStore, mode: str) -> dict[str, str]:
    snap = store.snapshot()
    info = store._info()
    rows, texts = store_mod._pseudo_texts(mode, store.db, info, snap, store.text_column,
                                          snap.version)
    return {snap.ids[r]: t for r, t in zip(rows, texts, strict=True)}


def test_auto_falls_back_to_the_first_sentence_where_titles_are_empty(
        db: tarndb.Database, synthetic: Synthetic) -> None:
    titles: list[str | None] = ["" if i % 3 == 0 else None if i % 3 == 1 else f"T{i}"
                                for i in range(N_DOCS)]
    store = _titled(db, synthetic, titles)
    got = _pseudo(store, "auto")
    assert got == {f"doc-{i}": (f"T{i}" if i % 3 == 2 else f"title {i}.")
                   for i in range(N_DOCS)}
    # an explicit column is taken as it is: empty titles make no pseudo-query
    assert _pseudo(store, "title") == {f"doc-{i}": f"T{i}" for i in range(N_DOCS) if i % 3 == 2}


def test_auto_job_with_an_all_empty_title_column_trains_on_first_sentences(
        db: tarndb.Database, synthetic: Synthetic) -> None:
    store = _titled(db, synthetic, [""] * N_DOCS)
    job_id = store.deep_memory.train(queries=synthetic.train_queries[:100],
                                     relevance=synthetic.train_relevance[:100], config=FAST)
    job = store.deep_memory.wait(job_id, 120)
    assert job["status"] == "completed", job
    assert job["results"]["pseudo_queries"] == N_DOCS


def test_a_job_with_no_training_pairs_fails_with_a_clear_message(
        db: tarndb.Database, synthetic: Synthetic) -> None:
    # No queries (synthetic queries only), and the table has no text to make them from.
    db.execute('CREATE TABLE "ws"."bare" (id TEXT PRIMARY KEY, embedding FLOAT4[])')
    for i, v in enumerate(synthetic.docs[:20]):
        db.execute('INSERT INTO "ws"."bare" VALUES ($1, $2)', [f"doc-{i}", v.tolist()])
    store = VectorStore(db, table="ws.bare", embedding_function=synthetic.embed)
    assert store.text_column is None
    job_id = store.deep_memory.train(pseudo_queries="auto", config=AdapterConfig(max_epochs=5))
    job = store.deep_memory.wait(job_id, 120)
    assert job["status"] == "failed" and job["phase"] == "failed"
    assert job["error"] == ("no training pairs: no queries were given and 0 pseudo-queries "
                            "were made")
    # With queries, the one training query left after the held-out split trains.
    cfg = AdapterConfig(max_epochs=5, val_fraction=0.5, seed=3)
    relevance: list[Any] = [[("doc-1", 0.0), ("doc-3", 1.0)], [("doc-2", 1.0)]]
    job_id = store.deep_memory.train(queries=synthetic.train_queries[:2], relevance=relevance,
                                     config=cfg)
    job = store.deep_memory.wait(job_id, 120)
    assert job["status"] == "completed", job
    assert job["results"]["train_pairs"] == 1 and job["results"]["val_queries"] == 1
