"""Agent memory over SWE-agent's real trajectories: build, search modes, remember, replay."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import tarndb
from tarndb.ingest import ingest_traces

pytest.importorskip("sentence_transformers", reason="needs tarndb[embeddings]")

TRAJ = Path(__file__).resolve().parents[3] / "shared" / "data" / "swe_agent_trajectories"


@pytest.fixture(scope="module")
def mem(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    if not (TRAJ / "manifest.jsonl").is_file():
        pytest.skip("shared/data/swe_agent_trajectories is not present")
    from tarndb.memory import Memory

    db = tarndb.open(str(tmp_path_factory.mktemp("mem") / "lake"))
    ingest_traces(db, TRAJ, table="agent_traces", workspace="ws", progress=False)
    m = Memory(db, workspace="ws")
    m.n_embedded = m.build()  # type: ignore[attr-defined]
    yield m
    db.close()


def test_build_is_the_seed_recipe(mem: object) -> None:
    from tarndb.memory import Memory

    assert isinstance(mem, Memory)
    assert mem.n_embedded == 22  # type: ignore[attr-defined]
    db = mem.db
    info = db.catalog.table("ws", "agent_memory")
    assert {c.name for c in info.columns} >= {"task", "run_id", "conversations", "embedding"}
    kinds = {i.column: i.index_type for i in info.indexes}
    assert kinds["task"] == "bm25" and "embedding" in kinds
    n, dims = db.execute('SELECT count(*), min(array_length(embedding, 1)) '
                         'FROM "ws"."agent_memory"').rows[0]
    assert (n, dims) == (22, 384)
    assert mem.build() == 0  # idempotent: nothing left to embed


def test_search_modes(mem: object) -> None:
    from tarndb.memory import Memory

    assert isinstance(mem, Memory)
    q = "TimeDelta serialization loses precision in milliseconds"
    for mode in ("bm25", "vector", "hybrid"):
        hits = mem.search(q, mode=mode, k=3)
        assert len(hits) == 3
        assert all(h["episode"] == "marshmallow-code__marshmallow-1867" for h in hits), mode
        assert hits[0]["score"] >= hits[-1]["score"]
    # BM25 finds an identifier; vector search finds a paraphrase with no shared keyword.
    assert mem.search("PixelRepresentation pydicom", mode="bm25", k=1)[0]["episode"] == \
        "pydicom__pydicom-1458"
    top = mem.search("break a cipher to recover the hidden flag", mode="vector", k=4)
    assert all(h["trial_name"] == "crypto" for h in top[:2])


def test_filters(mem: object) -> None:
    from tarndb.memory import Memory

    assert isinstance(mem, Memory)
    hits = mem.search("find the flag", mode="hybrid", k=10,
                      filters={"trial_name": ["crypto", "pwn"]})
    assert hits and {h["trial_name"] for h in hits} <= {"crypto", "pwn"}
    assert len(hits) == 5  # 4 crypto + 1 pwn trajectories
    none = mem.search("find the flag", mode="vector", k=5, filters={"model": "no-such"})
    assert none == []
    with pytest.raises(tarndb.TarnError):
        mem.search("x", filters={"nope": 1})
    with pytest.raises(tarndb.TarnError):
        mem.search("x", mode="fuzzy")


def test_replay_is_exact(mem: object) -> None:
    from tarndb.memory import Memory

    assert isinstance(mem, Memory)
    for path in sorted(TRAJ.rglob("*.traj"))[:5]:
        rel = path.relative_to(TRAJ).as_posix()
        run_id = mem.db.execute(
            "SELECT run_id FROM \"ws\".\"agent_traces\" WHERE metadata->>'source_file' = $1",
            [rel]).rows[0][0]
        assert mem.replay(run_id) == json.loads(path.read_text())["history"]
    assert mem.replay("no-such-run") is None


def test_remember_then_find_and_tools(mem: object) -> None:
    from tarndb.memory import Memory

    assert isinstance(mem, Memory)
    conv = [{"role": "user", "content": "the websocket reconnect test is flaky on CI"},
            {"role": "assistant", "content": "Added exponential backoff to reconnect()."}]
    run_id = mem.remember("Fix the flaky websocket reconnect test", conv, agent="unit")
    assert mem.replay(run_id) == conv
    top = mem.search("websocket reconnect flaky", mode="hybrid", k=1)
    assert top[0]["run_id"] == run_id
    assert mem.search("socket connection keeps dropping in tests", mode="vector",
                      k=1)[0]["run_id"] == run_id

    search_memory, remember, replay_run = mem.tools()
    assert inspect.signature(search_memory).parameters["query"].annotation in (str, "str")
    assert search_memory.__doc__ and remember.__doc__ and replay_run.__doc__
    rid = remember("Upgrade pydantic to v2 in the API layer",
                   [{"role": "user", "content": "migrate models"}], "tool-agent")
    assert search_memory("pydantic v2 migration", "bm25", 1)[0]["run_id"] == rid
    assert replay_run(rid) == [{"role": "user", "content": "migrate models"}]
    counts = [mem.db.execute(f'SELECT count(*) FROM "ws"."{t}"').rows[0][0]
              for t in ("agent_traces", "agent_memory")]
    assert counts == [24, 24]
