"""``embed()`` and ``embed_multi()`` as SQL functions on every session's DuckDB cursor.

DuckDB calls the Python side once per vector of up to 2048 rows (``type="arrow"``), so
``UPDATE t SET emb = embed(task)`` embeds in model-sized batches, not row by row. The
one-argument forms use the workspace's default model: the session names its workspace in the
DuckDB variable ``tarndb_workspace`` (unset: the lake-wide default, then MiniLM).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Sequence
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from ..engine.udf import error_from_message, memo_put, register_arrow, statement_memo
from ._base import Embedder
from ._local import TORCH_MODEL, SentenceTransformerEmbedder
from ._onnx import OnnxEmbedder
from ._registry import (
    DEFAULT_MODEL,
    TOKENS_MODEL,
    TORCH_TOKENS_MODEL,
    default_model_name,
    get_model,
)

log = logging.getLogger(__name__)

WORKSPACE_VARIABLE = "tarndb_workspace"
VECTOR = pa.list_(pa.float32())
MULTI_VECTOR = pa.list_(pa.list_(pa.float32()))


def vectors_to_arrow(vecs: Sequence[np.ndarray | None]) -> pa.Array:
    """``FLOAT4[]`` values; ``None`` entries become NULL."""
    lengths = [0 if v is None else int(np.asarray(v).shape[-1]) for v in vecs]
    offsets = np.zeros(len(vecs) + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    present = [np.asarray(v, np.float32).reshape(-1) for v in vecs if v is not None]
    flat = np.concatenate(present) if present else np.zeros(0, np.float32)
    mask = pa.array([v is None for v in vecs], pa.bool_())
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, pa.float32()),
                                    mask=mask if any(v is None for v in vecs) else None)


def multivectors_to_arrow(mats: Sequence[np.ndarray | None]) -> pa.Array:
    """``FLOAT4[][]`` values: one ``(tokens, dim)`` matrix per row; ``None`` becomes NULL."""
    inner: list[np.ndarray | None] = []
    outer_offsets = [0]
    for m in mats:
        rows = [] if m is None else list(np.asarray(m, np.float32).reshape(
            -1, np.asarray(m).shape[-1]))
        inner.extend(rows)
        outer_offsets.append(outer_offsets[-1] + len(rows))
    inner_arr = vectors_to_arrow(inner)
    mask = pa.array([m is None for m in mats], pa.bool_())
    return pa.ListArray.from_arrays(pa.array(np.asarray(outer_offsets, np.int32)), inner_arr,
                                    mask=mask if any(m is None for m in mats) else None)


def embed_texts(model: Embedder, texts: Sequence[str | None],
                memo: dict[Any, Any] | None = None) -> pa.Array:
    """Embed a batch for a column: NULL text gives a NULL embedding, duplicates are embedded
    once (generated columns and UPDATEs often repeat values), and so is a text the running
    statement already embedded with this model (``memo``, see :mod:`tarndb.engine.udf`)."""
    known: dict[str, Any] = {}
    uniq: dict[str, int] = {}
    for t in texts:
        if t is None or t in uniq or t in known:
            continue
        hit = None if memo is None else memo.get(("embed", id(model), model.name, t))
        if hit is not None:
            known[t] = hit
        else:
            uniq[t] = len(uniq)
    encoded = model.encode_texts(list(uniq)) if uniq else []
    for t, i in uniq.items():
        known[t] = encoded[i]
        memo_put(memo, ("embed", id(model), model.name, t), encoded[i])
    picked = [None if t is None else known[t] for t in texts]
    return multivectors_to_arrow(picked) if model.multi else vectors_to_arrow(picked)


def embed_column(db: Any, texts: Sequence[str | None], model: str | None = None,
                 workspace: str | None = None, multi: bool = False,
                 memo: dict[Any, Any] | None = None) -> pa.Array:
    """What the engine calls to fill ``GENERATED ALWAYS AS (embed(col)) STORED``: one Arrow
    array of ``FLOAT4[]`` (``FLOAT4[][]`` when ``multi``) for a batch of texts."""
    name = model or default_model_name(db, workspace)
    m = get_model(name, db=db, workspace=workspace, sql=True)  # only the operator's models
    if multi and isinstance(m, SentenceTransformerEmbedder):
        # embed_multi() with a sentence model: its token-level variant (same weights).
        m = get_model(TORCH_TOKENS_MODEL if m.name == TORCH_MODEL else f"tokens:{m.path}")
    elif multi and isinstance(m, OnnxEmbedder) and not m.multi:
        m = get_model(TOKENS_MODEL if m.name == DEFAULT_MODEL else f"onnx-tokens:{m.path}")
    if m.multi != multi:
        from ..errors import InvalidParameterValue

        raise InvalidParameterValue(
            f"embedding model {m.name!r} is {'multi' if m.multi else 'single'}-vector; use "
            f"{'embed_multi' if m.multi else 'embed'}()")
    return embed_texts(m, texts, memo)


def _group_calls(db: Any, names: pa.Array, texts: pa.Array, by_workspace: bool,
                 multi: bool, conn_ids: pa.Array | None = None) -> pa.Array:
    name_list = names.to_pylist()
    text_list = texts.to_pylist()
    memo = statement_memo(conn_ids[0].as_py() if conn_ids is not None and len(conn_ids)
                          else None)
    if len(set(name_list)) == 1:
        ws, model = (name_list[0], None) if by_workspace else (None, name_list[0])
        return embed_column(db, text_list, model=model, workspace=ws, multi=multi, memo=memo)
    # Rows naming different models: embed each group, then put rows back in order.
    out: list[Any] = [None] * len(text_list)
    groups: dict[Any, list[int]] = {}
    for i, n in enumerate(name_list):
        groups.setdefault(n, []).append(i)
    for n, idx in groups.items():
        ws, model = (n, None) if by_workspace else (None, n)
        arr = embed_column(db, [text_list[i] for i in idx], model=model, workspace=ws,
                           multi=multi, memo=memo).to_pylist()
        for i, v in zip(idx, arr, strict=True):
            out[i] = v
    return pa.array(out, MULTI_VECTOR if multi else VECTOR)


# Kept under its old name: it is part of tarndb.embeddings' public API.
udf_error_from_message = error_from_message


_registered: weakref.WeakSet[Any] = weakref.WeakSet()
_registered_lock = threading.Lock()


def _register_udfs(db: Any) -> None:
    """The Python functions live on the database's own DuckDB connection, once: a function
    registered on a session's cursor dies with that cursor, and DuckDB's catalog would keep
    calling it."""
    with _registered_lock:
        if db in _registered:
            return
        from duckdb.sqltypes import FLOAT, UBIGINT, VARCHAR

        vec_t = duckdb.list_type(FLOAT)
        multi_t = duckdb.list_type(vec_t)
        conn = db.duckdb  # the connection every session cursor is made from

        def make(by_workspace: bool, multi: bool) -> Any:
            def fn(names: pa.Array, texts: pa.Array, conn_ids: pa.Array) -> pa.Array:
                return _group_calls(db, names, texts, by_workspace, multi, conn_ids)
            return fn

        for fname, by_ws, multi, rtype in (
                ("__tarndb_embed_ws", True, False, vec_t),
                ("__tarndb_embed_model", False, False, vec_t),
                ("__tarndb_embed_multi_ws", True, True, multi_t),
                ("__tarndb_embed_multi_model", False, True, multi_t)):
            # Nulls reach the function: a NULL workspace means "the lake default".
            register_arrow(conn, fname, make(by_ws, multi), [VARCHAR, VARCHAR, UBIGINT],
                           rtype)
        # Macros in the shared catalog, not TEMP ones per cursor (that cost ~0.7 ms on every
        # session start): getvariable() is read from the calling cursor, so each session
        # still embeds with its own workspace's model.
        # The calling connection's id keys the statement's memo (one model run per distinct
        # call in a statement; see tarndb.engine.udf).
        ws = f"getvariable('{WORKSPACE_VARIABLE}')"
        cid = "current_connection_id()"
        conn.execute(
            f"CREATE OR REPLACE MACRO embed(t) AS __tarndb_embed_ws({ws}, t, {cid}), "
            f"(m, t) AS __tarndb_embed_model(m, t, {cid})")
        conn.execute(
            f"CREATE OR REPLACE MACRO embed_multi(t) AS __tarndb_embed_multi_ws({ws}, t, {cid}), "
            f"(m, t) AS __tarndb_embed_multi_model(m, t, {cid})")
        _registered.add(db)


def install_functions(cur: duckdb.DuckDBPyConnection, db: Any) -> None:
    """Make ``embed``/``embed_multi`` (one or two arguments) callable from a session cursor:
    they are defined once per database, on first use."""
    _register_udfs(db)


def install(db: Any) -> None:
    """Add the embedding functions to every session of ``db`` (idempotent)."""
    if any(getattr(i, "__name__", "") == install_functions.__name__ and
           getattr(i, "__module__", "") == __name__ for i in db.cursor_installers):
        return
    db.cursor_installers.append(install_functions)
