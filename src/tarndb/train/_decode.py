"""Turning a file's bytes into arrays: images with Pillow, video frames with ffmpeg.

Images decode to ``(H, W, 3)`` uint8 RGB arrays. Videos decode to ``(T, H, W, 3)`` uint8
arrays of ``frames`` frames spread evenly over the clip (the last one repeated when the clip
is shorter), optionally scaled to ``size`` by ffmpeg, so clips of one training set stack into
one batch. ffmpeg reads a path, so bytes that are not already a file on this disk are written
to a temporary file first.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._spec import TrainingSetError

DECODE_MODES = (None, "bytes", "image", "video")


@dataclass(frozen=True)
class VideoOptions:
    #: frames per clip, spread evenly over it (None: every frame)
    frames: int | None = 16
    #: (width, height) to scale to; None keeps the clip's size
    size: tuple[int, int] | None = None


def check_mode(decode: str | None) -> str | None:
    if decode not in DECODE_MODES:
        raise TrainingSetError(f"decode must be one of None, 'bytes', 'image', 'video', not "
                               f"{decode!r}")
    return decode


def decode_image(data: bytes, mode: str = "RGB") -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert(mode))
    except (UnidentifiedImageError, OSError) as e:
        raise TrainingSetError(f"not a decodable image: {e}") from None


def _ffmpeg_reader() -> Callable[..., Any]:
    from ..embeddings._base import require

    mod = require("imageio_ffmpeg", extra="video", package="imageio-ffmpeg",
                  purpose="decoding video")
    reader: Callable[..., Any] = mod.read_frames
    return reader


def decode_video(source: bytes | str, options: VideoOptions | None = None) -> np.ndarray:
    """Frames of a clip given as bytes or as a path on this machine."""
    opts = options or VideoOptions()
    if isinstance(source, (bytes, bytearray, memoryview)):
        fd, path = tempfile.mkstemp(suffix=".mp4", prefix="tarndb-clip-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(source)
            return _decode_path(path, opts)
        finally:
            os.unlink(path)
    return _decode_path(source, opts)


def _decode_path(path: str, opts: VideoOptions) -> np.ndarray:
    read_frames = _ffmpeg_reader()
    output: list[str] = []
    if opts.size is not None:
        output = ["-vf", f"scale={int(opts.size[0])}:{int(opts.size[1])}"]
    gen = read_frames(path, pix_fmt="rgb24", output_params=output or None)
    try:
        meta = next(gen)
    except (RuntimeError, OSError, StopIteration) as e:
        raise TrainingSetError(f"not a decodable video: {e}") from None
    w, h = (int(x) for x in (opts.size or meta["size"]))
    wanted: set[int] | None = None
    last_wanted = math.inf
    if opts.frames is not None:
        total = meta.get("nframes")
        if not isinstance(total, (int, float)) or not math.isfinite(total):
            total = float(meta.get("duration") or 0) * float(meta.get("fps") or 0)
        total = max(int(round(total)), 1)
        wanted = {int(round(i * (total - 1) / max(opts.frames - 1, 1)))
                  for i in range(opts.frames)} if opts.frames > 1 else {0}
        last_wanted = max(wanted)
    frames: list[np.ndarray] = []
    try:
        for i, raw in enumerate(gen):
            if wanted is None or i in wanted:
                frames.append(np.frombuffer(raw, np.uint8).reshape(h, w, 3))
            if i >= last_wanted:
                break
    except RuntimeError as e:
        raise TrainingSetError(f"video decoding failed: {e}") from None
    finally:
        gen.close()
    if not frames:
        raise TrainingSetError("the video has no frames")
    if opts.frames is not None:
        # The frame count in the header is an estimate; pad short clips with their last
        # frame so every clip of a set has the same shape.
        while len(frames) < opts.frames:
            frames.append(frames[-1])
        frames = frames[:opts.frames]
    return np.stack(frames)
