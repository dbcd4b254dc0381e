"""Images from a folder into a table, the bytes in the file store.

Metadata, when present, comes from COCO-style annotations: a COCO JSON
(``images``/``annotations``/``categories``; boxes, category ids and captions are gathered per
image) or a JSON Lines file with one record per image naming its ``file``/``file_name``
(Hugging Face imagefolder's ``metadata.jsonl``, or ``captions.jsonl`` of COCO-captions
exports). Without annotations, width and height are read from the image header.
"""

from __future__ import annotations

import json
import mimetypes
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from ._common import (
    FileStoreUploader,
    IngestReport,
    Progress,
    Uploader,
    batched,
    bounded_map,
    ensure_table,
    existing_keys,
    insert_batch,
    log,
    retry,
)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif",
                              ".tiff"})
_ANNOTATION_NAMES = ("metadata.jsonl", "captions.jsonl", "annotations.json",
                     "instances.json", "captions.json")

BASE_COLUMNS: list[tuple[str, str]] = [
    ("id", "BIGSERIAL PRIMARY KEY"),
    ("image_id", "BIGINT"),
    ("path", "TEXT"),
    ("filename", "TEXT"),
    ("width", "INT"),
    ("height", "INT"),
    ("bboxes", "JSONB"),
    ("category_ids", "JSONB"),
    ("captions", "JSONB"),
    ("file_id", "UUID"),
    ("metadata", "JSONB"),
]
_ARROW = {"BIGINT": pa.int64(), "TEXT": pa.string(), "INT": pa.int32(), "JSONB": pa.string(),
          "UUID": pa.string(), "FLOAT4[]": pa.list_(pa.float32()),
          "FLOAT4[][]": pa.list_(pa.list_(pa.float32()))}


@dataclass
class ImageRecord:
    path: Path
    key: str  # path relative to the folder, POSIX style: the resume key
    meta: dict[str, Any]


def find_annotations(folder: Path) -> Path | None:
    for name in _ANNOTATION_NAMES:
        for cand in (folder / name, folder / "annotations" / name):
            if cand.is_file():
                return cand
    ann = folder / "annotations"
    if ann.is_dir():
        for cand in sorted(ann.glob("*.json")):
            return cand
    return None


def load_annotations(path: Path, folder: Path) -> dict[str, dict[str, Any]]:
    """Per-image metadata keyed by path relative to ``folder`` and by bare file name."""
    out: dict[str, dict[str, Any]] = {}

    def put(file: str, rec: dict[str, Any]) -> None:
        rel = Path(file)
        out[rel.as_posix()] = rec
        out.setdefault(rel.name, rec)

    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                rec = json.loads(line)
                file = rec.get("file") or rec.get("file_name") or rec.get("path")
                if file:
                    put(str(file), rec)
        return out
    doc = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or "images" not in doc:
        raise ValueError(f"{path} is not COCO-style JSON (no 'images' list)")
    by_id: dict[int, dict[str, Any]] = {}
    for img in doc["images"]:
        rec = {"image_id": img.get("id"), "width": img.get("width"),
               "height": img.get("height"), "bboxes": [], "category_ids": [], "captions": [],
               "coco": {k: v for k, v in img.items()
                        if k not in ("id", "width", "height", "file_name")}}
        by_id[int(img["id"])] = rec
        put(str(img.get("file_name", img["id"])), rec)
    for ann in doc.get("annotations", []):
        rec = by_id.get(int(ann.get("image_id", -1)))
        if rec is None:
            continue
        if "bbox" in ann:
            rec["bboxes"].append([float(x) for x in ann["bbox"]])  # COCO: [x, y, w, h]
            rec["category_ids"].append(ann.get("category_id"))
        if "caption" in ann:
            rec["captions"].append(str(ann["caption"]).strip())
    return out


def iter_images(folder: Path) -> Iterator[Path]:
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file():
            yield p


def _caption_text(rec: dict[str, Any]) -> str:
    caps = rec.get("captions") or []
    if caps:
        return " ".join(str(c) for c in caps)
    return str(rec.get("text") or rec.get("caption") or "")


def _build_row(rec: ImageRecord, ann: dict[str, Any], uploader: Uploader) -> dict[str, Any]:
    from PIL import Image

    data = rec.path.read_bytes()
    width: int | None = None
    height: int | None = None
    unreadable = None
    try:
        with Image.open(rec.path) as im:
            width, height = im.size  # header only; the pixels are never decoded here
    except (OSError, ValueError) as e:
        # Still an image file the user asked for (a TIFF codec Pillow lacks, say): keep
        # the bytes, leave the size unknown.
        unreadable = str(e)
    ctype = mimetypes.guess_type(rec.path.name)[0] or "application/octet-stream"
    file_id = retry(lambda: uploader(data, rec.path.name, ctype), what=f"upload {rec.key}")
    image_id = ann.get("image_id")
    if image_id is None and rec.path.stem.isdigit():
        image_id = int(rec.path.stem)
    extra = {k: v for k, v in ann.items()
             if k not in ("image_id", "width", "height", "bboxes", "category_ids", "captions",
                          "file", "file_name")}
    if width is None:
        width, height = ann.get("width"), ann.get("height")
        extra["unreadable"] = unreadable
    elif ann and (ann.get("width"), ann.get("height")) not in ((None, None), (width, height)):
        extra["annotated_size"] = [ann.get("width"), ann.get("height")]
    return {
        "image_id": image_id, "path": rec.key, "filename": rec.path.name,
        "width": width, "height": height,
        "bboxes": json.dumps(ann.get("bboxes") or []),
        "category_ids": json.dumps(ann.get("category_ids") or []),
        "captions": json.dumps(ann.get("captions") or []),
        "file_id": file_id, "metadata": json.dumps(extra),
        "_text": _caption_text(ann),
        "_path": str(rec.path),
    }


def ingest_images(db: Any, folder: str | Path, table: str = "images", workspace: str = "public",
                  annotations: str | Path | None = None, embed_model: str | None = None,
                  embedding_column: str = "embedding", batch_size: int = 32,
                  max_workers: int = 4, uploader: Uploader | None = None,
                  limit: int | None = None, progress: bool = True) -> IngestReport:
    """Ingest every image under ``folder`` (recursively) into ``workspace.table``.

    ``embed_model``: embed each image with that model when it embeds images (ColQwen/ColPali),
    else embed the image's captions (text models such as the default MiniLM). Re-running skips
    images whose relative path is already in the table.
    """
    t0 = time.perf_counter()
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"no such folder: {root}")
    report = IngestReport(table=f"{workspace}.{table}")
    ann_path = Path(annotations) if annotations else find_annotations(root)
    ann = load_annotations(ann_path, root) if ann_path else {}
    model = None
    columns = list(BASE_COLUMNS)
    if embed_model:
        from ..embeddings import get_model

        model = get_model(embed_model, db=db, workspace=workspace)
        columns.append((embedding_column, "FLOAT4[][]" if model.multi else "FLOAT4[]"))
    schema = pa.schema([(n, _ARROW[t]) for n, t in columns if n != "id"])
    session = db.session(workspace=workspace)
    try:
        ensure_table(session, workspace, table, columns)
        done = existing_keys(session, workspace, table, "path")
        records = []
        for p in iter_images(root):
            key = p.relative_to(root).as_posix()
            if key in done:
                report.skipped += 1
                continue
            records.append(ImageRecord(p, key, ann.get(key) or ann.get(p.name) or {}))
            if limit is not None and len(records) >= limit:
                break
        up = uploader or FileStoreUploader(db, workspace)

        def build(rec: ImageRecord) -> dict[str, Any] | None:
            try:
                return _build_row(rec, rec.meta, up)
            except Exception as e:  # noqa: BLE001 - one bad file must not stop the run
                log.warning("skipping %s: %s", rec.path, e)
                report.errors.append(f"{rec.key}: {e}")
                report.failed += 1
                return None

        with Progress(len(records), f"images -> {table}", progress, "img") as bar:
            rows_iter = (r for r in bounded_map(build, records, max_workers) if r is not None)
            for batch in batched(rows_iter, batch_size):
                if model is not None:
                    _embed_rows(model, batch, embedding_column)
                for r in batch:
                    r.pop("_text", None)
                    r.pop("_path", None)
                report.inserted += insert_batch(session, workspace, table, batch, schema)
                bar.update(len(batch))
    finally:
        session.close()
    report.seconds = time.perf_counter() - t0
    return report


def _embed_rows(model: Any, rows: list[dict[str, Any]], column: str) -> None:
    if model.supports_images:
        vecs = model.encode_images([r["_path"] for r in rows])
    else:
        vecs = model.encode_texts([r["_text"] for r in rows])
    for r, v in zip(rows, vecs, strict=True):
        r[column] = v.tolist()
