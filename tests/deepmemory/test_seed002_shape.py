"""Seed 002's VectorStore shape on a local lake: ``VectorStore(path="hub://org/dataset",
token=..., runtime=...)``, ``add()`` / ``delete()`` / ``search()``, and a ``train()`` that
returns its job id at once while the job loads the model, with a phase and an ETA in
``status()`` before the first epoch."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _dm_support import FAST, MODEL, Synthetic, SyntheticEmbedder, stop_jobs

import tarndb
from tarndb.api.orgs import ensure_org
from tarndb.deepmemory import JOB_KIND, VectorStore
from tarndb.deepmemory import _jobs as jobs_mod
from tarndb.deepmemory._store import format_status
from tarndb.embeddings import register
from tarndb.errors import FeatureNotSupported, InvalidParameterValue, UndefinedTable

pytest.importorskip("torch")


@pytest.fixture
def hub_lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    lake = str(tmp_path / "hub-lake")
    monkeypatch.setenv("TARNDB_DATA", lake)
    return lake


def _fill(vs: VectorStore, syn: Synthetic) -> list[Any]:
    n = len(syn.docs)
    return vs.add(text=[f"title {i}. body of document {i}" for i in range(n)],
                  embedding=syn.docs, metadata=[{"i": i} for i in range(n)],
                  id=[f"doc-{i}" for i in range(n)]) or []


def test_hub_path_add_search_delete(hub_lake: str, synthetic: Synthetic) -> None:
    vs = VectorStore(path="hub://my-org/docs002", token="ignored",
                     runtime={"tensor_db": True}, embedding_function=synthetic.embed)
    try:
        assert vs.path == "hub://my-org/docs002"  # not mangled to hub:/
        assert (vs.db.lake.uri.rstrip("/").endswith("hub-lake"), vs.workspace, vs.table) == \
            (True, "public", "docs002")
        ids = _fill(vs, synthetic)
        assert ids[:2] == ["doc-0", "doc-1"] and len(ids) == len(synthetic.docs)
        assert vs.dataset.count_rows() == len(synthetic.docs)
        r = vs.search(embedding=synthetic.docs[7], k=2)
        assert isinstance(r, dict) and r["id"][0] == "doc-7"
        assert r["text"][0] == "title 7. body of document 7" and r["metadata"][0] == {"i": 7}
        assert r["score"][0] == pytest.approx(1.0, abs=1e-5)
        # texts embedded by the store's function; ids made when not given
        new = vs.add(text=["title 3."], metadata=[{"copy": 3}])
        assert new is not None and len(new) == 1 and len(new[0]) == 36
        r = vs.search(embedding_data="title 3.", k=2)
        assert sorted(r["id"]) == sorted(["doc-3", new[0]])
        assert vs.delete(ids=["doc-7", new[0]]) is True
        r = vs.search(embedding=synthetic.docs[7], k=1)
        assert r["id"] != ["doc-7"]
        assert vs.delete(filter={"id": "doc-3"}) is True
        assert vs.dataset.count_rows() == len(synthetic.docs) - 2
        with pytest.raises(InvalidParameterValue, match="different lengths"):
            vs.add(text=["a", "b"], embedding=synthetic.docs[:3])
        with pytest.raises(InvalidParameterValue, match="needs ids, filter or delete_all"):
            vs.delete()
        # the same dataset, named with its workspace, from a second store
        with VectorStore("hub://my-org/public/docs002", read_only=True) as again:
            assert again.search(embedding=synthetic.docs[9], k=1)["id"] == ["doc-9"]
        assert vs.delete(delete_all=True) is True
        assert vs.dataset.count_rows() == 0
    finally:
        vs.close()
    with pytest.raises(UndefinedTable):
        VectorStore("hub://my-org/never_made", read_only=True)
    with pytest.raises(InvalidParameterValue, match="is not hub://<org>/<dataset>"):
        VectorStore("hub://only-org")
    for url in ("http://127.0.0.1:8080/ws/docs", "tarndb://127.0.0.1:5433/ws/docs"):
        with pytest.raises(FeatureNotSupported, match="a store over a server's URL is not "
                                                      "supported yet"):
            VectorStore(url)


def test_hub_org_must_be_the_lakes_when_it_has_one(hub_lake: str) -> None:
    db = tarndb.open(hub_lake)
    org = ensure_org(db.catalog, "default")
    db.close()
    for ok in ("default", org.id):
        VectorStore(f"hub://{ok}/docs").close()
    with pytest.raises(InvalidParameterValue) as e:
        VectorStore("hub://someone-else/docs")
    assert e.value.message == (f"'hub://someone-else/docs': org 'someone-else' is not this "
                               f"lake's; the lake {tarndb.open(hub_lake).lake.uri} belongs to "
                               f"default (id {org.id})")


def test_train_returns_at_once_and_status_has_phase_and_eta(
        hub_lake: str, synthetic: Synthetic, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    slow_name = "slow-loading-synthetic"
    loaded = []

    def factory() -> SyntheticEmbedder:
        time.sleep(2.0)  # a real model takes seconds to load
        loaded.append(time.monotonic())
        return SyntheticEmbedder(synthetic)

    register(slow_name, factory)
    monkeypatch.setattr(jobs_mod, "PROGRESS_EVERY_S", 0.0)
    vs = VectorStore(path="hub://org/docs", token="t", runtime={"tensor_db": True},
                     embedding_function=synthetic.embed)
    seen: list[dict[str, Any]] = []
    put = vs.db.catalog.put_object

    def spy(kind: str, key: str, spec: dict[str, Any]) -> None:
        if kind == JOB_KIND:
            seen.append(dict(spec))
        put(kind, key, spec)

    monkeypatch.setattr(vs.db.catalog, "put_object", spy)
    try:
        _fill(vs, synthetic)
        started = time.monotonic()
        job_id = vs.deep_memory.train(queries=synthetic.train_queries,
                                      relevance=synthetic.train_relevance,
                                      embedding_function=slow_name, config=FAST)
        assert time.monotonic() - started < 1.5 and not loaded  # the job loads the model
        vs.deep_memory.status(job_id)
        first = capsys.readouterr().out
        assert "| status                     | training" in first or \
            "| status                     | pending" in first, first
        job = vs.deep_memory.wait(job_id, 120)
        assert job["status"] == "completed", job
        loading = [j for j in seen if j["phase"] == f"loading the embedding model {slow_name}"]
        assert loading and loading[0]["status"] == "training"
        assert format_status(loading[0]).splitlines()[5:8] == [
            "| progress                   | eta: estimating               |",
            "|                            | loading the embedding model   |",
            f"|                            | {slow_name:<29} |"]
        embedding = [j for j in seen if (j.get("progress") or {}).get("stage") == "embedding"]
        assert embedding, [j["phase"] for j in seen]
        assert embedding[0]["phase"] == "embedding queries 16/400"
        assert embedding[0]["progress"]["eta_s"] >= 0
        box = format_status(embedding[0]).splitlines()
        assert box[5].startswith("| progress                   | eta: ")
        assert box[6] == "|                            | embedding queries 16/400      |"
    finally:
        stop_jobs(vs.db)
        vs.close()
        register(MODEL, SyntheticEmbedder(synthetic))


def test_a_wrong_model_dimension_fails_the_job_when_loaded_there(
        hub_lake: str, synthetic: Synthetic) -> None:
    class Wide(SyntheticEmbedder):
        def _encode_texts(self, texts: list[str]) -> list[np.ndarray]:
            return [np.ones(8, np.float32) for _ in texts]

    register("wide-synthetic", lambda: Wide(synthetic))
    with VectorStore("hub://org/docs") as vs:
        _fill(vs, synthetic)
        job_id = vs.deep_memory.train(queries=synthetic.train_queries[:20],
                                      relevance=synthetic.train_relevance[:20],
                                      embedding_function="wide-synthetic", config=FAST)
        job = vs.deep_memory.wait(job_id, 60)
        assert job["status"] == "failed"
        assert job["error"] == ('embedding dimension mismatch: the embedding_function gives '
                                '8-d vectors, column "embedding" holds 16-d ones')
