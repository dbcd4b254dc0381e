"""ColQwen2 / ColPali multi-vector models through ``transformers`` (meant for a GPU).

Text queries and images both become ``(tokens, dim)`` arrays for ``FLOAT4[][]`` columns and
MaxSim ranking. The weights are read from a local directory or the Hugging Face cache; tarndb
never downloads them at query time (``HF_HUB_OFFLINE=1`` unless the caller set it).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._base import Embedder, MissingDependency, require

_FAMILIES = {
    "colqwen2": ("ColQwen2ForRetrieval", "ColQwen2Processor"),
    "colpali": ("ColPaliForRetrieval", "ColPaliProcessor"),
}


class ColPaliEmbedder(Embedder):
    multi = True

    def __init__(self, name: str, model_path: str, family: str = "colqwen2",
                 device: str | None = None, batch_size: int = 8,
                 torch_dtype: str | None = None) -> None:
        super().__init__()
        self.name = name
        self.model_path = model_path
        self.batch_size = batch_size
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        torch = require("torch")
        transformers = require("transformers", extra="colpali")
        if family not in _FAMILIES:
            raise MissingDependency(f"unknown ColPali family {family!r}; use one of "
                                    f"{sorted(_FAMILIES)}")
        model_cls_name, proc_cls_name = _FAMILIES[family]
        model_cls = getattr(transformers, model_cls_name, None)
        proc_cls = getattr(transformers, proc_cls_name, None)
        if model_cls is None or proc_cls is None:
            raise MissingDependency(
                f"transformers {transformers.__version__} has no {model_cls_name}: "
                "pip install -U 'transformers>=4.52'")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = getattr(torch, torch_dtype) if torch_dtype else (
            torch.bfloat16 if self.device.startswith("cuda") else torch.float32)
        self._torch = torch
        self.model = model_cls.from_pretrained(model_path, torch_dtype=dtype).to(self.device)
        self.model.eval()
        self.processor = proc_cls.from_pretrained(model_path)

    @property
    def supports_images(self) -> bool:
        return True

    def _run(self, batch: Any) -> list[np.ndarray]:
        batch = {k: v.to(self.device) for k, v in batch.items()}
        with self._lock, self._torch.no_grad():
            emb = self.model(**batch).embeddings
        mask = batch.get("attention_mask")
        out = []
        for i in range(emb.shape[0]):
            e = emb[i]
            if mask is not None:
                e = e[mask[i].bool()]
            out.append(e.float().cpu().numpy().astype(np.float32))
        return out

    def _encode_texts(self, texts: list[str]) -> list[np.ndarray]:
        return self._run(self.processor.process_queries(text=texts))

    def encode_images(self, images: Sequence[Any]) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        items = list(images)
        for start in range(0, len(items), self.batch_size):
            chunk = [_as_pil(im) for im in items[start:start + self.batch_size]]
            out.extend(self._run(self.processor.process_images(images=chunk)))
        return out


def _as_pil(image: Any) -> Any:
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, (bytes, bytearray)):
        import io

        return Image.open(io.BytesIO(image)).convert("RGB")
    return Image.open(image).convert("RGB")
