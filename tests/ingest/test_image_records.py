"""Images from a Hugging Face ``datasets`` source (built and read locally: no hub access in
tests), in the seed's COCO-detection record shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tarndb
from tarndb.files import FileStore
from tarndb.ingest import coco_bbox, ingest_image_records, load_image_dataset

datasets = pytest.importorskip("datasets")

def _coco_records(coco: Path, n: int) -> list[dict]:
    from PIL import Image

    out = []
    for i, path in enumerate(sorted((coco / "images").rglob("*.jpg"))[:n]):
        im = Image.open(path)
        w, h = im.size
        out.append({"image": im, "image_id": int(path.stem), "width": w, "height": h,
                    "objects": {"bbox": [[1.0, 2.0, 11.0, 22.0]], "category": [i % 3]}})
    return out


def test_datasets_source_like_the_seed(tmp_path: Path, coco_dir: Path) -> None:
    recs = _coco_records(coco_dir, 6)
    features = datasets.Features({
        "image": datasets.Image(), "image_id": datasets.Value("int64"),
        "width": datasets.Value("int32"), "height": datasets.Value("int32"),
        "objects": {"bbox": datasets.Sequence(datasets.Sequence(datasets.Value("float32"))),
                    "category": datasets.Sequence(datasets.Value("int64"))}})
    ds = datasets.Dataset.from_list(recs, features=features)
    ds.save_to_disk(str(tmp_path / "saved"))
    db = tarndb.open(str(tmp_path / "lake"))
    loaded = load_image_dataset(str(tmp_path / "saved"))
    report = ingest_image_records(db, loaded, table="coco", workspace="ws", source="coco",
                                  progress=False)
    assert report.inserted == 6 and report.failed == 0
    again = ingest_image_records(db, loaded, table="coco", workspace="ws", source="coco",
                                 progress=False)
    assert again.inserted == 0 and again.skipped == 6
    rows = db.execute('SELECT image_id, width, height, bboxes, category_ids, file_id '
                      'FROM "ws"."coco" ORDER BY image_id').rows
    assert [r[0] for r in rows] == sorted(r["image_id"] for r in recs)
    assert rows[0][3] == [[1.0, 2.0, 10.0, 20.0]]  # corner box -> COCO [x, y, w, h]
    store = FileStore.from_db(db)
    first = min(recs, key=lambda r: r["image_id"])
    meta = store.get("ws", rows[0][5])
    assert meta.content_type == "image/jpeg"
    import io

    from PIL import Image

    assert Image.open(io.BytesIO(store.read_bytes("ws", meta.id))).size == first["image"].size


def test_local_imagefolder(tmp_path: Path, coco_dir: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    lines = (coco_dir / "captions.jsonl").read_text().splitlines()
    caps = [json.loads(line) for line in lines][:3]
    meta = []
    for c in caps:
        src = next((coco_dir / "images").rglob(Path(c["file"]).name if "file" in c
                                           else f"{c['image_id']:012d}.jpg"))
        (folder / src.name).write_bytes(src.read_bytes())
        meta.append({"file_name": src.name, "caption": "a photo"})
    (folder / "metadata.jsonl").write_text("\n".join(json.dumps(m) for m in meta))
    db = tarndb.open(str(tmp_path / "lake"))
    report = ingest_image_records(db, load_image_dataset(str(folder)), table="pics",
                                  source="local", progress=False)
    assert report.inserted == 3
    assert db.execute("SELECT captions FROM pics LIMIT 1").scalar() == ["a photo"]


def test_coco_bbox() -> None:
    assert coco_bbox([10, 20, 30, 60]) == [10.0, 20.0, 20.0, 40.0]
