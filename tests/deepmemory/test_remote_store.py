"""Seed 002's VectorStore over a real ``tarndb serve``, through its HTTP API only:
``VectorStore(path="hub://org/dataset", token=..., runtime=...)`` with ``TARNDB_API_URL``,
``http://.../workspaces/ws/tables/t`` and ``tarndb://host:port/ws/t`` paths; ``add()`` /
``delete()`` / ``search()`` / ``.dataset``; ``deep_memory.train()`` returning its job id at
once, ``status()`` with a phase from the first call, then ``search(deep_memory=True)``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator

import numpy as np
import pytest
import requests

import tarndb
from _ports import free_port
from tarndb.errors import InvalidParameterValue, NotFound

TOKEN = "tdb_remote_store_test_token_0123456789"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    lake = tmp_path_factory.mktemp("remote") / "lake"
    http_port, pg_port = free_port(), free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TARNDB_TOKEN": TOKEN,
           "TARNDB_PASSWORD": "pw", "TARNDB_DEMO": "false"}
    log = lake.parent / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tarndb", "serve", "--data", str(lake), "--http-port",
             str(http_port), "--pg-port", str(pg_port), "--log-level", "warning"],
            env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if requests.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


DOCS = {
    "d0": "A robot arm picks up small screws from a conveyor belt.",
    "d1": "The recipe needs two lemons, sugar and butter for the cake.",
    "d2": "Stock markets fell after the central bank raised interest rates.",
    "d3": "The goalkeeper saved a penalty in the last minute of the match.",
    "d4": "Photosynthesis turns sunlight, water and carbon dioxide into sugar.",
    "d5": "An industrial gripper grasps metal parts on the assembly line.",
}


def test_hub_path_over_the_server(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARNDB_API_URL", server)
    vs = tarndb.VectorStore(path="hub://default/docs002", token=TOKEN,
                            runtime={"tensor_db": True}, embedding_function="minilm")
    try:
        assert type(vs).__name__ == "RemoteVectorStore"
        assert (vs.workspace, vs.table) == ("public", "docs002")
        # made on first use with Deep Lake's default tensors
        assert set(vs.dataset.columns) == {"id", "text", "embedding", "metadata"}
        ids = vs.add(text=list(DOCS.values()), metadata=[{"k": k} for k in DOCS],
                     id=list(DOCS))
        assert ids == list(DOCS) and vs.dataset.count_rows() == 6
        r = vs.search(embedding_data="robotic manipulator grabbing parts", k=2)
        assert isinstance(r, dict) and set(r["id"]) == {"d0", "d5"}
        assert r["metadata"][0] in ({"k": "d0"}, {"k": "d5"}) and r["score"][0] > 0.3
        assert r["text"][0] == DOCS[r["id"][0]]
        # vectors given by the caller, and a callable embedding function run here
        vec = np.ones(384, np.float32)
        new = vs.add(text=["ones"], embedding=[vec])
        assert new is not None and len(new[0]) == 36
        assert vs.search(embedding=vec, k=1)["id"] == new
        many = vs.search(embedding_data=["lemon cake", "football"], k=1,
                         embedding_function=lambda t: tarndb.embeddings.embed(t))
        assert [m["id"] for m in many] == [["d1"], ["d3"]]
        assert vs.delete(ids=new) is True and vs.dataset.count_rows() == 6
        assert vs.delete(filter={"id": "d4"}) is True
        assert "d4" not in vs.search(embedding_data="photosynthesis in plants", k=6)["id"]
        with pytest.raises(InvalidParameterValue, match="different lengths"):
            vs.add(text=["a", "b"], embedding=[vec])
    finally:
        vs.close()
    # the same table by its HTTP URL and by tarndb://, from another store
    host = server.removeprefix("http://")
    for path in (f"{server}/workspaces/public/tables/docs002", f"tarndb://{host}/public/docs002"):
        with tarndb.VectorStore(path, token=TOKEN, embedding_function="minilm") as again:
            assert again.search(embedding_data="lemon cake", k=1)["id"] == ["d1"]
    with pytest.raises(NotFound):
        tarndb.VectorStore(f"{server}/workspaces/public/tables/never_made", token=TOKEN)
    with pytest.raises(tarndb.errors.TarnError) as e:
        tarndb.VectorStore(f"tarndb://{host}/public/docs002", token="tdb_wrong")
    assert e.value.sqlstate in ("28000", "28P01"), e.value


def test_deep_memory_train_returns_at_once(server: str, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    pytest.importorskip("torch", reason="training an adapter needs tarndb[embeddings]")
    # a table of its own, made over SQL
    requests.post(f"{server}/workspaces/public/tables/query", timeout=60,
                  headers={"Authorization": f"Bearer {TOKEN}"},
                  json={"query": "CREATE TABLE docs_dm (id TEXT PRIMARY KEY, text TEXT, "
                                 "embedding FLOAT4[], metadata JSONB)"}).raise_for_status()
    vs = tarndb.VectorStore(f"{server}/workspaces/public/tables/docs_dm", token=TOKEN,
                            embedding_function="minilm")
    try:
        words = ["robot", "cake", "bank", "football", "plants", "gripper", "ocean", "music"]
        ids = [f"doc-{i}" for i in range(48)]
        vs.add(text=[f"note {i} about {words[i % 8]} number {i}" for i in range(48)],
                id=ids)
        queries = [f"what about {words[i % 8]} {i}" for i in range(48)]
        relevance = [[(ids[i], 1.0)] for i in range(48)]
        t0 = time.monotonic()
        job_id = vs.deep_memory.train(queries=queries, relevance=relevance,
                                      config={"max_epochs": 5})
        took = time.monotonic() - t0
        assert re.fullmatch(r"[0-9a-f]{24}", job_id) and took < 20, took
        vs.deep_memory.status(job_id)
        box = capsys.readouterr().out
        assert job_id in box and re.search(r"\| status +\| (pending|training|completed)", box)
        if "| pending" in box:  # the seed's own pending box
            assert "| progress                   | None" in box, box
        else:
            assert "| progress                   | None" not in box, box
        job = vs.deep_memory.wait(job_id, timeout=240)
        assert job["status"] == "completed", job
        vs.deep_memory.list_jobs()
        assert job_id in capsys.readouterr().out
        r = vs.search(embedding_data="what about cake 9", k=3, deep_memory=True)
        assert "doc-9" in r["id"]
        rec = vs.deep_memory.evaluate(relevance=relevance[:8], queries=queries[:8],
                                      top_k=[1, 10])
        assert set(rec) >= {"with model", "without model"}
        # an embedding function of the caller's own: queries embedded here, sent as vectors
        calls: list[int] = []

        def mine(texts: list[str]) -> np.ndarray:
            calls.append(len(texts))
            return tarndb.embeddings.embed(texts)

        job2 = vs.deep_memory.train(queries=queries, relevance=relevance,
                                    embedding_function=mine, config={"max_epochs": 5})
        assert calls == [48] and job2 != job_id
        job = vs.deep_memory.wait(job2, timeout=240)
        assert job["status"] == "completed" and job["pseudo_queries"] in (0, None, "none"), job
        again = vs.deep_memory.evaluate(relevance=relevance[:8], queries=queries[:8],
                                        top_k=[1, 10], embedding_function=mine)
        assert calls == [48, 8]
        assert again["without model"] == rec["without model"]
    finally:
        vs.close()
