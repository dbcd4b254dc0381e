"""Videos cut into clips with ffmpeg stream copy, one row per clip.

Cutting never re-encodes (``-c copy``), so a clip can only start on a keyframe. The cut
points are chosen here from the video stream's packet list (read without decoding): a clip
starts at the first keyframe at least ``chunk_duration_s`` after the previous cut, so every
clip but the last is at least that long and clip durations add up to the source's. ffmpeg's
segment muxer then cuts at exactly those keyframes by frame number (``-segment_frames``),
which, unlike cutting by time, is immune to the container's timestamp offsets.

ffmpeg comes from ``imageio-ffmpeg`` (a wheel that ships the binary) when installed, else from
``PATH`` (Debian's ``ffmpeg`` package).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..embeddings._base import MissingDependency
from ._common import (
    FileStoreUploader,
    IngestReport,
    Progress,
    Uploader,
    ensure_table,
    existing_keys,
    insert_batch,
    log,
    retry,
)
from ._images import _ARROW

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts"})

#: seconds per clip when the caller does not say (the seed's ``VIDEO_CHUNK_DURATION_S``)
DEFAULT_CHUNK_S = float(os.environ.get("VIDEO_CHUNK_DURATION_S", "30"))

BASE_COLUMNS: list[tuple[str, str]] = [
    ("id", "BIGSERIAL PRIMARY KEY"),
    ("video_id", "TEXT"),
    ("source", "TEXT"),
    ("chunk_index", "INT"),
    ("start_s", "FLOAT4"),
    ("end_s", "FLOAT4"),
    ("file_id", "UUID"),
    ("metadata", "JSONB"),
]
_ARROW_V = {**_ARROW, "FLOAT4": pa.float32(), "INT": pa.int32()}


def ffmpeg_exe() -> str:
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        pass
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    raise MissingDependency(
        "video ingestion needs ffmpeg: pip install imageio-ffmpeg (ships the binary) or "
        "apt-get install ffmpeg")


@dataclass
class Packet:
    pts: int
    duration: int
    key: bool


@dataclass
class VideoInfo:
    time_base: Fraction
    packets: list[Packet]  # video stream, decode order
    start_pts: int
    duration_s: float
    width: int | None = None
    height: int | None = None
    codec: str | None = None

    def keyframes(self) -> list[tuple[int, float]]:
        """(packet index, seconds from the start) of every keyframe, in decode order."""
        return [(i, float((p.pts - self.start_pts) * self.time_base))
                for i, p in enumerate(self.packets) if p.key]


def probe(path: str | Path, ffmpeg: str | None = None) -> VideoInfo:
    """The first video stream's packets (pts, duration, keyframe flag), without decoding:
    ffmpeg's ``framecrc`` muxer prints one line per packet and flags non-keyframes."""
    exe = ffmpeg or ffmpeg_exe()
    proc = subprocess.run(
        [exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(path),
         "-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-"],
        capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ValueError(f"ffmpeg could not read {path}: {proc.stderr.strip()[-300:]}")
    tb = Fraction(1, 1)
    packets: list[Packet] = []
    width = height = None
    codec = None
    for line in proc.stdout.splitlines():
        if line.startswith("#tb 0:"):
            tb = Fraction(line.split(":", 1)[1].strip())
        elif line.startswith("#dimensions 0:"):
            w, _, h = line.split(":", 1)[1].strip().partition("x")
            width, height = int(w), int(h)
        elif line.startswith("#codec_id 0:"):
            codec = line.split(":", 1)[1].strip()
        elif line and not line.startswith("#"):
            parts = [p.strip() for p in line.split(",")]
            flags = next((p for p in parts[6:] if p.startswith("F=")), None)
            # framecrc omits F= for a plain keyframe and prints it for anything else.
            key = flags is None or bool(int(flags[2:], 16) & 1)
            packets.append(Packet(int(parts[2]), int(parts[3]), key))
    if not packets:
        raise ValueError(f"{path} has no video stream")
    start = min(p.pts for p in packets)
    end = max(p.pts + p.duration for p in packets)
    return VideoInfo(tb, packets, start, float((end - start) * tb), width, height, codec)


def cut_points(info: VideoInfo, chunk_duration_s: float) -> list[tuple[int, float]]:
    """Keyframes where clips start: (packet index, seconds); the first is always 0."""
    kfs = info.keyframes()
    if not kfs:
        return [(0, 0.0)]
    cuts = [kfs[0]]
    if chunk_duration_s <= 0:
        return cuts
    for idx, t in kfs[1:]:
        if t >= cuts[-1][1] + chunk_duration_s - 1e-6:
            cuts.append((idx, t))
    return cuts


@dataclass
class Clip:
    index: int
    start_s: float
    end_s: float
    path: Path


@dataclass
class CutResult:
    info: VideoInfo
    clips: list[Clip] = field(default_factory=list)


def cut_video(path: str | Path, out_dir: str | Path, chunk_duration_s: float,
              ffmpeg: str | None = None) -> CutResult:
    """Cut ``path`` into keyframe-aligned clips in ``out_dir`` (stream copy, no re-encode)."""
    exe = ffmpeg or ffmpeg_exe()
    info = probe(path, exe)
    cuts = cut_points(info, chunk_duration_s)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    suffix = Path(path).suffix.lower() or ".mp4"
    if len(cuts) == 1:
        target = out / f"chunk_00000{suffix}"
        shutil.copyfile(path, target)
        return CutResult(info, [Clip(0, 0.0, info.duration_s, target)])
    frames = ",".join(str(i) for i, _ in cuts[1:])
    proc = subprocess.run(
        [exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(path),
         "-map", "0", "-c", "copy", "-f", "segment", "-segment_frames", frames,
         "-reset_timestamps", "1", str(out / f"chunk_%05d{suffix}")],
        capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ValueError(f"ffmpeg could not cut {path}: {proc.stderr.strip()[-300:]}")
    files = sorted(out.glob(f"chunk_*{suffix}"))
    if len(files) != len(cuts):
        raise ValueError(f"ffmpeg made {len(files)} clips of {path}, expected {len(cuts)}")
    bounds = [t for _, t in cuts] + [info.duration_s]
    clips = [Clip(i, bounds[i], bounds[i + 1], f) for i, f in enumerate(files)]
    return CutResult(info, clips)


def video_id_for(path: Path) -> str:
    """Stable id: the file name plus a short hash of its bytes, so a renamed copy of the same
    video is recognised and two different ``video.mp4`` files are not."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return f"{path.stem}-{h.hexdigest()[:12]}"


def iter_videos(source: str | Path | Iterable[str | Path]) -> list[Path]:
    if isinstance(source, (str, Path)):
        p = Path(source)
        if p.is_dir():
            return [q for q in sorted(p.rglob("*"))
                    if q.suffix.lower() in VIDEO_EXTENSIONS and q.is_file()]
        return [p]
    return [Path(s) for s in source]


def ingest_videos(db: Any, source: str | Path | Iterable[str | Path], table: str = "videos",
                  workspace: str = "public", chunk_duration_s: float | None = None,
                  embed_model: str | None = None, embedding_column: str = "embedding",
                  metadata: dict[str, dict[str, Any]] | None = None, max_workers: int = 4,
                  uploader: Uploader | None = None, progress: bool = True) -> IngestReport:
    """Cut each video into clips and insert one row per clip (``video_id``, ``chunk_index``,
    ``start_s``, ``end_s``, ``file_id``, ``metadata``).

    A video's clips go in with one commit, so a video is either wholly in the table or not at
    all, and a re-run skips videos whose ``video_id`` is present. ``metadata`` maps a file name
    (or video id) to extra JSON for its rows; its ``"description"`` is what a text model embeds
    (video models embed the clip, image models its first frame).
    """
    t0 = time.perf_counter()
    chunk_s = DEFAULT_CHUNK_S if chunk_duration_s is None else float(chunk_duration_s)
    paths = iter_videos(source)
    report = IngestReport(table=f"{workspace}.{table}")
    model = None
    columns = list(BASE_COLUMNS)
    if embed_model:
        from ..embeddings import get_model

        model = get_model(embed_model, db=db, workspace=workspace)
        columns.append((embedding_column, "FLOAT4[][]" if model.multi else "FLOAT4[]"))
    schema = pa.schema([(n, _ARROW_V[t]) for n, t in columns if n != "id"])
    exe = ffmpeg_exe()
    up = uploader or FileStoreUploader(db, workspace)
    session = db.session(workspace=workspace)
    try:
        ensure_table(session, workspace, table, columns)
        done = existing_keys(session, workspace, table, "video_id")
        with Progress(len(paths), f"videos -> {table}", progress, "video") as bar:
            for path in paths:
                vid = video_id_for(path)
                if vid in done:
                    report.skipped += 1
                    bar.update()
                    continue
                extra = dict((metadata or {}).get(path.name) or (metadata or {}).get(vid) or {})
                try:
                    rows = _clip_rows(path, vid, chunk_s, exe, up, extra, max_workers,
                                      frames=model is not None and model.supports_images)
                    if model is not None:
                        _embed_clips(model, rows, embedding_column, extra, path)
                    for r in rows:
                        r.pop("_clip", None)
                    report.inserted += insert_batch(session, workspace, table, rows, schema)
                except Exception as e:  # noqa: BLE001 - one bad file must not stop the run
                    log.warning("skipping %s: %s", path, e)
                    report.errors.append(f"{path.name}: {e}")
                    report.failed += 1
                bar.update()
    finally:
        session.close()
    report.seconds = time.perf_counter() - t0
    return report


def _clip_rows(path: Path, vid: str, chunk_s: float, exe: str, up: Uploader,
               extra: dict[str, Any], max_workers: int, frames: bool = False
               ) -> list[dict[str, Any]]:
    from ._common import bounded_map

    with tempfile.TemporaryDirectory(prefix="tarndb-clips-") as tmp:
        cut = cut_video(path, tmp, chunk_s, exe)
        info = cut.info
        ctype = "video/mp4" if path.suffix.lower() in (".mp4", ".m4v", ".mov") else \
            "video/" + path.suffix.lower().lstrip(".")

        def upload(clip: Clip) -> dict[str, Any]:
            data = clip.path.read_bytes()
            name = f"{vid}_chunk{clip.index:05d}{path.suffix.lower()}"
            fid = retry(lambda: up(data, name, ctype), what=f"upload {name}")
            meta = {**extra, "source_file": path.name, "n_chunks": len(cut.clips),
                    "video_duration_s": round(info.duration_s, 6),
                    "chunk_duration_s": chunk_s, "width": info.width, "height": info.height,
                    "codec": info.codec, "bytes": len(data)}
            return {"video_id": vid, "source": str(path), "chunk_index": clip.index,
                    "start_s": clip.start_s, "end_s": clip.end_s, "file_id": fid,
                    "metadata": json.dumps(meta),
                    "_clip": first_frame_png(exe, clip.path) if frames else None}

        return list(bounded_map(upload, cut.clips, max_workers))


def first_frame_png(exe: str, clip: Path) -> bytes | None:
    """The clip's first frame as PNG, for image models (a clip starts on a keyframe, so this
    decodes one frame)."""
    proc = subprocess.run(
        [exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(clip),
         "-frames:v", "1", "-f", "image2pipe", "-vcodec", "png", "-"],
        capture_output=True, check=False)
    return proc.stdout if proc.returncode == 0 and proc.stdout else None


def _embed_clips(model: Any, rows: list[dict[str, Any]], column: str, extra: dict[str, Any],
                 path: Path) -> None:
    if model.supports_images:
        frames = [r["_clip"] for r in rows]
        if any(f is None for f in frames):
            raise ValueError(f"could not read a frame of {path.name}")
        vecs = model.encode_images(frames)
    else:
        desc = str(extra.get("description") or path.stem.replace("_", " "))
        texts = [f"{desc} ({r['start_s']:.1f}s-{r['end_s']:.1f}s)" for r in rows]
        vecs = model.encode_texts(texts)
    for r, v in zip(rows, vecs, strict=True):
        r[column] = v.tolist()
