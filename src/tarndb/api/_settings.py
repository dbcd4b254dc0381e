"""Settings of the HTTP API. The CLI maps ``tarndb serve`` flags and ``TARNDB_*`` variables onto
these fields; the defaults are what an embedded, single-user server wants."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class ApiSettings:
    #: Org of the admin token created at first start (and of ``TARNDB_TOKEN``).
    org: str = "default"
    #: A token to register as the org admin instead of minting one (``TARNDB_TOKEN``).
    token: str | None = None
    #: Largest file an upload may carry.
    max_upload_bytes: int = 16 << 30
    #: Largest JSON body (queries with inline embeddings, batches).
    max_body_bytes: int = 256 << 20
    #: Statement timeout when the request gives no ``timeout_ms``.
    query_timeout_s: float = 300.0
    #: Worker threads running statements and lake I/O at once.
    max_concurrency: int = 16
    #: Requests admitted beyond ``max_concurrency`` before the server answers 429.
    max_pending: int = 64
    #: Seconds a 429 asks the client to wait.
    retry_after_s: int = 1

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> ApiSettings:
        """Fields from ``TARNDB_<FIELD>`` variables (``TARNDB_MAX_UPLOAD_BYTES``), then
        ``overrides``."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"TARNDB_{f.name.upper()}")
            if raw is None:
                continue
            kind = type(getattr(cls, f.name)) if getattr(cls, f.name) is not None else str
            values[f.name] = kind(raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
