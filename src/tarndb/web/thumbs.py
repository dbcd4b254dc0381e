"""Server-side thumbnails: ``GET /workspaces/{ws}/files/{file_id}/thumbnail?size=256``.

Images are scaled with Pillow; videos get a poster frame from ffmpeg. The result is a WebP
(small, keeps transparency) cached on the lake at ``<lake>/<ws>/_thumbs/<id[:2]>/<id>-<size>.webp``
so every server sharing the lake reuses it and a browser grid of fifty images costs fifty small
reads after the first visit. A file's bytes never change under its id, so neither does its
thumbnail: responses are immutable and the ETag is derived from the id alone.

ffmpeg is looked up as ``TARNDB_FFMPEG``, then the binary of the ``imageio-ffmpeg`` wheel if that
is installed, then ``ffmpeg`` on PATH. Without one, video thumbnails answer 415 and
``video_thumbnails_available()`` says so, which the UI reads to show a plain video icon.
"""

from __future__ import annotations

import functools
import io
import os
import shutil
import subprocess
import tempfile
import uuid
from typing import Any

import anyio
import anyio.to_thread
import pyarrow.fs as pafs
from PIL import Image, ImageOps, UnidentifiedImageError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import TarnError
from ..files import FileMeta, parse_file_id
from ._api import api_state, authorize

#: Sizes a client may ask for; anything else snaps up to the next one, so the cache holds at
#: most three variants per file whatever the UI's layout asks for.
SIZES = (128, 256, 512)
#: Bumped when the thumbnail recipe changes, so cached files from the old recipe are ignored.
RECIPE = "1"
#: Remote lakes copy a video to a temp file for ffmpeg (mp4 indexes may sit at the end, which a
#: pipe cannot seek to); bigger videos get no poster rather than a multi-gigabyte copy.
VIDEO_COPY_LIMIT = 1 << 30
_FFMPEG_TIMEOUT_S = 60.0
_CACHE_CONTROL = "private, max-age=31536000, immutable"
# Thumbnailing is CPU work on a shared server: at most two at once, whatever the page asks.
_GENERATE_SLOTS = 2


class ThumbnailUnavailable(TarnError):
    """The file's type has no thumbnail (audio, PDF, text ...) or it could not be decoded."""

    sqlstate = "22023"
    http_status = 415
    code = "thumbnail_unavailable"


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str | None:
    """Path of an ffmpeg binary, or None when there is none."""
    configured = os.environ.get("TARNDB_FFMPEG")
    if configured:
        return configured
    try:
        import imageio_ffmpeg  # type: ignore[import-not-found,unused-ignore]

        exe: str = imageio_ffmpeg.get_ffmpeg_exe()
        return exe
    except (ImportError, RuntimeError):
        pass
    return shutil.which("ffmpeg")


def video_thumbnails_available() -> bool:
    return ffmpeg_exe() is not None


def snap_size(raw: str | None) -> int:
    if raw is None:
        return 256
    try:
        want = int(raw)
    except ValueError:
        return 256
    for s in SIZES:
        if want <= s:
            return s
    return SIZES[-1]


def kind_of(content_type: str) -> str:
    major = content_type.split("/", 1)[0].lower()
    return major if major in ("image", "video") else "other"


# -- encoding ----------------------------------------------------------------------------


def _encode(img: Image.Image, size: int) -> bytes:
    img = ImageOps.exif_transpose(img) or img
    img.thumbnail((size, size), Image.Resampling.LANCZOS)
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (
        img.mode == "P" and "transparency" in img.info)
    img = img.convert("RGBA" if has_alpha else "RGB")
    out = io.BytesIO()
    img.save(out, format="WEBP", quality=80, method=4)
    return out.getvalue()


def image_thumbnail(source: Any, size: int) -> bytes:
    """A WebP of at most ``size`` x ``size`` from a readable, seekable image file."""
    try:
        with Image.open(source) as img:
            # JPEG can decode at 1/2, 1/4, 1/8 scale: far less work for camera-sized photos.
            img.draft("RGB", (size * 2, size * 2))
            img.load()
            return _encode(img, size)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        raise ThumbnailUnavailable(f"cannot decode this image: {exc}") from None


def video_poster(path: str, size: int) -> bytes:
    """A WebP poster frame of the video at ``path`` (one second in, or the first frame of a
    shorter clip)."""
    exe = ffmpeg_exe()
    if exe is None:
        raise ThumbnailUnavailable("no ffmpeg on this server: install tarndb with imageio-ffmpeg "
                                   "or set TARNDB_FFMPEG")
    scale = f"scale={size}:{size}:force_original_aspect_ratio=decrease"
    for seek in ("1", "0"):
        cmd = [exe, "-nostdin", "-v", "error", "-threads", "1", "-ss", seek, "-i", path,
               "-frames:v", "1", "-an", "-sn", "-vf", scale, "-f", "image2pipe", "-c:v", "png",
               "-"]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=_FFMPEG_TIMEOUT_S,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise ThumbnailUnavailable("ffmpeg took too long on this video") from None
        if proc.returncode == 0 and proc.stdout:
            with Image.open(io.BytesIO(proc.stdout)) as frame:
                frame.load()
                return _encode(frame, size)
    raise ThumbnailUnavailable("ffmpeg found no video frame in this file")


# -- the lake cache ----------------------------------------------------------------------


class ThumbCache:
    """Thumbnails on the lake, next to the workspace's files."""

    def __init__(self, fs: pafs.FileSystem, base: str) -> None:
        self.fs = fs
        self.base = base.rstrip("/")

    @classmethod
    def from_db(cls, db: Any) -> ThumbCache:
        fs, base = db.lake.fs
        return cls(fs, base)

    def path(self, workspace: str, file_id: uuid.UUID, size: int) -> str:
        s = str(file_id)
        prefix = f"{self.base}/" if self.base else ""
        return f"{prefix}{workspace}/_thumbs/{s[:2]}/{s}-{size}-r{RECIPE}.webp"

    def get(self, path: str) -> bytes | None:
        try:
            with self.fs.open_input_stream(path) as f:
                data: bytes = f.read()
                return data
        except (FileNotFoundError, OSError):
            return None

    def put(self, path: str, data: bytes) -> None:
        if self.fs.type_name == "local":
            # Write then rename, so a reader on another server never sees half a file.
            self.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
            tmp = f"{path}.{uuid.uuid4().hex}.tmp"
            with self.fs.open_output_stream(tmp) as f:
                f.write(data)
            self.fs.move(tmp, path)
        else:
            # Object stores publish an object only when its upload completes.
            with self.fs.open_output_stream(path) as f:
                f.write(data)

    def delete_file(self, workspace: str, file_id: uuid.UUID) -> None:
        """Forget every size of one file's thumbnail (call when the file is deleted)."""
        for size in SIZES:
            try:
                self.fs.delete_file(self.path(workspace, file_id, size))
            except (FileNotFoundError, OSError):
                pass


def _make(store: Any, meta: FileMeta, size: int) -> bytes:
    """Render one thumbnail from the file's bytes (blocking; call on a worker thread)."""
    kind = kind_of(meta.content_type)
    if kind == "image":
        reader = store.open(meta)
        try:
            return image_thumbnail(reader, size)
        finally:
            reader.close()
    if kind == "video":
        if ffmpeg_exe() is None:
            raise ThumbnailUnavailable("no ffmpeg on this server for video thumbnails")
        if store.fs.type_name == "local":
            return video_poster(store._blob_path(meta.workspace, meta.id), size)
        if meta.size > VIDEO_COPY_LIMIT:
            raise ThumbnailUnavailable("video too large to make a poster from remote storage")
        with tempfile.NamedTemporaryFile(suffix=".video") as tmp:
            reader = store.open(meta)
            try:
                shutil.copyfileobj(reader, tmp, 1 << 20)
            finally:
                reader.close()
            tmp.flush()
            return video_poster(tmp.name, size)
    raise ThumbnailUnavailable(f"no thumbnail for {meta.content_type} files")


class _Generator:
    """Bounds thumbnail work and makes concurrent requests for one thumbnail share a render."""

    def __init__(self) -> None:
        self.slots = anyio.CapacityLimiter(_GENERATE_SLOTS)
        self.locks: dict[str, anyio.Lock] = {}

    async def get(self, cache: ThumbCache, store: Any, meta: FileMeta, size: int) -> bytes:
        path = cache.path(meta.workspace, meta.id, size)
        lock = self.locks.setdefault(path, anyio.Lock())
        try:
            async with lock:
                hit = await anyio.to_thread.run_sync(cache.get, path, limiter=self.slots)
                if hit is not None:
                    return hit
                data = await anyio.to_thread.run_sync(_make, store, meta, size,
                                                      limiter=self.slots)
                await anyio.to_thread.run_sync(cache.put, path, data, limiter=self.slots)
                return data
        finally:
            if not lock.statistics().tasks_waiting:
                self.locks.pop(path, None)


def _generator(request: Request) -> _Generator:
    gen = getattr(request.app.state, "tarn_thumbs", None)
    if gen is None:
        gen = request.app.state.tarn_thumbs = _Generator()
    assert isinstance(gen, _Generator)
    return gen


async def thumbnail(request: Request) -> Response:
    ws = request.path_params["ws"]
    await authorize(request, "read", ws)
    file_id = parse_file_id(request.path_params["file_id"])
    size = snap_size(request.query_params.get("size"))
    etag = f'"thumb-{file_id}-{size}-r{RECIPE}"'
    headers = {"ETag": etag, "Cache-Control": _CACHE_CONTROL,
               "X-Content-Type-Options": "nosniff"}
    inm = request.headers.get("if-none-match")
    if inm is not None and etag in [t.strip().removeprefix("W/") for t in inm.split(",")]:
        return Response(status_code=304, headers=headers)
    st = api_state(request)
    meta: FileMeta = await st.run_io(st.store.get, ws, file_id)
    cache = ThumbCache.from_db(st.db)
    data = await _generator(request).get(cache, st.store, meta, size)
    return Response(data, media_type="image/webp", headers=headers)


def routes() -> list[Route]:
    """The thumbnail route, to add next to the API's routes."""
    return [Route("/workspaces/{ws}/files/{file_id}/thumbnail", thumbnail, methods=["GET"])]
