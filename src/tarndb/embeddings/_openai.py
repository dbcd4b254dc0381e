"""OpenAI-compatible HTTP embedding APIs (OpenAI, OpenRouter, vLLM, Ollama, TEI ...).

Speaks ``POST {base_url}/embeddings`` with ``{"model", "input": [...]}`` and reads
``data[i].embedding`` ordered by ``data[i].index``. Uses only the standard library, so the
core install can call a remote model.
"""

from __future__ import annotations

import json
import os
import random
import time
import urllib.error
import urllib.request
from typing import Any

import numpy as np

from ._base import Embedder, EmbeddingError

#: Statuses worth another try: rate limits and a gateway that is briefly down.
RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class OpenAIEmbedder(Embedder):
    def __init__(self, name: str, model: str, base_url: str | None = None,
                 api_key: str | None = None, dimensions: int | None = None,
                 batch_size: int = 64, timeout_s: float = 60.0, max_retries: int = 5,
                 backoff_s: float = 0.5, headers: dict[str, str] | None = None) -> None:
        super().__init__()
        self.name = name
        self.model = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL")
                         or "https://api.openai.com/v1").rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.dimensions = dimensions
        self.batch_size = batch_size
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.headers = dict(headers or {})
        self._dim: int | None = dimensions

    @property
    def dim(self) -> int | None:
        return self._dim

    def _request(self, texts: list[str]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "input": texts, "encoding_format": "float"}
        if self.dimensions:
            body["dimensions"] = self.dimensions
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **self.headers}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last: str = ""
        for attempt in range(self.max_retries + 1):
            req = urllib.request.Request(f"{self.base_url}/embeddings", data=data,
                                         headers=headers, method="POST")
            retry_after: float | None = None
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as res:
                    return dict(json.loads(res.read()))
            except urllib.error.HTTPError as e:
                detail = e.read()[:500].decode("utf-8", "replace")
                last = f"HTTP {e.code}: {detail}"
                if e.code not in RETRY_STATUSES:
                    break
                ra = e.headers.get("Retry-After") if e.headers else None
                try:
                    retry_after = float(ra) if ra else None
                except ValueError:
                    retry_after = None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                last = f"{type(e).__name__}: {e}"
            if attempt < self.max_retries:
                # Full jitter keeps many ingest workers from retrying in lockstep.
                delay = retry_after if retry_after is not None else \
                    self.backoff_s * (2 ** attempt) * (0.5 + random.random() / 2)
                time.sleep(min(delay, 30.0))
        raise EmbeddingError(
            f"embedding API {self.base_url} (model {self.model!r}) failed: {last}")

    def _encode_texts(self, texts: list[str]) -> list[np.ndarray]:
        payload = self._request(texts)
        try:
            items = sorted(payload["data"], key=lambda d: d.get("index", 0))
            vecs = [np.asarray(d["embedding"], dtype=np.float32) for d in items]
        except (KeyError, TypeError, ValueError) as e:
            raise EmbeddingError(
                f"embedding API {self.base_url} answered without data[].embedding") from e
        if len(vecs) != len(texts):
            raise EmbeddingError(
                f"embedding API returned {len(vecs)} embeddings for {len(texts)} inputs")
        if vecs and self._dim is None:
            self._dim = int(vecs[0].shape[0])
        return vecs
