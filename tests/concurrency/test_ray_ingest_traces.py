"""``tarndb ingest traces --ray`` (``tarndb.ray.ingest_traces``): traces parsed by Ray tasks on
a local Ray cluster, the same rows as the one-process ingester gives, read back through a
real ``tarndb serve``; a re-run adds nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import ray.data  # noqa: F401  (the test extra installs ray[data]: a missing one fails)

import tarndb
import tarndb.ray as tray

from .conftest import Serve  # noqa: E402

_SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def test_ingest_traces_on_ray_cli(ray_cluster: str, served: Serve, tmp_path: Path) -> None:
    """``tarndb ingest traces --ray ADDRESS`` (a driver process of its own joining the
    cluster): SWE-agent trajectories and a JSONL file parsed by Ray tasks, the same rows as
    the one-process ingester, duplicate run ids once; a re-run adds nothing."""
    from tarndb.ingest import ingest_traces

    traj = _SHARED / "swe_agent_trajectories"
    if not (traj / "manifest.jsonl").is_file():
        pytest.skip("shared/data/swe_agent_trajectories is not present")
    src = tmp_path / "traces"
    shutil.copytree(traj, src)
    with open(src / "extra.jsonl", "w") as f:  # run-1 twice: the first one is kept
        for i in (0, 1, 2, 1):
            f.write(json.dumps({"agent": "a", "run_id": f"run-{i}", "task": f"t{i}",
                                "conversations": [{"role": "user", "content": f"c{i}"}]})
                    + "\n")
        f.write("\n" + json.dumps({"agent": "b", "messages": []}) + "\n")  # no run id
    cmd = [sys.executable, "-m", "tarndb", "ingest", "traces", str(src), "--data",
           str(served.lake), "--workspace", "ws", "--ray", ray_cluster, "--chunk-units", "8"]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    out = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True, env=env,
                                    timeout=120).stdout.strip().splitlines()[-1])
    n = 22 + 4
    assert (out["inserted"], out["skipped"]) == (n, 1)
    again = tray.ingest_traces(served.lake, src, workspace="ws", lines_per_task=2)
    assert (again.inserted, again.skipped) == (0, n + 1)
    local = tmp_path / "local"
    db = tarndb.open(str(local))
    try:
        ingest_traces(db, src, table="t", workspace="ws", progress=False)
        want = sorted(db.execute('SELECT run_id, agent, task, episode, trial_name, '
                                 'conversations, metadata FROM "ws"."t"').rows)
    finally:
        db.close()
    with served.connect() as c:
        got = sorted(c.execute("SELECT run_id, agent, task, episode, trial_name, "
                               "conversations, metadata FROM ws.agent_traces").fetchall())
    assert len(got) == n and got == [tuple(r) for r in want]
    assert next(r for r in got if r[0] == "run-1")[2] == "t1"
