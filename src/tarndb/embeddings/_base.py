"""What every embedding model in the registry looks like, and the errors it raises."""

from __future__ import annotations

import importlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import FeatureNotSupported, InvalidParameterValue, TarnError


class MissingDependency(FeatureNotSupported):
    """An optional package a model needs is not installed; the message says what to install."""

    code = "missing_dependency"


class EmbeddingError(TarnError):
    """A model failed to embed (a remote API refused, a model could not be loaded)."""

    sqlstate = "58000"
    http_status = 502
    code = "embedding_failed"


class UnknownModel(InvalidParameterValue):
    code = "unknown_embedding_model"


def require(module: str, extra: str = "embeddings", package: str | None = None,
            purpose: str = "this embedding model") -> Any:
    """Import an optional dependency or raise :class:`MissingDependency` naming the install."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        pkg = package or module.split(".")[0]
        raise MissingDependency(
            f"{pkg} is needed for {purpose} but is not installed: "
            f"pip install 'tarndb[{extra}]' (or pip install {pkg})") from e


class Embedder(ABC):
    """An embedding model.

    ``multi`` models return one ``(tokens, dim)`` array per input (ColBERT/ColPali style, for
    ``FLOAT4[][]`` columns); the others one ``(dim,)`` vector (for ``FLOAT4[]``). Every model
    batches its inputs and may be called from several threads at once.
    """

    name: str = ""
    multi: bool = False
    #: inputs per forward pass / HTTP request
    batch_size: int = 64
    #: inputs per call of ``_encode_texts``; local models take many batches per call so that
    #: sentence-transformers can sort them by length (less padding, ~1.4x faster)
    call_size: int | None = None

    def __init__(self) -> None:
        # One forward pass at a time per model: torch already uses every core for one batch,
        # and interleaving two batches only thrashes the caches.
        self._lock = threading.Lock()

    @property
    def dim(self) -> int | None:
        return None

    @abstractmethod
    def _encode_texts(self, texts: list[str]) -> list[np.ndarray]:
        """Embed one batch (at most ``batch_size`` texts)."""

    def encode_texts(self, texts: Sequence[str]) -> list[np.ndarray]:
        items = ["" if t is None else str(t) for t in texts]
        out: list[np.ndarray] = []
        step = self.call_size or self.batch_size
        for start in range(0, len(items), step):
            out.extend(self._encode_texts(items[start:start + step]))
        return out

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Single-vector models: an ``(n, dim)`` float32 matrix."""
        if self.multi:
            raise InvalidParameterValue(
                f"model {self.name!r} is multi-vector; use embed_multi() for FLOAT4[][]")
        vecs = self.encode_texts(texts)
        if not vecs:
            return np.zeros((0, self.dim or 0), np.float32)
        return np.stack(vecs).astype(np.float32, copy=False)

    @property
    def supports_images(self) -> bool:
        return False

    def encode_images(self, images: Sequence[Any]) -> list[np.ndarray]:
        raise FeatureNotSupported(f"model {self.name!r} does not embed images")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}{' multi' if self.multi else ''}>"


def l2_normalize(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    norms = np.linalg.norm(a, axis=-1, keepdims=True)
    # Zero rows stay zero instead of becoming NaN.
    return np.divide(a, norms, out=np.zeros_like(a), where=norms > 0)
