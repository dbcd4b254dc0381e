"""``tarndb.db``: the Postgres connection manager the seeds use as ``deeplake.db``.

``from deeplake.db import connect, ConnectionManager`` becomes
``from tarndb.db import connect, ConnectionManager``.
"""

from .client.pg import ConnectionManager, connect

__all__ = ["ConnectionManager", "connect"]
