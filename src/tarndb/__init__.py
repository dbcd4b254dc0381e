"""tarndb: one self-hosted database for rows, embeddings and files.

>>> import tarndb
>>> db = tarndb.open("./lake")
>>> db.execute("CREATE TABLE t (id BIGSERIAL PRIMARY KEY, emb FLOAT4[])")
"""

from __future__ import annotations

from . import errors
from .engine.database import Database
from .engine.result import Column, Result
from .engine.session import Session
from .errors import TarnError

__version__ = "0.1.0"


def open(uri: str, storage_options: dict[str, str] | None = None) -> Database:  # noqa: A001
    """Open (or create) the lake at ``uri``: a local directory or an ``s3://`` URI."""
    db = Database(uri, storage_options=storage_options)
    from .embeddings import install

    install(db)  # embed() / embed_multi() in SQL; models load on first use
    return db


def __getattr__(name: str) -> object:
    # The HTTP client pulls in httpx; import it only when asked for.
    if name == "Client":
        from .client.http import Client

        return Client
    raise AttributeError(f"module 'tarndb' has no attribute {name!r}")


__all__ = ["Client", "Column", "Database", "Result", "Session", "TarnError", "__version__",
           "errors", "open"]
