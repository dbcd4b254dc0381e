"""``tarndb.VectorStore``: the Deep Lake vector store API (see :mod:`tarndb.deepmemory`).

``from tarndb.vectorstore import VectorStore`` and ``from tarndb import VectorStore`` are the
same class.
"""

from __future__ import annotations

from .deepmemory._store import DeepMemory, VectorStore

__all__ = ["DeepMemory", "VectorStore"]
