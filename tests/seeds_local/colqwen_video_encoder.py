"""The local module seed 001's video section imports (``import colqwen_video_encoder as ve``),
with ColQwen3-Video's contract: ``encode_videos(paths)`` and ``encode_texts(texts)`` return
one ``(tokens, dim)`` float32 array per input.

The model is a hub download meant for a GPU, so the tests stand in for it, offline and on
CPU: a video is decoded with imageio-ffmpeg's bundled ffmpeg, ``FRAMES`` frames are taken
evenly from it, and each frame becomes the 16 patch vectors of ``colqwen_encoder``'s image
featurizer (not a learned model); texts are ``colqwen_encoder.encode_texts`` (the packaged
model's token vectors).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from colqwen_encoder import encode_images, encode_texts
from PIL import Image

FRAMES = 4

__all__ = ["FRAMES", "encode_texts", "encode_videos"]


def encode_videos(paths: Sequence[str | Path], batch_size: int = 1) -> list[np.ndarray]:
    """One ``(frames * 16, 384)`` float32 array per video file."""
    import imageio_ffmpeg

    out = []
    for path in paths:
        reader = imageio_ffmpeg.read_frames(str(path))
        width, height = next(reader)["size"]
        frames = [np.frombuffer(f, np.uint8).reshape(height, width, 3) for f in reader]
        if not frames:
            raise ValueError(f"{path}: no video frames")
        picks = np.linspace(0, len(frames) - 1, min(FRAMES, len(frames))).round().astype(int)
        out.append(np.concatenate(encode_images([Image.fromarray(frames[i]) for i in picks])))
    return out
