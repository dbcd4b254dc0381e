"""Agent traces: SWE-agent's own trajectory files and JSONL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import tarndb
from tarndb.ingest import ingest_traces, iter_trace_records


def _trajs(traj_dir: Path) -> list[Path]:
    return sorted(traj_dir.rglob("*.traj"))


def test_swe_agent_trajectories(db: tarndb.Database, traj_dir: Path) -> None:
    files = _trajs(traj_dir)
    first = ingest_traces(db, traj_dir, table="traces", workspace="ws", limit=5,
                          batch_size=2, progress=False)
    assert first.inserted == 5
    rest = ingest_traces(db, traj_dir, table="traces", workspace="ws", progress=False)
    assert (rest.inserted, rest.skipped) == (len(files) - 5, 5)
    again = ingest_traces(db, traj_dir, table="traces", workspace="ws", progress=False)
    assert (again.inserted, again.skipped) == (0, len(files))

    rows = db.execute('SELECT run_id, episode, task, conversations, metadata, model '
                      'FROM "ws"."traces"').rows
    assert len(rows) == len(files) == 22 and len({r[0] for r in rows}) == 22
    by_file = {r[4]["source_file"]: r for r in rows}
    manifest = {json.loads(x)["file"]: json.loads(x)
                for x in (traj_dir / "manifest.jsonl").read_text().splitlines()}
    for f in files:
        rel = f.relative_to(traj_dir).as_posix()
        row = by_file[rel]
        doc = json.loads(f.read_text())
        assert row[3] == doc["history"]  # the conversation, exactly
        assert len(row[3]) == manifest[rel]["n_history"]
        assert row[5] == manifest[rel]["model"]
        assert row[4]["exit_status"] == manifest[rel]["exit_status"]
    pydicom = next(r for r in rows if r[1] == "pydicom__pydicom-1458")
    assert pydicom[2].startswith("Pixel Representation attribute should be optional")
    assert "INSTRUCTIONS" not in pydicom[2] and "DEMONSTRATION" not in pydicom[2]
    # SQL over the JSONB conversation works like any JSON column.
    n = db.execute("SELECT count(*) FROM \"ws\".\"traces\" WHERE "
                   "conversations->0->>'role' = 'system'").rows[0][0]
    assert n == sum(1 for f in files
                    if json.loads(f.read_text())["history"][0]["role"] == "system")


def test_jsonl_source(tmp_path: Path, db: tarndb.Database, traj_dir: Path) -> None:
    """The seed's JSONL shape: one trace per line, conversations as a list or JSON text."""
    recs = list(iter_trace_records(traj_dir))[:6]
    path = tmp_path / "traces.jsonl"
    with path.open("w") as f:
        for i, r in enumerate(recs):
            conv = json.loads(r["conversations"])
            f.write(json.dumps({"agent": "terminus-2", "model": "gpt-4o",
                                "model_provider": "openai", "date": f"2025-01-0{i + 1}",
                                "task": r["task"], "episode": f"episode-{i}",
                                "run_id": f"run-{i}", "trial_name": "t1",
                                "conversations": conv if i % 2 else json.dumps(conv)}) + "\n")
    rep = ingest_traces(db, path, table="jl", workspace="ws", progress=False)
    assert rep.inserted == 6
    got = dict(db.execute('SELECT run_id, conversations FROM "ws"."jl"').rows)
    for i, r in enumerate(recs):
        assert got[f"run-{i}"] == json.loads(r["conversations"])
    row = db.execute("SELECT agent, model_provider, date FROM \"ws\".\"jl\" "
                     "WHERE run_id = 'run-2'").rows[0]
    assert row == ("terminus-2", "openai", "2025-01-03")


def test_cli_traces_rerun_adds_nothing(tmp_path: Path, traj_dir: Path) -> None:
    lake = tmp_path / "lake"
    cmd = [sys.executable, "-m", "tarndb.ingest.cli", "ingest", "traces", str(traj_dir),
           "--data", str(lake), "--workspace", "ws", "--no-progress"]
    out = [json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True,
                                     timeout=120).stdout.strip().splitlines()[-1])
           for _ in range(2)]
    assert out[0]["inserted"] == 22 and out[1] == {**out[1], "inserted": 0, "skipped": 22}
    db = tarndb.open(str(lake))
    assert db.execute('SELECT count(*) FROM "ws"."agent_traces"').rows[0][0] == 22
    db.close()


def test_iterable_source(db: tarndb.Database, traj_dir: Path) -> None:
    """Records from any iterable (a datasets.Dataset iterates the same way)."""
    def records():  # type: ignore[no-untyped-def]
        for i, f in enumerate(_trajs(traj_dir)[:4]):
            doc = json.loads(f.read_text())
            yield {"agent": "swe-agent", "run_id": f"it-{i}", "messages": doc["history"]}
    rep = ingest_traces(db, records(), table="it", workspace="ws", progress=False)
    assert rep.inserted == 4
    rows = dict(db.execute('SELECT run_id, conversations FROM "ws"."it"').rows)
    assert rows["it-0"] == json.loads(_trajs(traj_dir)[0].read_text())["history"]
    task = db.execute("SELECT task FROM \"ws\".\"it\" WHERE run_id = 'it-0'").rows[0][0]
    assert task and task == next(m["content"] for m in rows["it-0"] if m["role"] == "user")
    again = ingest_traces(db, records(), table="it", workspace="ws", progress=False)
    assert (again.inserted, again.skipped) == (0, 4)
