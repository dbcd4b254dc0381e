"""The local module seed 001's COCO section imports (``import colqwen_encoder as
qwen_encoder  # requires a local module``), with ColQwen3's contract: ``encode_images`` and
``encode_texts`` return one ``(tokens, dim)`` float32 array per input.

ColQwen3 4B is a hub download (about 8 GB, meant for a GPU), so the tests stand in for it,
offline and on CPU:

- ``encode_texts``: the token vectors of tarndb's packaged model (MiniLM int8 on onnxruntime,
  384-d, one vector per word piece) - a real text model.
- ``encode_images``: a deterministic patch featurizer, not a learned model. The image is
  resized to 32x32 and cut into a 4x4 grid of 8x8 RGB patches; each patch (mean removed) is
  projected to 384-d by a fixed random matrix (seed 0). So an image is 16 patch vectors in
  the text tokens' dimension, which is all ``FLOAT4[][]`` and ``<#>`` need; it carries no
  meaning shared with text, so text-to-image scores are not semantic and the tests check them
  against an exact MaxSim computed from these same vectors instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

DIM = 384
GRID = 4
PATCH = 8
_PROJ = (np.random.default_rng(0).standard_normal((PATCH * PATCH * 3, DIM))
         / np.sqrt(PATCH * PATCH * 3)).astype(np.float32)


def encode_images(images: Sequence[Any], batch_size: int = 4) -> list[np.ndarray]:
    """One ``(16, 384)`` float32 array of patch vectors per PIL image."""
    out = []
    side = GRID * PATCH
    for im in images:
        a = np.asarray(im.convert("RGB").resize((side, side)), dtype=np.float32) / 255.0
        patches = a.reshape(GRID, PATCH, GRID, PATCH, 3).transpose(0, 2, 1, 3, 4)
        patches = patches.reshape(GRID * GRID, PATCH * PATCH * 3)
        patches = patches - patches.mean(axis=1, keepdims=True)
        out.append((patches @ _PROJ).astype(np.float32))
    return out


def encode_texts(texts: Sequence[str], batch_size: int = 16) -> list[np.ndarray]:
    """One ``(tokens, 384)`` float32 array per text: the packaged model's token vectors."""
    from tarndb.embeddings import embed_multi

    return [np.asarray(m, dtype=np.float32) for m in embed_multi(list(texts))]
