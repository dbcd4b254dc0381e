"""``tarndb.VectorStore``: the Deep Lake vector store API (see :mod:`tarndb.deepmemory`).

``from tarndb.vectorstore import VectorStore`` and ``from tarndb import VectorStore`` are the
same class. It works on a lake in this process (a directory, ``s3://``, an open Database, or
``hub://org/dataset`` with ``TARNDB_DATA``) or on a tarndb server through its HTTP API (an
``http(s)://`` URL, ``tarndb://host:port/ws/table``, or ``hub://org/dataset`` with
``TARNDB_API_URL``): the latter gives a
:class:`~tarndb.deepmemory._remote.RemoteVectorStore` with the same methods (``add``,
``delete``, ``search``, ``dataset``, ``deep_memory``).
"""

from __future__ import annotations

from typing import Any

from .deepmemory._remote import RemoteDeepMemory, RemoteVectorStore, server_target
from .deepmemory._store import DeepMemory
from .deepmemory._store import VectorStore as LakeVectorStore

_REMOTE_KEYS = ("embedding_column", "id_column", "text_column", "embedding_function",
                "read_only")


class VectorStore(LakeVectorStore):
    __doc__ = LakeVectorStore.__doc__

    def __new__(cls, path: Any = None, **kwargs: Any) -> Any:
        target = server_target(path, kwargs.get("table"), kwargs.get("workspace"),
                               kwargs.get("lake"))
        if target is None:
            return super().__new__(cls)
        base, ws, table, org = target
        hub = isinstance(path, str) and path.startswith("hub://")
        return RemoteVectorStore(
            base, ws, table, token=kwargs.get("token"), org=kwargs.get("org") or org,
            create=hub, **{k: kwargs[k] for k in _REMOTE_KEYS if k in kwargs})


__all__ = ["DeepMemory", "LakeVectorStore", "RemoteDeepMemory", "RemoteVectorStore",
           "VectorStore"]
