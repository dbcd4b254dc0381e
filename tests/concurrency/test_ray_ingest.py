"""``tarndb.ray.ingest_images`` (``tarndb ingest images --ray``): images of a folder uploaded to
the file store and inserted by Ray tasks, one commit per chunk, resumable; read back through
a real ``tarndb serve`` over psycopg and HTTP."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import requests

pytest.importorskip("ray.data")

from PIL import Image  # noqa: E402

import tarndb.ray as tray  # noqa: E402

from .conftest import Serve  # noqa: E402


def _folder(root: Path, n: int) -> dict[str, bytes]:
    root.mkdir()
    out = {}
    with open(root / "metadata.jsonl", "w") as meta:
        for i in range(n):
            buf = io.BytesIO()
            Image.new("RGB", (8 + i, 4 + i), (i * 20 % 256, 0, 0)).save(buf, "PNG")
            (root / f"img{i:02d}.png").write_bytes(buf.getvalue())
            out[f"img{i:02d}.png"] = buf.getvalue()
            meta.write(json.dumps({"file_name": f"img{i:02d}.png",
                                   "captions": [f"a red square number {i}"]}) + "\n")
    return out


def test_ingest_images_on_ray(ray_cluster: str, served: Serve, tmp_path: Path) -> None:
    files = _folder(tmp_path / "imgs", 7)
    rep = tray.ingest_images(served.lake, tmp_path / "imgs", "pics", "ws", chunk_rows=3,
                             batch_size=2)
    assert (rep.inserted, rep.skipped, rep.failed) == (7, 0, 0)
    with served.connect() as c:
        rows = c.execute("SELECT path, width, height, captions, file_id::text FROM ws.pics "
                         "ORDER BY path").fetchall()
        assert c.execute("SELECT count(DISTINCT id) FROM ws.pics").fetchone() == (7,)
    assert [r[0] for r in rows] == sorted(files)
    assert [(r[1], r[2]) for r in rows] == [(8 + i, 4 + i) for i in range(7)]
    assert rows[3][3] == ["a red square number 3"]  # JSONB, decoded by psycopg
    h = {"Authorization": "Bearer tdb_conc_admin_0123456789"}
    got = requests.get(f"http://127.0.0.1:{served.http_port}/workspaces/ws/files/"
                       f"{rows[5][4]}/content", headers=h, timeout=60)
    assert got.status_code == 200 and got.content == files["img05.png"]
    # Run again after two more images arrived: only those are added.
    buf = io.BytesIO()
    Image.new("RGB", (3, 3)).save(buf, "PNG")
    (tmp_path / "imgs" / "late1.png").write_bytes(buf.getvalue())
    (tmp_path / "imgs" / "late2.png").write_bytes(buf.getvalue())
    again = tray.ingest_images(served.lake, tmp_path / "imgs", "pics", "ws", chunk_rows=3)
    assert (again.inserted, again.skipped) == (2, 7)
    with served.connect() as c:
        assert c.execute("SELECT count(*), count(DISTINCT path) FROM ws.pics").fetchone() == \
            (9, 9)
