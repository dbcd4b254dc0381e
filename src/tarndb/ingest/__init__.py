"""Ingestion: images, video clips and agent traces into tables, bytes into the file store.

Every ingestion is resumable (a re-run skips what is in; a killed run re-run completes
without duplicates), uploads in parallel with a bound, inserts in batches with
``Session.insert_arrow``, retries with backoff and shows a progress bar when tqdm is
installed. The CLI is ``tarndb ingest images|videos|traces`` (:func:`add_cli`).
"""

from typing import Any

from ._common import (
    FileStoreUploader,
    IngestError,
    IngestReport,
    Uploader,
    bounded_map,
    retry,
)
from ._image_records import coco_bbox, ingest_image_records, load_image_dataset
from ._images import find_annotations, ingest_images, load_annotations
from ._traces import TRACE_COLUMNS, ingest_traces, iter_trace_records
from ._video import cut_video, ffmpeg_exe, ingest_videos, probe


def add_cli(subparsers: Any) -> Any:
    """Mount ``tarndb ingest images|videos|traces`` on the ``tarndb`` command's subparsers."""
    from .cli import add_cli as _add_cli

    return _add_cli(subparsers)


__all__ = [
    "coco_bbox",
    "ingest_image_records",
    "load_image_dataset",
    "TRACE_COLUMNS", "FileStoreUploader", "IngestError", "IngestReport", "Uploader",
    "add_cli", "bounded_map", "cut_video", "ffmpeg_exe", "find_annotations", "ingest_images",
    "ingest_traces", "ingest_videos", "iter_trace_records", "load_annotations", "probe",
    "retry",
]
