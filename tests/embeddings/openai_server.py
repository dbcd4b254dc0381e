"""A small real HTTP server that speaks the OpenAI embeddings API, for tests.

It embeds with feature hashing of lower-cased words (a real, deterministic embedding), checks
the bearer token, records every request, can be told to answer the next N requests with a
status (429, 503, 400) and returns ``data`` out of order, as the API allows.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np


def hashed_embedding(text: str, dim: int) -> list[float]:
    v = np.zeros(dim, np.float32)
    for w in text.lower().split():
        h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little")
        v[h % dim] += 1.0 if (h >> 63) == 0 else -1.0
    n = float(np.linalg.norm(v))
    return (v / n if n else v).tolist()


class State:
    def __init__(self, api_key: str, dim: int) -> None:
        self.api_key = api_key
        self.dim = dim
        self.requests: list[dict[str, Any]] = []
        self.fail_next: list[int] = []
        self.lock = threading.Lock()


def _handler(state: State) -> type[BaseHTTPRequestHandler]:
    class H(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
                  ) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            with state.lock:
                state.requests.append({"path": self.path, "body": body,
                                       "auth": self.headers.get("Authorization")})
                status = state.fail_next.pop(0) if state.fail_next else 200
            if self.path != "/v1/embeddings":
                return self._send(404, {"error": {"message": "not found"}})
            if self.headers.get("Authorization") != f"Bearer {state.api_key}":
                return self._send(401, {"error": {"message": "bad key"}})
            if status != 200:
                return self._send(status, {"error": {"message": f"status {status}"}},
                                  {"Retry-After": "0"} if status == 429 else None)
            inputs = body["input"]
            inputs = [inputs] if isinstance(inputs, str) else inputs
            data = [{"object": "embedding", "index": i,
                     "embedding": hashed_embedding(t, body.get("dimensions") or state.dim)}
                    for i, t in enumerate(inputs)]
            data.reverse()  # order is given by "index", not by position
            self._send(200, {"object": "list", "data": data, "model": body["model"],
                             "usage": {"prompt_tokens": 0, "total_tokens": 0}})
    return H


@contextmanager
def serve(api_key: str = "sk-test", dim: int = 64) -> Iterator[tuple[str, State]]:
    state = State(api_key, dim)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", state
    finally:
        httpd.shutdown()
        httpd.server_close()
