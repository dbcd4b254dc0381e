"""Rewrite rule: ``<#>`` and pg_deeplake's similarity functions -> scoring functions DuckDB runs.

``<#>`` always yields a similarity (higher is better). What it computes depends on its left
operand's column type:

- ``FLOAT4[]``   cosine similarity (zero vector -> 0, never NaN)
- ``FLOAT4[][]`` MaxSim: for each query vector the best cosine among the row's vectors, summed
- ``TEXT``       BM25 of the row's text against the query string
- ``(emb, text) <#> deeplake_hybrid_record(vec, 'query', w_vec, w_text)``: hybrid, the two
  legs fused by the session's ``tarndb.hybrid_fusion`` method.

When the query side is a constant (the usual case: a parameter or a lifted literal) the score
is a per-statement vectorised Python function closed over the query, computed with numpy; this
is the exact scan that every query can fall back on. BM25 and hybrid need corpus statistics,
which are computed over the table (with the session's uncommitted rows) before the statement
runs. A non-constant query side falls back to SQL macros.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, cast

import duckdb
import numpy as np
import pyarrow as pa
from postgast import pg_query_pb2 as pb

from ...engine.types import ColumnType
from ...errors import DataError, FeatureNotSupported, InvalidParameterValue, UndefinedColumn
from .. import ast

if TYPE_CHECKING:
    from ...engine.catalog import TableInfo
    from ...engine.scan import Scope

_ids = itertools.count()

MACROS = [
    # Used when the query side is not a constant (e.g. comparing two columns).
    """CREATE OR REPLACE MACRO tarn_cosine(a, b) AS (
        CASE WHEN a IS NULL OR b IS NULL THEN NULL
        ELSE coalesce(nullif(list_cosine_similarity(CAST(a AS FLOAT[]), CAST(b AS FLOAT[])),
                             'NaN'::FLOAT), 0) END)""",
    """CREATE OR REPLACE MACRO tarn_maxsim(d, q) AS (
        CASE WHEN d IS NULL OR q IS NULL THEN NULL
        ELSE coalesce(list_sum(list_transform(CAST(q AS FLOAT[][]), lambda qv:
            list_max(list_transform(CAST(d AS FLOAT[][]), lambda dv:
                coalesce(nullif(list_cosine_similarity(qv, dv), 'NaN'::FLOAT), 0))))), 0) END)""",
]

SIM_FUNCTIONS = {"deeplake_cosine_similarity": "cosine", "deeplake_maxsim": "maxsim",
                 "deeplake_bm25_similarity": "bm25", "cosine_similarity": "cosine"}


def install(cur: duckdb.DuckDBPyConnection) -> None:
    for m in MACROS:
        cur.execute(m)


class _Resolver:
    """Column types for column references, from the tables bound in the statement."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    def column(self, ref: pb.ColumnRef) -> tuple[str, TableInfo, ColumnType] | None:
        parts = ast.names(ref.fields)
        if not parts or parts[-1] == "*":
            return None
        name = parts[-1]
        tables = self.scope.tables
        if len(parts) >= 2:
            info = tables.get(parts[-2])
            if info is not None:
                col = info.column(name)
                if col is not None:
                    return parts[-2], info, col.type
            return None
        hits = [(alias, info, c.type) for alias, info in tables.items()
                for c in info.columns if c.name == name]
        return hits[0] if len(hits) == 1 else None


def _is_constant(node: pb.Node) -> bool:
    return not any(isinstance(m, pb.ColumnRef) for m in ast.walk(node))


def _constant_value(node: pb.Node, scope: Scope, params: list[Any]) -> Any:
    """Evaluate a column-free expression (a parameter, a cast literal) to a Python value."""
    inner = node
    while ast.kind(inner) == "type_cast":
        inner = inner.type_cast.arg
    if ast.kind(inner) == "param_ref":
        n = inner.param_ref.number
        if n > len(params):
            raise InvalidParameterValue(f"no value given for parameter ${n}")
        return params[n - 1]
    if ast.kind(inner) == "a_const":
        return ast.const_value(inner)
    from . import casts
    from . import params as param_rule

    probe = pb.Node()
    sel = probe.select_stmt
    sel.target_list.add().res_target.val.CopyFrom(node)
    casts.apply(probe)
    sql, values = param_rule.apply(probe, params)
    rows = scope.cur.execute(sql, values or None).fetchall()
    return rows[0][0] if rows else None


def _vector(value: Any, ndim: int) -> np.ndarray:
    if value is None:
        raise DataError("the query vector of <#> must not be NULL")
    if isinstance(value, str):
        value = _parse_pg_array(value)
    arr = np.asarray(value, dtype=np.float32)
    if ndim == 1 and arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != ndim:
        raise DataError(
            f"<#> on a {'FLOAT4[]' if ndim == 1 else 'FLOAT4[][]'} column needs a "
            f"{ndim}-D query array, got {arr.ndim}-D")
    return arr


def _parse_pg_array(text: str) -> Any:
    import json

    try:
        return json.loads(text.replace("{", "[").replace("}", "]"))
    except ValueError as e:
        raise DataError(f'malformed array literal: "{text[:40]}"') from e


class _Rewriter:
    def __init__(self, scope: Scope, params: list[Any]) -> None:
        self.scope = scope
        self.params = params
        self.resolver = _Resolver(scope)

    # Each scoring function is registered on the session's DuckDB cursor for this statement.
    def _udf(self, fn: Any, arg_types: list[Any]) -> str:
        name = f"__sim{next(_ids)}"
        # (cast: duckdb's stubs do not list the string forms of type/null_handling)
        cast(Any, self.scope.cur).create_function(
            name, fn, arg_types, duckdb.sqltype("DOUBLE"), type="arrow",
            null_handling="special")
        self.scope.functions.append(name)
        return name

    def rewrite(self, node: pb.Node) -> None:
        k = ast.kind(node)
        if k == "a_expr" and ast.op_name(node.a_expr) == "<#>":
            self.expr_key = score_key(node, self.params)
            node.CopyFrom(self.similarity(node.a_expr.lexpr, node.a_expr.rexpr))
        elif k == "a_expr" and ast.op_name(node.a_expr) == "@>":
            left = node.a_expr.lexpr
            col = self.resolver.column(left.column_ref) if ast.kind(left) == "column_ref" \
                else None
            if col is not None and col[2].base in ("text", "varchar", "bpchar"):
                node.CopyFrom(ast.func_call("contains", [left, node.a_expr.rexpr]))
            elif col is not None and col[2].base in ("json", "jsonb"):
                node.CopyFrom(ast.func_call("json_contains", [left, node.a_expr.rexpr]))
        elif k == "func_call":
            fname = ast.func_name(node.func_call)
            args = list(node.func_call.args)
            if fname in SIM_FUNCTIONS and len(args) == 2:
                node.CopyFrom(self.similarity(args[0], args[1], SIM_FUNCTIONS[fname]))

    def similarity(self, left: pb.Node, right: pb.Node, forced: str | None = None) -> pb.Node:
        if self.scope.describing:  # no parameter values yet: only the type matters
            return ast.type_cast(ast.null_const(), ["double"])
        if ast.kind(right) == "func_call" and \
                ast.func_name(right.func_call) == "deeplake_hybrid_record":
            return self.hybrid(left, right.func_call)
        col = self.resolver.column(left.column_ref) if ast.kind(left) == "column_ref" else None
        if col is None and ast.kind(right) == "column_ref":
            rcol = self.resolver.column(right.column_ref)
            if rcol is not None:
                left, right, col = right, left, rcol
        mode = forced
        if col is not None and mode is None:
            ctype = col[2]
            if ctype.base in ("text", "varchar", "bpchar", "json", "jsonb") and ctype.ndim == 0:
                mode = "bm25"
            elif ctype.ndim == 1:
                mode = "cosine"
            elif ctype.ndim == 2:
                mode = "maxsim"
        if mode is None:
            if ast.kind(left) == "column_ref":
                raise UndefinedColumn(
                    f'column "{ast.names(left.column_ref.fields)[-1]}" does not exist')
            raise FeatureNotSupported(
                "<#> needs a FLOAT4[], FLOAT4[][] or TEXT column on one side")
        if not _is_constant(right):
            if mode == "cosine":
                return ast.func_call("tarn_cosine", [left, right])
            if mode == "maxsim":
                return ast.func_call("tarn_maxsim", [left, right])
            raise FeatureNotSupported("BM25 <#> needs a constant query string")
        value = _constant_value(right, self.scope, self.params)
        if mode == "bm25":
            if col is None:
                raise FeatureNotSupported("BM25 <#> needs a text column on its left")
            return self.bm25(left, col, str(value) if value is not None else "",
                             self.expr_key)
        ndim = 1 if mode == "cosine" else 2
        q = _vector(value, ndim)
        return ast.func_call(self._vector_udf(q, mode), [left])

    def _vector_udf(self, q: np.ndarray, mode: str) -> str:
        from ...search import _kernels as K

        if mode == "cosine":
            def fn(col: pa.ChunkedArray) -> pa.Array:
                matrix, valid = K.vectors_from_arrow(col)
                out = np.full(len(valid), np.nan)
                if matrix.shape[0]:
                    out[valid] = K.cosine_scores(matrix, q)
                return pa.array(out, pa.float64(), mask=~valid)
            return self._udf(fn, [duckdb.list_type(duckdb.sqltype("FLOAT"))])

        def fn2(col: pa.ChunkedArray) -> pa.Array:
            arr = col.combine_chunks()
            valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            packed = K.bags_from_arrow(arr, np.arange(len(arr), dtype=np.int64))
            out = np.full(len(arr), np.nan)
            if len(packed):
                out[valid] = K.maxsim_scores(packed, q)
            return pa.array(out, pa.float64(), mask=~valid)
        return self._udf(fn2, [duckdb.list_type(duckdb.list_type(duckdb.sqltype("FLOAT")))])

    # -- text and hybrid -----------------------------------------------------------------

    def _corpus(self, alias: str, columns: list[str]) -> pa.Table:
        """The bound table's values of ``columns`` (committed + this session's changes)."""
        view = None
        for m in ast.walk(self.stmt):
            if isinstance(m, pb.RangeVar) and m.alias.aliasname == alias:
                view = m.relname
                break
        if view is None:
            raise FeatureNotSupported("could not find the table of a <#> column")
        cols = ", ".join(f'"{c}"' for c in columns)
        return self.scope.cur.sql(f"SELECT {cols} FROM {view}").to_arrow_table()

    def _bm25_scores(self, alias: str, column: str, query: str) -> dict[str, float]:
        texts = self._corpus(alias, [column]).column(0).to_pylist()
        return bm25_text_scores(texts, query)

    def _planned(self, expr: bytes, columns: list[str]) -> list[tuple[Any, float]] | None:
        """(row values, score) of the rows the planner's search returned for ``expr``."""
        found = self.scope.precomputed.get(expr)
        if found is None:
            return None
        from ...engine.planner import rows_by_rid
        from ...storage.tables import RID

        req, keys, scores = found
        rows = rows_by_rid(self.scope.session.db.store(req.info).dataset(req.info.as_of), keys,
                           columns + [RID])
        by_rid = {r: float(s) for r, s in zip(keys.tolist(), scores.tolist(), strict=True)}
        values = [_column_keys(rows.column(c)) for c in columns]
        rid_list = rows.column(RID).to_pylist()
        return [(tuple(v[i] for v in values), by_rid[r]) for i, r in enumerate(rid_list)]

    def bm25(self, left: pb.Node, col: tuple[str, TableInfo, ColumnType], query: str,
             expr_key: bytes = b"") -> pb.Node:
        alias, info, _ = col
        name = ast.names(left.column_ref.fields)[-1]
        planned = self._planned(expr_key, [name])
        if planned is not None:
            scores = {vals[0]: s for vals, s in planned}
        else:
            scores = self._bm25_scores(alias, name, query)

        def fn(texts: pa.ChunkedArray) -> pa.Array:
            vals = texts.to_pylist()
            return pa.array([scores.get(t, 0.0) if t is not None else None for t in vals],
                            pa.float64())
        return ast.func_call(self._udf(fn, [duckdb.sqltype("VARCHAR")]), [left])

    def hybrid(self, left: pb.Node, rec: pb.FuncCall) -> pb.Node:
        if ast.kind(left) != "row_expr" or len(left.row_expr.args) != 2:
            raise FeatureNotSupported(
                "hybrid search is written (embedding_column, text_column) <#> "
                "deeplake_hybrid_record(vector, 'query', w_vec, w_text)")
        emb_ref, text_ref = left.row_expr.args
        args = list(rec.args)
        if len(args) not in (2, 4):
            raise InvalidParameterValue(
                "deeplake_hybrid_record takes (vector, query [, vector_weight, text_weight])")
        emb_col = self.resolver.column(emb_ref.column_ref) \
            if ast.kind(emb_ref) == "column_ref" else None
        text_col = self.resolver.column(text_ref.column_ref) \
            if ast.kind(text_ref) == "column_ref" else None
        if emb_col is None or text_col is None:
            raise FeatureNotSupported("hybrid search needs two columns of one table")
        vec = _constant_value(args[0], self.scope, self.params)
        query = _constant_value(args[1], self.scope, self.params)
        w_vec = float(_constant_value(args[2], self.scope, self.params)) if len(args) == 4 \
            else 0.5
        w_text = float(_constant_value(args[3], self.scope, self.params)) if len(args) == 4 \
            else 0.5
        ndim = emb_col[2].ndim
        q = _vector(vec, ndim)
        emb_name = ast.names(emb_ref.column_ref.fields)[-1]
        text_name = ast.names(text_ref.column_ref.fields)[-1]
        etype = duckdb.list_type(duckdb.sqltype("FLOAT"))
        if ndim == 2:
            etype = duckdb.list_type(etype)
        planned = self._planned(self.expr_key, [emb_name, text_name])
        if planned is not None:
            table = dict(planned)

            def planned_fn(e: pa.ChunkedArray, t: pa.ChunkedArray) -> pa.Array:
                return pa.array([table.get((a, b)) for a, b in
                                 zip(_column_keys(e), _column_keys(t), strict=True)],
                                pa.float64())
            return ast.func_call(self._udf(planned_fn, [etype, duckdb.sqltype("VARCHAR")]),
                                 [emb_ref, text_ref])
        alias = emb_col[0]
        corpus = self._corpus(alias, [emb_name, text_name])
        vec_scores = self._score_column(corpus.column(0), q, ndim)
        texts = corpus.column(1).to_pylist()
        bm = bm25_text_scores(texts, str(query or ""))
        text_scores = np.array([bm.get(t, 0.0) if t is not None else np.nan for t in texts])
        from ...search import DEFAULT_FUSION

        method = self.scope.session.settings.get("tarndb.hybrid_fusion", DEFAULT_FUSION)
        fused = fuse_scores(vec_scores, text_scores, w_vec, w_text, method)
        # Rows are identified by their (embedding, text) values: both legs are functions
        # of those alone, so equal values always fuse to equal scores.
        lookup: dict[Any, float] = {}
        emb_vals = corpus.column(0).to_pylist()
        for e, t, s in zip(emb_vals, texts, fused, strict=True):
            lookup[(_key(e), t)] = float(s)

        def fn(e: pa.ChunkedArray, t: pa.ChunkedArray) -> pa.Array:
            return pa.array([lookup.get((_key(a), b)) for a, b in
                             zip(e.to_pylist(), t.to_pylist(), strict=True)], pa.float64())
        etype = duckdb.list_type(duckdb.sqltype("FLOAT"))
        if ndim == 2:
            etype = duckdb.list_type(etype)
        return ast.func_call(self._udf(fn, [etype, duckdb.sqltype("VARCHAR")]),
                             [emb_ref, text_ref])

    def _score_column(self, column: pa.ChunkedArray, q: np.ndarray, ndim: int) -> np.ndarray:
        from ...search import _kernels as K

        arr = column.combine_chunks()
        valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        out = np.full(len(arr), np.nan)
        if not valid.any():
            return out
        if ndim == 1:
            matrix, _ = K.vectors_from_arrow(arr)
            out[valid] = K.cosine_scores(matrix, q)
        else:
            packed = K.bags_from_arrow(arr, np.arange(len(arr), dtype=np.int64))
            out[valid] = K.maxsim_scores(packed, q)
        return out

    stmt: pb.Node
    expr_key: bytes = b""


def score_key(node: pb.Node, params: list[Any] | None = None) -> bytes:
    """``node`` serialized without its source positions and with each parameter replaced by
    its value: the same ``<#>`` expression written twice (in the select list and in ORDER BY,
    with ``$1`` and ``$2`` bound to one query) has one key, so both use the scores the
    planner's search computed over the whole table."""
    copy = pb.Node()
    copy.CopyFrom(node)
    _normalise(copy, params or [])
    return copy.SerializeToString(deterministic=True)


def _normalise(msg: Any, params: list[Any]) -> None:
    if isinstance(msg, pb.Node) and msg.WhichOneof("node") == "param_ref":
        n = msg.param_ref.number
        if 0 < n <= len(params):
            import hashlib

            v = params[n - 1]
            raw = v.tobytes() + str(v.dtype).encode() if isinstance(v, np.ndarray) \
                else repr(v).encode()
            msg.a_const.sval.sval = "\x00param " + hashlib.sha1(raw).hexdigest()
        return
    for fd, value in msg.ListFields():
        if fd.name == "location":
            msg.ClearField("location")
        elif fd.type == fd.TYPE_MESSAGE:
            if fd.is_repeated:
                for v in value:
                    _normalise(v, params)
            else:
                _normalise(value, params)


def bm25_text_scores(texts: list[str | None], query: str) -> dict[str, float]:
    """BM25 score of each distinct text against ``query``, with ``texts`` as the corpus.

    A document's BM25 score depends only on its own text and the corpus statistics, so equal
    texts score equally and a text -> score map is exact.
    """
    from ...search import BM25Index

    keys = np.arange(len(texts), dtype=np.int64)
    index = BM25Index()
    index.add(keys, texts)
    scores = index.score_rows(query, keys)
    return {t: float(s) for t, s in zip(texts, scores, strict=True) if t is not None}


def fuse_scores(vec: np.ndarray, text: np.ndarray, w_vec: float, w_text: float,
                method: str) -> np.ndarray:
    """Fused hybrid score of every row (NaN marks a row missing from a leg)."""
    from ...search import hybrid_fuse

    n = vec.size
    keys = np.arange(n, dtype=np.int64)
    vm, tm = ~np.isnan(vec), ~np.isnan(text)
    fused_keys, fused = hybrid_fuse((keys[vm], vec[vm]), (keys[tm], text[tm]), w_vec, w_text,
                                    method)
    out = np.zeros(n, np.float64)
    out[fused_keys] = fused
    return out


def _key(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, list):
        return tuple(_key(x) for x in v)
    return v


def _column_keys(col: pa.Array | pa.ChunkedArray) -> list[Any]:
    """Hashable keys of a column's values, equal exactly when the values are: an embedding
    (a list of floats) is keyed by the bytes of its float32 values, which costs one numpy
    slice per row instead of a Python float and a tuple entry per element (~3 ms of a
    hybrid query's 16 for ~20 rows of 384 dimensions); other values by :func:`_key`."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    t = arr.type
    listy = pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)
    if listy and pa.types.is_floating(t.value_type) and len(arr):
        # float4[] and vector(n) columns come back as float32 from Lance and from DuckDB's
        # FLOAT[] / FLOAT[n] alike: keyed as float32 on both sides (float8[] too: one rule).
        valid = arr.is_valid().to_numpy(zero_copy_only=False)
        rows = arr.to_numpy(zero_copy_only=False)
        return [np.asarray(r, np.float32).tobytes() if ok else None
                for r, ok in zip(rows, valid, strict=True)]
    return [_key(v) for v in arr.to_pylist()]


def apply(stmt: pb.Node, scope: Scope, params: list[Any]) -> None:
    """Rewrite every ``<#>`` and similarity function in ``stmt`` (already bound)."""
    rw = _Rewriter(scope, params)
    rw.stmt = stmt
    # Children first, so nested expressions are rewritten before their parents inspect them.
    nodes = [m for m in ast.walk(stmt) if isinstance(m, pb.Node)]
    for node in reversed(nodes):
        rw.rewrite(node)
