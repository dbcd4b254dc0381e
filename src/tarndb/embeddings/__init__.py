"""Embedding models for tarndb: a registry, batching, and ``embed()`` in SQL.

>>> from tarndb import embeddings
>>> embeddings.embed(["a robot arm"]).shape          # MiniLM (int8 ONNX, packaged), 384-d
(1, 384)
>>> embeddings.embed_multi(["a robot arm"])[0].shape  # token vectors of the same model
(3, 384)

Models are named (see :mod:`tarndb.embeddings._registry` for every form), load once per
process and are safe to call from several threads. The default model runs on onnxruntime
from files in the package (no torch, no download); torch, transformers and
sentence-transformers are optional (``pip install 'tarndb[embeddings]'``); a model whose
package is missing raises :class:`MissingDependency` naming what to install.

Errors: :class:`MissingDependency` (0A000), :class:`UnknownModel` (22023),
:class:`EmbeddingError` (58000; a remote API or a model failed) - all ``TarnError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._base import Embedder, EmbeddingError, MissingDependency, UnknownModel, l2_normalize
from ._local import TORCH_MODEL, SentenceTransformerEmbedder, TokenEmbedder
from ._onnx import OnnxEmbedder
from ._openai import OpenAIEmbedder
from ._registry import (
    DEFAULT_MODEL,
    TOKENS_MODEL,
    default_model_name,
    get_model,
    loaded_models,
    register,
    register_model,
    register_openai,
    set_default_model,
)
from ._sql import (
    embed_column,
    install,
    install_functions,
    multivectors_to_arrow,
    udf_error_from_message,
    vectors_to_arrow,
)


def embed(texts: Sequence[str], model: str | None = None, db: Any = None,
          workspace: str | None = None) -> np.ndarray:
    """Embed texts with a single-vector model: an ``(n, dim)`` float32 matrix."""
    return get_model(model, db=db, workspace=workspace).embed(list(texts))


def embed_multi(texts: Sequence[str], model: str | None = None) -> list[np.ndarray]:
    """Embed texts with a multi-vector model: one ``(tokens, dim)`` array per text."""
    m = get_model(model or TOKENS_MODEL)
    if not m.multi:
        raise UnknownModel(f"model {m.name!r} is single-vector; use embed()")
    return m.encode_texts(list(texts))


__all__ = [
    "DEFAULT_MODEL", "TOKENS_MODEL", "TORCH_MODEL", "Embedder", "EmbeddingError",
    "MissingDependency", "OnnxEmbedder", "OpenAIEmbedder", "SentenceTransformerEmbedder",
    "TokenEmbedder", "UnknownModel",
    "default_model_name", "embed", "embed_column", "embed_multi", "get_model", "install",
    "install_functions", "l2_normalize", "loaded_models", "multivectors_to_arrow", "register",
    "register_model", "register_openai", "set_default_model", "udf_error_from_message",
    "vectors_to_arrow",
]
