"""The seed's VectorStore / deep_memory API, the job lifecycle and the bad-input errors, on a
small synthetic table (see conftest.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _dm_support import FAST, Synthetic, make_table, stop_jobs

import tarndb
from tarndb.deepmemory import JOB_KIND, AdapterConfig, VectorStore
from tarndb.deepmemory import _jobs as jobs_mod
from tarndb.deepmemory import _store as store_mod
from tarndb.errors import (
    DataError,
    FeatureNotSupported,
    InvalidParameterValue,
    NotFound,
    UndefinedColumn,
    UndefinedTable,
)

pytest.importorskip("torch")


def _train(store: VectorStore, syn: Synthetic, n: int | None = None, **kw: Any) -> str:
    kw.setdefault("config", FAST)
    return store.deep_memory.train(queries=syn.train_queries[:n],
                                   relevance=syn.train_relevance[:n], **kw)


def _until(what: Callable[[], bool], timeout: float = 60, label: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, f"timed out waiting for {label}"
        time.sleep(0.02)


def _status(store: VectorStore, job_id: str) -> str:
    return str(store.deep_memory.job(job_id)["status"])


class Hold:
    """Stops a job right after its first progress report until ``release`` is set."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()


def _hold_first_progress(monkeypatch: pytest.MonkeyPatch) -> Hold:
    hold = Hold()
    real = store_mod.train_adapter

    def wrapper(*args: Any, progress: Any = None, **kw: Any) -> Any:
        def report(p: dict[str, Any]) -> None:
            progress(p)
            if not hold.reached.is_set():
                hold.reached.set()
                assert hold.release.wait(60)
        return real(*args, progress=report, **kw)

    monkeypatch.setattr(store_mod, "train_adapter", wrapper)
    monkeypatch.setattr(jobs_mod, "PROGRESS_EVERY_S", 0.0)  # write every progress report
    return hold


def _box(job_id: str, status: str, progress: list[str], results: str) -> str:
    sep = "-" * 62
    lines = [sep, f"|{job_id.center(60)}|", sep, f"| {'status':<27}| {status:<29} |", sep]
    for i, p in enumerate(progress):
        lines.append(f"| {('progress' if i == 0 else ''):<27}| {p:<29} |")
    lines += [sep, f"| {'results':<27}| {results:<29} |", sep]
    return "\n".join(lines) + "\n"


def test_seed_api_as_written(lake: str, db: tarndb.Database, synthetic: Synthetic,
                             monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    from tarndb import VectorStore  # the seed's "from deeplake import VectorStore"

    hold = _hold_first_progress(monkeypatch)
    token, embedding_function = "ignored", synthetic.embed
    # The seed names the dataset by one path: here <lake>/<workspace>/<table>.
    db_ = VectorStore(path=f"{lake}/ws/docs", token=token, runtime={"tensor_db": True},
                      embedding_function=embedding_function)
    try:
        # A first job holds the one training slot (blocked while embedding its queries), so
        # the seed's job is seen pending first.
        synthetic.gate.clear()
        blocker = db_.deep_memory.train(queries=synthetic.train_queries[:40],
                                        corpus=synthetic.train_relevance[:40])
        _until(lambda: _status(db_, blocker) == "training", label="blocker training")
        corpus, queries = synthetic.train_relevance, synthetic.train_queries
        job_id = db_.deep_memory.train(
            corpus=corpus,
            queries=queries,
            embedding_function=embedding_function,
        )
        assert isinstance(job_id, str) and re.fullmatch(r"[0-9a-f]{24}", job_id)
        assert db_.deep_memory.status(job_id) is None  # it prints, as Deep Lake does
        assert capsys.readouterr().out == _box(job_id, "pending", ["None"],
                                               "not available yet")

        assert db_.deep_memory.cancel(blocker) is True
        synthetic.gate.set()
        assert db_.deep_memory.wait(blocker, 60)["status"] == "cancelled"
        assert hold.reached.wait(60), db_.deep_memory.job(job_id)
        db_.deep_memory.status(job_id)
        out = capsys.readouterr().out
        m = re.search(r"\| progress +\| (eta: [\d.]+ seconds) +\|\n"
                      r"\| +\| (recall@10: [\d.]+% \([+-][\d.]+%\)) +\|", out)
        assert m, out
        assert out == _box(job_id, "training", [m.group(1), m.group(2)], "not available yet")
        hold.release.set()
        job = db_.deep_memory.wait(job_id, 120)
        assert job["status"] == "completed", job

        db_.deep_memory.status(job_id)
        out = capsys.readouterr().out
        assert re.search(r"\| results +\| recall@10: [\d.]+% \(\+[\d.]+%\) +\|", out), out
        db_.deep_memory.list_jobs()
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].split() == ["ID", "STATUS", "RESULTS", "PROGRESS"]
        rows = {ln.split()[0]: ln.split()[1] for ln in lines[1:] if ln and not ln[0].isspace()}
        assert rows == {blocker: "cancelled", job_id: "completed"}

        recalls = db_.deep_memory.evaluate(
            corpus=synthetic.test_relevance,
            queries=synthetic.test_queries,
            embedding_function=embedding_function,
        )
        ks = {f"recall@{k}" for k in (1, 3, 5, 10, 50, 100)}
        assert set(recalls["with model"]) == ks and set(recalls["without model"]) == ks
        # The seed's docs spell the keys with underscores; both spellings read the same.
        assert recalls["with_model"] is recalls["with model"] and "without_model" in recalls
        # The rotation puts plain search near chance; the trained adapter undoes it.
        assert recalls["without model"]["recall@10"] < 0.3
        assert recalls["with model"]["recall@10"] > recalls["without model"]["recall@10"] + 0.4
        json.dumps(recalls)  # plain JSON, as the HTTP API returns it

        results = db_.search(
            embedding_data=synthetic.test_queries[:3],
            embedding_function=embedding_function,
            k=4,
            deep_memory=True,
        )
        assert isinstance(results, list) and len(results) == 3
        for r in results:
            assert set(r) == {"id", "text", "metadata", "score"} and len(r["id"]) == 4
            assert r["score"] == sorted(r["score"], reverse=True)
            assert all(t.startswith("title ") for t in r["text"])
    finally:
        hold.release.set()
        stop_jobs(db_.db)
        db_.close()


def test_lifecycle_pending_training_completed(store: VectorStore, synthetic: Synthetic,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs_mod, "PROGRESS_EVERY_S", 0.0)  # write every phase
    seen: list[tuple[str, str]] = []
    put = store.db.catalog.put_object

    def spy(kind: str, key: str, spec: dict[str, Any]) -> None:
        if kind == JOB_KIND and (not seen or seen[-1] != (spec["status"], spec["phase"])):
            seen.append((spec["status"], spec["phase"]))
        put(kind, key, spec)

    monkeypatch.setattr(store.db.catalog, "put_object", spy)
    job_id = _train(store, synthetic)
    job = store.deep_memory.wait(job_id, 120)
    assert job["status"] == "completed", job
    statuses = [s for i, (s, _) in enumerate(seen) if i == 0 or seen[i - 1][0] != s]
    assert statuses == ["pending", "training", "completed"]
    phases = [p for _, p in seen]
    assert "embedding queries 0/400" in phases and "epoch 1/40" in phases, phases
    assert job["attempts"] == 1 and job["phase"] == "done"
    assert job["table_version"] == store.snapshot().version
    assert os.path.exists(job["model_uri"]) and job["model_uri"].startswith(store.db.lake.uri)
    # What a restart would resume from is kept (the inputs) or deleted once done (the
    # embedded queries: megabytes).
    folder = Path(store.db.lake.uri) / "_deepmemory" / "ws" / "docs"
    assert sorted(p.name for p in folder.iterdir()) == [f"{job_id}.inputs.json",
                                                         f"{job_id}.npz"]
    res = job["results"]
    assert res["recall@10"] > res["baseline_recall@10"] + 0.3
    # No title column: "auto" made one pseudo-query per document from its first sentence.
    assert job["pseudo_queries"] == "auto" and res["pseudo_queries"] == 120
    assert store.deep_memory.model().meta["pseudo_queries"] == 120
    assert store.deep_memory.cancel(job_id) is False  # finished jobs stay finished


def test_cancel_pending_and_training(store: VectorStore, synthetic: Synthetic) -> None:
    synthetic.gate.clear()  # the first job blocks while embedding: training, holding the slot
    first = _train(store, synthetic)
    _until(lambda: _status(store, first) == "training", label="first training")
    second = _train(store, synthetic)
    time.sleep(0.3)
    assert _status(store, second) == "pending"
    assert store.deep_memory.cancel(second) is True
    assert store.deep_memory.wait(second, 30)["status"] == "cancelled"
    assert store.deep_memory.job(second)["attempts"] == 0  # it never started
    assert store.deep_memory.cancel(first) is True
    synthetic.gate.set()
    job = store.deep_memory.wait(first, 30)
    assert job["status"] == "cancelled" and job["results"] is None
    with pytest.raises(NotFound):  # no model came of either
        store.search(embedding_data=synthetic.test_queries[0], deep_memory=True)
    with pytest.raises(NotFound):
        store.deep_memory.cancel("0" * 24)


def test_cancel_from_another_process_object(store: VectorStore, synthetic: Synthetic) -> None:
    # A cancel written by another process (the catalog flag) reaches the running job.
    synthetic.gate.clear()
    job_id = _train(store, synthetic)
    _until(lambda: _status(store, job_id) == "training")
    store.db.catalog.put_object(jobs_mod.CANCEL_KIND, job_id, {"at": time.time()})
    running = jobs_mod._running[job_id]
    _until(running.stop.is_set, timeout=10, label="the heartbeat to see the flag")
    synthetic.gate.set()
    assert store.deep_memory.wait(job_id, 30)["status"] == "cancelled"


_CHILD = textwrap.dedent("""
    import sys, threading, time
    import numpy as np, tarndb
    from tarndb.deepmemory import VectorStore, AdapterConfig
    from tarndb.deepmemory import _store
    lake, mode = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(1)
    vecs = {}
    def embed(texts):
        if mode == "block" and len(texts) > 1:
            threading.Event().wait()  # never returns: killed while embedding
        out = []
        for t in texts:
            if t not in vecs:
                vecs[t] = rng.standard_normal(16).astype(np.float32)
            out.append(vecs[t])
        return np.stack(out)
    if mode == "slow":  # every batch takes a while: killed while training
        real = _store.train_adapter
        def slow(*a, should_stop=None, **kw):
            return real(*a, should_stop=lambda: time.sleep(0.05) or should_stop(), **kw)
        _store.train_adapter = slow
    vs = VectorStore(tarndb.open(lake), table="ws.docs", embedding_function=embed)
    queries = [f"q{i}" for i in range(60)]
    relevance = [[(f"doc-{i}", 1.0)] for i in range(60)]
    job = vs.deep_memory.train(queries, relevance,
                               config=AdapterConfig(max_epochs=40, patience=40, ema=0.9))
    want = "epoch" if mode == "slow" else "embedding"
    while not str(vs.deep_memory.job(job)["phase"]).startswith(want):
        time.sleep(0.02)
    print(job, flush=True)
    time.sleep(600)
""")


def _killed_child(lake: str, mode: str) -> str:
    """Start a job in another process, then kill that process (a crash or restart)."""
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, lake, mode], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        job_id = proc.stdout.readline().strip()
        assert re.fullmatch(r"[0-9a-f]{24}", job_id), job_id
    finally:
        proc.kill()
        proc.wait(30)
    return job_id


def test_restart_job_that_cannot_resume_is_marked_failed(lake: str, db: tarndb.Database,
                                                         synthetic: Synthetic) -> None:
    job_id = _killed_child(lake, "block")
    store = VectorStore(db, table="ws.docs", embedding_function=synthetic.embed)
    job = store.deep_memory.job(job_id)  # looking at the jobs recovers them
    assert job["status"] == "failed", job
    assert "interrupted" in job["error"] and "Python callable" in job["error"]
    assert store.deep_memory.cancel(job_id) is False
    store.deep_memory.status(job_id)  # prints the failure without raising


def test_restart_resumes_a_job_from_its_prepared_inputs(
        lake: str, db: tarndb.Database, synthetic: Synthetic) -> None:
    job_id = _killed_child(lake, "slow")
    before = db.catalog.get_object(JOB_KIND, job_id)
    assert before is not None and before["status"] == "training" and before["attempts"] == 1
    store = VectorStore(db, table="ws.docs")  # no embedding function: the queries are stored
    job = store.deep_memory.job(job_id)
    assert job["status"] in ("pending", "training") and job["resumed_at"], job
    job = store.deep_memory.wait(job_id, 120)
    assert job["status"] == "completed", job
    assert job["attempts"] == 2 and job["interrupted_owner"] != job["owner"]
    assert store.deep_memory.model().meta["job_id"] == job_id


def test_bad_input_fails_before_any_job(store: VectorStore, synthetic: Synthetic) -> None:
    dm = store.deep_memory
    q, rel = synthetic.train_queries[:3], synthetic.train_relevance[:3]

    def fails(cls: type[Exception], match: str, fn: Callable[[], Any]) -> Any:
        with pytest.raises(cls, match=match) as info:
            fn()
        return info.value

    e = fails(InvalidParameterValue, "1 document id.* not found.*'no-such-doc'", lambda: dm.train(
        q, [[("doc-1", 1.0)], [("no-such-doc", 1.0)], [("doc-2", 1.0)]]))
    assert (e.sqlstate, e.http_status) == ("22023", 400)
    fails(InvalidParameterValue, "no queries", lambda: dm.train([], []))
    fails(InvalidParameterValue, "must match", lambda: dm.train(q, rel[:2]))
    fails(InvalidParameterValue, "3 queries but 4", lambda: dm.train(q, rel + rel[:1]))
    fails(InvalidParameterValue, "no relevant documents", lambda: dm.train(q, [rel[0], [], rel[2]]))
    fails(InvalidParameterValue, r"outside \[0, 1\]",
          lambda: dm.train(q, [rel[0], [("doc-1", 2.0)], rel[2]]))
    fails(InvalidParameterValue, "not a number", lambda: dm.train(q, [[("doc-1", "high")]] * 3))
    fails(InvalidParameterValue, "not a non-empty string", lambda: dm.train(["a", "", "c"], rel))
    fails(InvalidParameterValue, "every relevance score is 0",
          lambda: dm.train(q, [[("doc-1", 0.0)]] * 3))
    fails(InvalidParameterValue, "list of strings", lambda: dm.train("one query", rel[:1]))
    e = fails(DataError, "dimension mismatch: the embedding_function gives 8-d",
              lambda: dm.train(q, rel, embedding_function=lambda t: np.ones((len(t), 8))))
    assert (e.sqlstate, e.http_status) == ("22000", 400)
    fails(DataError, "returned shape", lambda: dm.train(
        q, rel, embedding_function=lambda t: np.ones((len(t) + 1, 16))))
    fails(InvalidParameterValue, "config.rank must be positive",
          lambda: dm.train(q, rel, config={"rank": 0}))
    fails(InvalidParameterValue, "unknown config setting", lambda: dm.train(
        q, rel, config={"epochs": 3}))
    fails(UndefinedColumn, 'pseudo_queries: column "subject"',
          lambda: dm.train(q, rel, pseudo_queries="subject"))
    e = fails(NotFound, "no trained deep memory model",
              lambda: dm.evaluate(relevance=rel, queries=q))
    assert (e.sqlstate, e.http_status) == ("42704", 404)
    fails(NotFound, "no trained deep memory model",
          lambda: store.search(embedding_data=q[0], deep_memory=True))
    fails(NotFound, "no deep memory job", lambda: dm.status("f" * 24))

    db = store.db
    db.execute('CREATE TABLE "ws"."plain" (id TEXT, text TEXT)')
    e = fails(UndefinedColumn, 'no embedding column "embedding"', lambda: VectorStore(
        db, table="ws.plain", embedding_function=synthetic.embed).deep_memory.train(q, rel))
    assert (e.sqlstate, e.http_status) == ("42703", 400)
    db.execute('CREATE TABLE "ws"."empty" (id TEXT, embedding FLOAT4[])')
    fails(DataError, "no embeddings", lambda: VectorStore(
        db, table="ws.empty", embedding_function=synthetic.embed).deep_memory.train(q, rel))
    db.execute('CREATE TABLE "ws"."multi" (id TEXT, embedding FLOAT4[][])')
    fails(DataError, "not a FLOAT4\\[\\] embedding column", lambda: VectorStore(
        db, table="ws.multi", embedding_function=synthetic.embed).deep_memory.train(q, rel))
    db.execute('CREATE TABLE "ws"."mixed" (id TEXT, embedding FLOAT4[])')
    db.execute('INSERT INTO "ws"."mixed" VALUES ($1, $2), ($3, $4)',
               ["a", [1.0, 0.0], "b", [1.0, 0.0, 0.0]])
    fails(DataError, "several dimensions", lambda: VectorStore(
        db, table="ws.mixed", embedding_function=synthetic.embed).deep_memory.train(
            ["x"], [[("a", 1.0)]]))
    fails(InvalidParameterValue, "no embedding_function",
          lambda: VectorStore(db, table="ws.docs").deep_memory.train(q, rel))
    e = fails(UndefinedTable, "does not exist", lambda: VectorStore(db, table="ws.nope"))
    assert e.sqlstate == "42P01"
    fails(UndefinedColumn, 'id column "doc_id"',
          lambda: VectorStore(db, table="ws.docs", id_column="doc_id"))
    assert dm.jobs() == []  # none of the above started a job
    assert db.catalog.list_objects(JOB_KIND) == {}


def test_search_with_and_without_the_model(store: VectorStore, synthetic: Synthetic) -> None:
    job = store.deep_memory.wait(_train(store, synthetic), 120)
    assert job["status"] == "completed", job
    hits = {True: 0, False: 0}
    for q, rel in zip(synthetic.test_queries[:40], synthetic.test_relevance[:40], strict=True):
        for dm in (True, False):
            r = store.search(embedding_data=q, k=4, deep_memory=dm)
            assert isinstance(r, dict) and len(r["id"]) == 4 and len(r["text"]) == 4
            assert r["score"] == sorted(r["score"], reverse=True)
            hits[dm] += r["id"][0] == rel[0][0]
    assert hits[True] > hits[False] + 15, hits
    q0 = synthetic.test_queries[0]
    vec = synthetic.vectors[q0]
    by_text = store.search(embedding_data=q0, k=5, deep_memory=True)
    by_vec = store.search(embedding=vec, k=5, deep_memory=True)
    assert isinstance(by_text, dict) and isinstance(by_vec, dict)
    assert by_text["id"] == by_vec["id"]
    # The engine's ranking agrees with an exact ranking by the adapter.
    snap = store.snapshot()
    assert by_vec["id"] == [snap.ids[i] for i in store.deep_memory.rank(vec, 5)[0]]
    exact = store.search(embedding=vec, k=5, deep_memory=True, exact=True)
    assert isinstance(exact, dict) and exact["id"] == by_vec["id"]
    # Filters (a dict of equalities or a SQL condition) and extra columns.
    even = store.search(embedding=vec, k=5, filter={"id": by_vec["id"][1]},
                        return_tensors=["metadata"])
    assert isinstance(even, dict) and even["id"] == [by_vec["id"][1]]
    assert set(even["metadata"][0]) == {"part"}
    odd = store.search(embedding=vec, k=50, filter="metadata->>'part' = 'odd'")
    assert isinstance(odd, dict) and len(odd["id"]) == 50
    assert all(int(i.split("-")[1]) % 2 == 1 for i in odd["id"])
    with pytest.raises(DataError):
        store.search(embedding=np.ones(8, np.float32), deep_memory=True)
    with pytest.raises(FeatureNotSupported):
        store.search(embedding=vec, distance_metric="l2")
    with pytest.raises(InvalidParameterValue):
        store.search(embedding=vec, k=0)
    with pytest.raises(UndefinedColumn):
        store.search(embedding=vec, return_tensors=["nope"])


def test_sql_deep_memory(store: VectorStore, synthetic: Synthetic) -> None:
    job = store.deep_memory.wait(_train(store, synthetic), 120)
    assert job["status"] == "completed"
    vec = synthetic.vectors[synthetic.test_queries[0]]
    lit = "ARRAY[" + ",".join(f"{x:.8f}" for x in vec) + "]::float4[]"
    expect = store.search(embedding=vec, k=5, deep_memory=True)
    assert isinstance(expect, dict)
    db = store.db
    s = db.session(workspace="ws")
    try:
        adapted = s.execute(f"SELECT deep_memory('docs', 'embedding', {lit}) AS v").rows[0][0]
        np.testing.assert_allclose(adapted, store.deep_memory.model().apply(vec), atol=1e-5)
        sql = ("SELECT id, embedding <#> deep_memory('ws.docs', 'embedding', $1) AS s "
               "FROM docs ORDER BY s DESC LIMIT 5")
        assert [r[0] for r in s.execute(sql, [vec.tolist()]).rows] == expect["id"]
        # With a vector index, the same statement is answered from the index.
        s.execute("CREATE INDEX docs_emb ON docs USING deeplake_index (embedding)")
        assert [r[0] for r in s.execute(sql, [vec.tolist()]).rows] == expect["id"]
        plan = "\n".join(str(r[0]) for r in s.execute("EXPLAIN " + sql, [vec.tolist()]).rows)
        assert "docs_emb" in plan, plan
        assert s.execute("SELECT deep_memory('docs', 'embedding', NULL)").rows == [(None,)]
    finally:
        s.close()
    with pytest.raises(UndefinedTable):
        db.execute(f"SELECT deep_memory('ws.nope', 'embedding', {lit})")
    with pytest.raises(NotFound, match="no trained deep memory model") as e:
        db.execute(f"SELECT deep_memory('ws.docs', 'text', {lit})")
    assert e.value.sqlstate == "42704"
    with pytest.raises(DataError, match="dimension"):
        db.execute("SELECT deep_memory('ws.docs', 'embedding', ARRAY[1, 2]::float4[])")
    # A table dropped and created again does not inherit the old table's model.
    db.execute('DROP TABLE "ws"."docs"')
    make_table(db, synthetic.docs)
    with pytest.raises(NotFound):
        db.execute(f"SELECT deep_memory('ws.docs', 'embedding', {lit})")


def test_hard_negatives_from_the_tables_index(store: VectorStore, synthetic: Synthetic,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    store.db.execute('CREATE INDEX docs_emb ON "ws"."docs" USING deeplake_index (embedding)')
    calls: list[int] = []
    real = store_mod._index_miner

    def spy(*a: Any) -> Any:
        miner = real(*a)
        assert miner is not None

        def counted(q: np.ndarray, k: int) -> np.ndarray:
            calls.append(q.shape[0])
            out: np.ndarray = miner(q, k)
            return out
        return counted

    monkeypatch.setattr(store_mod, "INDEX_MINING_MIN_ROWS", 0)
    monkeypatch.setattr(store_mod, "_index_miner", spy)
    job = store.deep_memory.wait(_train(store, synthetic, pseudo_queries=None), 120)
    assert job["status"] == "completed", job
    assert calls == [400]
    res = store.deep_memory.evaluate(synthetic.test_relevance, synthetic.test_queries)
    assert res["with model"]["recall@10"] > res["without model"]["recall@10"] + 0.4


def test_evaluate_seen_and_unseen(store: VectorStore, synthetic: Synthetic) -> None:
    half = 200
    job = store.deep_memory.wait(_train(store, synthetic, n=half), 120)
    assert job["status"] == "completed"
    train_rel = synthetic.train_relevance[:half]
    seen_docs = {d for rel in train_rel for d, _ in rel}
    res = store.deep_memory.evaluate(synthetic.test_relevance, synthetic.test_queries,
                                     train_relevance=train_rel, top_k=[1, 10])
    n_seen = sum(1 for rel in synthetic.test_relevance if rel[0][0] in seen_docs)
    assert res["queries"] == 100
    assert res["seen"]["queries"] == n_seen and res["unseen"]["queries"] == 100 - n_seen
    assert 0 < n_seen < 100
    assert set(res["seen"]["with model"]) == {"recall@1", "recall@10"}
    # Without train_relevance the split comes from the documents the model was trained on.
    again = store.deep_memory.evaluate(synthetic.test_relevance, synthetic.test_queries,
                                       top_k=[1, 10])
    assert again["seen"] == res["seen"] and again["unseen"] == res["unseen"]
    # Precomputed query vectors give the same figures.
    vecs = np.stack([synthetic.vectors[q] for q in synthetic.test_queries])
    same = store.deep_memory.evaluate(synthetic.test_relevance, synthetic.test_queries,
                                      embedding=vecs, top_k=[1, 10])
    assert same["with model"] == res["with model"]


def test_store_paths(lake: str, db: tarndb.Database, synthetic: Synthetic,
                     tmp_path: Path) -> None:
    for vs in (VectorStore(lake, table="ws.docs", embedding_function=synthetic.embed),
               VectorStore(lake, table="docs", workspace="ws"),
               VectorStore(f"{lake}/ws/docs")):
        try:
            r = vs.search(embedding=synthetic.docs[7], k=1)
            assert isinstance(r, dict) and r["id"] == ["doc-7"]
            assert r["score"][0] == pytest.approx(1.0, abs=1e-5)
        finally:
            vs.close()
    with pytest.raises(InvalidParameterValue, match="not a tarndb lake"):
        VectorStore(str(tmp_path / "nowhere" / "ws" / "docs"))
    with pytest.raises(InvalidParameterValue, match="needs table"):
        VectorStore(db)
    with VectorStore(db, table="ws.docs", text_column=None) as vs:
        r = vs.search(embedding=synthetic.docs[3], k=2, return_tensors=[])
        assert isinstance(r, dict) and set(r) == {"id", "score"}
    # The stores closed the databases they opened, not the one they were given.
    assert db.execute('SELECT count(*) FROM "ws"."docs"').rows == [(120,)]


def test_config_from_json() -> None:
    cfg = AdapterConfig.from_json({"rank": 8, "lr": 0.01, "max_epochs": 5})
    assert (cfg.rank, cfg.lr, cfg.max_epochs) == (8, 0.01, 5)
    assert AdapterConfig.from_json(cfg.to_json()) == cfg
    for bad in ({"rank": 1.5}, {"rank": True}, {"ema": 1.0}, {"val_fraction": -0.1},
                {"hard_negatives": 100}, {"lr": "fast"}):
        with pytest.raises(InvalidParameterValue):
            AdapterConfig.from_json(bad)


def test_jobs_of_a_closed_process_do_not_leak(db: tarndb.Database, synthetic: Synthetic) -> None:
    # stop_jobs (the fixtures' teardown) cancels what runs here; nothing runs afterwards.
    synthetic.gate.clear()
    store = VectorStore(db, table="ws.docs", embedding_function=synthetic.embed)
    job_id = _train(store, synthetic)
    _until(lambda: _status(store, job_id) == "training")
    synthetic.gate.set()
    stop_jobs(db)
    assert job_id not in jobs_mod.running_here()
    assert store.deep_memory.job(job_id)["status"] in ("cancelled", "completed")
