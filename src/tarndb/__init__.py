"""tarndb: one self-hosted database for rows, embeddings and files.

>>> import tarndb
>>> db = tarndb.open("./lake")
>>> db.execute("CREATE TABLE t (id BIGSERIAL PRIMARY KEY, emb FLOAT4[])")
"""

from __future__ import annotations

import os as _os
from typing import TYPE_CHECKING

# Lance logs "No existing dataset at ..., it will be created" at WARN on every new table;
# that one message is expected here, so it is raised to ERROR (set before lance is imported;
# an explicit LANCE_LOG wins, and every other Lance warning still shows).
_os.environ.setdefault("LANCE_LOG", "warn,lance::dataset::write::insert=error")

from . import errors
from .engine.database import Database
from .engine.result import Column, Result
from .engine.session import Session
from .errors import TarnError

if TYPE_CHECKING:  # imported lazily at run time (see __getattr__)
    from .client.http import Client
    from .train import TrainingSet
    from .vectorstore import VectorStore

__version__ = "0.1.0"


def open(uri: str, storage_options: dict[str, str] | None = None, *,  # noqa: A001
         version_retention: str | None = None, memory_limit: str | None = None,
         temp_limit: str | None = None, max_result_bytes: int | None = None,
         session_memory_limit: str | None = None,
         session_temp_limit: str | None = None) -> Database:
    """Open (or create) the lake at ``uri``: a local directory or an ``s3://`` URI.

    ``version_retention`` (``'30 days'``; default: ``TARNDB_VERSION_RETENTION``, else keep
    every version) drops untagged table versions older than that as tables are written.
    ``memory_limit``, ``temp_limit`` and ``max_result_bytes`` bound what queries may use
    (defaults: the settings of the same names, ``tarndb settings``);
    ``session_memory_limit`` and ``session_temp_limit`` bound each session on its own
    (``tarndb.engine.limits``)."""
    from . import settings

    cfg = settings.resolve(None)
    db = Database(uri, storage_options=storage_options,
                  version_retention=version_retention or cfg.version_retention,
                  memory_limit=memory_limit or cfg.memory_limit,
                  temp_limit=temp_limit or cfg.temp_limit,
                  max_result_bytes=max_result_bytes or cfg.max_result_bytes,
                  session_memory_limit=session_memory_limit or cfg.session_memory_limit,
                  session_temp_limit=session_temp_limit or cfg.session_temp_limit)
    from .embeddings import install

    install(db)  # embed() / embed_multi() in SQL; models load on first use
    from .deepmemory import install as install_deep_memory

    install_deep_memory(db)  # deep_memory(table, column, query) in SQL
    return db


def __getattr__(name: str) -> object:
    # The HTTP client pulls in httpx; import it only when asked for.
    if name == "Client":
        from .client.http import Client

        return Client
    if name == "VectorStore":
        from .vectorstore import VectorStore

        return VectorStore
    if name == "TrainingSet":  # training sets use the HTTP client too
        from .train import TrainingSet

        return TrainingSet
    raise AttributeError(f"module 'tarndb' has no attribute {name!r}")


__all__ = ["Client", "Column", "Database", "Result", "Session", "TarnError", "TrainingSet",
           "VectorStore", "__version__", "errors", "open"]
