"""Images from records (a Hugging Face ``datasets`` source, or any iterable of dicts) into a
table, the bytes in the file store.

The seed streams ``detection-datasets/coco``: each record has ``image`` (a PIL image, or
``{"bytes": ..., "path": ...}`` when not decoded), ``image_id``, ``width``, ``height`` and
``objects`` with ``bbox`` in corner form ``[xmin, ymin, xmax, ymax]`` and ``category``. Rows get
COCO-style ``[x, y, width, height]`` boxes, as the seed's ``convert_bbox_to_coco`` makes.
Streaming works when the hub is reachable; offline, a local ``imagefolder`` or Arrow dataset
is loaded the same way (:func:`load_image_dataset`).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterable, Iterator
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
from ._images import _ARROW, BASE_COLUMNS


def load_image_dataset(source: str, split: str = "train", streaming: bool = True,
                       **kwargs: Any) -> Any:
    """A ``datasets`` source: a local folder (``imagefolder``, with ``metadata.jsonl`` if
    present), a saved dataset directory, or a hub name (streamed when ``streaming``)."""
    try:
        import datasets
    except ImportError as e:
        raise ImportError("reading Hugging Face datasets needs the datasets package: "
                          "pip install datasets") from e
    from pathlib import Path

    path = Path(source)
    if (path / "dataset_info.json").is_file() or (path / "state.json").is_file():
        ds = datasets.load_from_disk(str(path))
        return ds[split] if isinstance(ds, datasets.DatasetDict) else ds
    if path.is_dir():
        return datasets.load_dataset("imagefolder", data_dir=str(path), split=split, **kwargs)
    return datasets.load_dataset(source, split=split, streaming=streaming, **kwargs)


def coco_bbox(xyxy: list[float]) -> list[float]:
    """Corner box ``[xmin, ymin, xmax, ymax]`` -> COCO ``[x, y, width, height]``."""
    xmin, ymin, xmax, ymax = (float(v) for v in xyxy)
    return [xmin, ymin, xmax - xmin, ymax - ymin]


def _image_bytes(image: Any) -> tuple[bytes, str, int, int]:
    """PNG-or-original bytes, content type and size of a record's image."""
    from PIL import Image

    if isinstance(image, dict):  # datasets' undecoded Image feature
        data = image.get("bytes")
        if data is None and image.get("path"):
            with open(image["path"], "rb") as f:
                data = f.read()
        if data is None:
            raise ValueError("image record has neither bytes nor path")
        with Image.open(io.BytesIO(data)) as im:
            fmt = (im.format or "png").lower()
            return data, f"image/{'jpeg' if fmt == 'jpg' else fmt}", im.size[0], im.size[1]
    if isinstance(image, (bytes, bytearray)):
        return _image_bytes({"bytes": bytes(image)})
    if isinstance(image, Image.Image):
        fmt = (image.format or "").lower()
        buf = io.BytesIO()
        if fmt in ("jpeg", "png", "webp") and getattr(image, "fp", None) is None:
            image.save(buf, format=fmt.upper())
        else:
            image.convert("RGB" if image.mode not in ("RGB", "RGBA", "L") else image.mode
                          ).save(buf, format="PNG")
            fmt = "png"
        return buf.getvalue(), f"image/{fmt}", image.size[0], image.size[1]
    raise TypeError(f"unsupported image value: {type(image).__name__}")


def _row(i: int, rec: dict[str, Any], image_field: str, key: str, uploader: Uploader
         ) -> dict[str, Any]:
    data, ctype, width, height = _image_bytes(rec[image_field])
    image_id = rec.get("image_id", rec.get("id"))
    name = f"{key}.{ctype.split('/')[-1]}"
    file_id = retry(lambda: uploader(data, name, ctype), what=f"upload {key}")
    objects = rec.get("objects") or {}
    boxes = [coco_bbox(b) for b in objects.get("bbox", [])] if isinstance(objects, dict) \
        else []
    cats = list(objects.get("category", [])) if isinstance(objects, dict) else []
    captions = rec.get("captions") or ([rec["caption"]] if rec.get("caption") else [])
    extra = {k: v for k, v in rec.items()
             if k not in (image_field, "image_id", "id", "objects", "width", "height",
                          "captions", "caption") and _jsonable(v)}
    return {"image_id": int(image_id) if isinstance(image_id, (int, float)) else None,
            "path": key, "filename": name,
            "width": int(rec.get("width") or width), "height": int(rec.get("height") or height),
            "bboxes": json.dumps(boxes), "category_ids": json.dumps(cats),
            "captions": json.dumps(list(captions)), "file_id": file_id,
            "metadata": json.dumps(extra)}


def _jsonable(v: Any) -> bool:
    try:
        json.dumps(v)
        return True
    except (TypeError, ValueError):
        return False


def ingest_image_records(db: Any, records: Iterable[dict[str, Any]], table: str = "images",
                         workspace: str = "public", source: str = "records",
                         image_field: str = "image", batch_size: int = 32,
                         max_workers: int = 4, uploader: Uploader | None = None,
                         limit: int | None = None, progress: bool = True) -> IngestReport:
    """Ingest image records (a ``datasets`` dataset, streaming or not) into ``table``.

    Each record's resume key is ``<source>:<image_id>`` (or its position when it has no id), so
    re-running over the same source skips what is already in.
    """
    t0 = time.perf_counter()
    report = IngestReport(table=f"{workspace}.{table}")
    schema = pa.schema([(n, _ARROW[t]) for n, t in BASE_COLUMNS if n != "id"])
    session = db.session(workspace=workspace)
    try:
        ensure_table(session, workspace, table, BASE_COLUMNS)
        done = existing_keys(session, workspace, table, "path")
        up = uploader or FileStoreUploader(db, workspace)

        def todo() -> Iterator[tuple[int, dict[str, Any], str]]:
            taken = 0
            for i, rec in enumerate(records):
                if limit is not None and taken >= limit:
                    return
                ident = rec.get("image_id", rec.get("id", i))
                key = f"{source}:{ident}"
                if key in done:
                    report.skipped += 1
                    continue
                taken += 1
                yield i, rec, key

        def build(item: tuple[int, dict[str, Any], str]) -> dict[str, Any] | None:
            i, rec, key = item
            try:
                return _row(i, rec, image_field, key, up)
            except Exception as e:  # noqa: BLE001 - one bad record must not stop the run
                log.warning("skipping %s: %s", key, e)
                report.errors.append(f"{key}: {e}")
                report.failed += 1
                return None

        with Progress(limit, f"images -> {table}", progress, "img") as bar:
            rows = (r for r in bounded_map(build, todo(), max_workers) if r is not None)
            for batch in batched(rows, batch_size):
                report.inserted += insert_batch(session, workspace, table, batch, schema)
                bar.update(len(batch))
    finally:
        session.close()
    report.seconds = time.perf_counter() - t0
    return report
