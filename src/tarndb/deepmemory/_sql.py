"""``deep_memory(table, column, query)`` in SQL: the query vector adapted by the table's model.

``ORDER BY emb <#> deep_memory('ws.docs', 'emb', ARRAY[...]::float4[]) DESC LIMIT 10`` ranks
with the trained adapter, for psycopg and HTTP clients alike. The call is column-free, so the
engine evaluates it once per statement and the ranking keeps its usual path (the table's
vector index with the ``WHERE`` clause as a prefilter). A table name without a workspace
resolves in the session's workspace. A table without a trained model raises ``NotFound``
(SQLSTATE 42704), an unknown table ``UndefinedTable``, a query of another dimension
``DataError``; a NULL query gives NULL.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from ..engine.udf import register_arrow
from ..errors import InsufficientPrivilege
from ._store import active_model, split_table

FUNCTION = "__tarndb_deep_memory"
WORKSPACE_VARIABLE = "tarndb_workspace"  # set by the engine for every session
#: Set by the engine for sessions limited to some workspaces: their names, joined by "\x1f".
ALLOWED_VARIABLE = "tarndb_allowed_workspaces"
ALLOWED_SEPARATOR = "\x1f"

_registered: weakref.WeakSet[Any] = weakref.WeakSet()
_lock = threading.Lock()


def _adapt_batch(db: Any, ws: pa.Array, allowed: pa.Array, tables: pa.Array, cols: pa.Array,
                 queries: pa.Array) -> pa.Array:
    from ..embeddings._sql import vectors_to_arrow

    out: list[np.ndarray | None] = []
    for w, a, t, c, q in zip(ws.to_pylist(), allowed.to_pylist(), tables.to_pylist(),
                             cols.to_pylist(), queries.to_pylist(), strict=True):
        if q is None or t is None or c is None:
            out.append(None)
            continue
        workspace, table = split_table(str(t), None if "." in str(t) else (w or "public"))
        if a is not None and workspace not in str(a).split(ALLOWED_SEPARATOR):
            # A scoped session (an API token) reaches only its own workspaces, as in SQL.
            raise InsufficientPrivilege(f'permission denied for schema "{workspace}"')
        _, adapter = active_model(db, workspace, table, str(c))
        out.append(adapter.apply(np.asarray(q, dtype=np.float32)))
    return vectors_to_arrow(out)


def install(db: Any) -> None:
    """Define ``deep_memory(table, column, query)`` for every session of ``db`` (idempotent;
    tarndb.open calls it).

    The UDF and the macro live on the connection every session cursor is made from, defined
    once: a TEMP macro per cursor would cost every session start ~0.4 ms. ``getvariable()``
    is read from the calling cursor, so unqualified names resolve in each session's workspace.
    """
    with _lock:
        if db in _registered:
            return
        from duckdb.sqltypes import FLOAT, VARCHAR

        vec_t = duckdb.list_type(FLOAT)
        conn = db.duckdb
        register_arrow(conn, FUNCTION,
                       lambda ws, a, t, c, q: _adapt_batch(db, ws, a, t, c, q),
                       [VARCHAR, VARCHAR, VARCHAR, VARCHAR, vec_t], vec_t)
        conn.execute(f"CREATE OR REPLACE MACRO deep_memory(t, c, q) AS "
                     f"{FUNCTION}(getvariable('{WORKSPACE_VARIABLE}'), "
                     f"CAST(getvariable('{ALLOWED_VARIABLE}') AS VARCHAR), t, c, q::FLOAT[])")
        _registered.add(db)
