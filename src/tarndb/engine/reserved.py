"""Workspace names a client may not create: they would collide with the server's own entries
on the lake (``_catalog.lance``, ``_locks``, ``_deepmemory``, the ``tls`` directory with the
server's private key) or with PostgreSQL's system schemas.

Refused with 42939 (``unacceptable schema name``), as PostgreSQL refuses ``pg_`` schemas.
Workspaces that already exist keep working; only creating one is checked.
"""

from __future__ import annotations

from ..errors import ReservedName

#: Top-level names on the lake that belong to the server (compared case-insensitively, for
#: case-insensitive file systems and object stores that fold case).
SERVER_ENTRIES = frozenset({"tls", "_catalog.lance", "_locks", "_deepmemory", "_files",
                            "_jobs", "_models", "_tmp", "_wal", "_trash", "_versions"})
SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema", "pg_toast", "pg_temp"})


def check_new_workspace(name: str) -> None:
    """Raise :class:`ReservedName` when ``name`` may not be created as a workspace."""
    low = name.lower()
    if low.startswith("pg_") or low in SYSTEM_SCHEMAS:
        raise ReservedName(f'unacceptable schema name "{name}"',
                           detail='The prefix "pg_" is reserved for system schemas.')
    if low in SERVER_ENTRIES or low.startswith(("_", ".")) or "/" in name or "\\" in name \
            or "\0" in name or not name.strip():
        raise ReservedName(f'unacceptable schema name "{name}"',
                           detail="Names starting with \"_\" or \".\", and \"tls\", are reserved "
                                  "for the server's own files on the lake.")
