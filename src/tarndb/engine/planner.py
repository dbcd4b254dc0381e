"""The ranking planner: ``SELECT ... FROM t [WHERE ...] ORDER BY <#> score LIMIT k``.

Such a query is a top-k request. Instead of scoring every row in DuckDB, the planner

1. evaluates the WHERE clause in DuckDB to the set of allowed row ids (a prefilter; no WHERE,
   no filter),
2. asks ``tarndb.search`` for the k best allowed rows (it picks an index, an index with refill,
   or an exact scan by how selective the filter is, and never returns fewer than k rows when k
   rows match),
3. narrows the table's view to those rows, so the rest of the statement (the select list, the
   exact score, the final ORDER BY/LIMIT) runs in DuckDB over k rows.

Anything else (joins, GROUP BY, DISTINCT, a score that is not the first sort key, a session
with uncommitted changes to the table) keeps the exact per-row path.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from postgast import pg_query_pb2 as pb

from .. import errors as E
from ..sql import ast
from ..sql.rewrite import casts
from ..sql.rewrite import params as param_rule
from ..storage.tables import RID
from .catalog import TableInfo
from .filtercache import cache_key
from .lookup import stored_columns

if TYPE_CHECKING:
    from .scan import Scope


@dataclass
class TopK:
    alias: str
    info: TableInfo
    mode: str  # cosine | l2 | dot (pgvector's <-> / <#>) | maxsim | bm25 | hybrid
    columns: list[str]
    k: int
    #: pgvector's ORDER BY distance: rows without a vector sort last (NULL distance), so a
    #: search that finds fewer than k rows leaves the query to the exact path
    nulls_last: bool = False


def _sort_expr(sel: Any) -> pb.Node | None:
    if not sel.sort_clause:
        return None
    expr = sel.sort_clause[0].sort_by.node
    if ast.kind(expr) == "column_ref":
        parts = ast.names(expr.column_ref.fields)
        if len(parts) == 1:
            for t in sel.target_list:
                if t.res_target.name == parts[0]:
                    return t.res_target.val
    if ast.kind(expr) == "a_const" and isinstance(ast.const_value(expr), int):
        i = ast.const_value(expr) - 1
        if 0 <= i < len(sel.target_list):
            return sel.target_list[i].res_target.val
    return expr


def _int(node: pb.Node, params: list[Any]) -> int | None:
    k = ast.kind(node)
    if k == "a_const" and isinstance(ast.const_value(node), int):
        return int(ast.const_value(node))
    if k == "param_ref" and node.param_ref.number <= len(params):
        v = params[node.param_ref.number - 1]
        return int(v) if isinstance(v, (int, np.integer)) else None
    return None


def _is_constant(node: pb.Node) -> bool:
    return not any(isinstance(m, pb.ColumnRef) for m in ast.walk(node))


def _column_and_constant(sel: Any, expr: pb.Node, alias: str
                         ) -> tuple[str, pb.Node, pb.Node] | None:
    """For an ascending ``ORDER BY f(a, b)`` of a distance function: the column one operand
    names, that operand, and the other, a constant (either order); None otherwise."""
    if sel.sort_clause[0].sort_by.sortby_dir == pb.SORTBY_DESC:
        return None
    args = list(expr.func_call.args)
    if len(args) != 2:
        return None
    left, right = args
    col = _column(left, alias)
    if col is None:
        left, right = right, left
        col = _column(left, alias)
    if col is None or not _is_constant(right):
        return None
    return col, left, right


def _column(node: pb.Node, alias: str) -> str | None:
    if ast.kind(node) != "column_ref":
        return None
    parts = ast.names(node.column_ref.fields)
    if len(parts) > 2 or (len(parts) == 2 and parts[0] != alias) or parts[-1] == "*":
        return None
    return parts[-1]


def _request(sel: Any, scope: Scope, params: list[Any]) -> tuple[TopK, pb.Node] | None:
    if (len(sel.from_clause) != 1 or ast.kind(sel.from_clause[0]) != "range_var"
            or sel.group_clause or sel.distinct_clause or sel.HasField("having_clause")
            or not sel.HasField("limit_count") or sel.window_clause or sel.op != pb.SETOP_NONE):
        return None
    rv = sel.from_clause[0].range_var
    alias = rv.alias.aliasname
    info = scope.tables.get(alias)
    if info is None or scope.session.pending_change(info) is not None:
        return None
    limit = _int(sel.limit_count, params)
    offset = _int(sel.limit_offset, params) if sel.HasField("limit_offset") else 0
    if limit is None or offset is None or limit <= 0:
        return None
    expr = _sort_expr(sel)
    if expr is not None and ast.kind(expr) == "func_call" and \
            ast.func_name(expr.func_call) in _SPARSE_METRICS:
        return _sparse_request(sel, expr, alias, info, limit + offset)
    if expr is not None and ast.kind(expr) == "func_call" and \
            ast.func_name(expr.func_call) == "cosine_distance":
        return _distance_request(sel, expr, alias, info, limit + offset, "cosine")
    if expr is not None and ast.kind(expr) == "func_call" and \
            ast.func_name(expr.func_call) == "l2_distance":
        return _distance_request(sel, expr, alias, info, limit + offset, "l2")
    if expr is not None and ast.kind(expr) == "a_expr" and ast.op_name(expr.a_expr) == "-" \
            and not expr.a_expr.HasField("lexpr") and ast.kind(expr.a_expr.rexpr) == "func_call" \
            and ast.func_name(expr.a_expr.rexpr.func_call) == "inner_product":
        # ``<#>`` on vector: pgvector's negative inner product (rewritten to
        # ``(- inner_product(a, b))``), nearest first.
        return _distance_request(sel, expr.a_expr.rexpr, alias, info, limit + offset, "dot")
    if expr is None or ast.kind(expr) != "a_expr" or ast.op_name(expr.a_expr) != "<#>":
        return None
    left, right = expr.a_expr.lexpr, expr.a_expr.rexpr
    if ast.kind(right) == "func_call" and \
            ast.func_name(right.func_call) == "deeplake_hybrid_record":
        if ast.kind(left) != "row_expr" or len(left.row_expr.args) != 2:
            return None
        cols = [_column(a, alias) for a in left.row_expr.args]
        if None in cols or not all(_is_constant(a) for a in right.func_call.args):
            return None
        return TopK(alias, info, "hybrid", [c for c in cols if c], limit + offset), expr
    col = _column(left, alias)
    if col is None or not _is_constant(right):
        return None
    ci = info.column(col)
    mode = _ranking_mode(ci) if ci is not None else None
    if mode is None:
        return None
    return TopK(alias, info, mode, [col], limit + offset), expr


def _ranking_mode(ci: Any) -> str | None:
    """How ``<#>`` ranks a column of this type: cosine (a vector), MaxSim (a bag of vectors)
    or BM25 (text); None when it cannot."""
    if ci.type.ndim == 1 and ci.type.base in ("float4", "float8"):
        return "cosine"
    if ci.type.ndim == 2:
        return "maxsim"
    if ci.type.ndim == 0 and ci.type.base in ("text", "varchar", "bpchar"):
        return "bm25"
    return None


#: The operator pgvector writes for each metric (for EXPLAIN's plan line).
_METRIC_OPERATORS = {"cosine": "<=>", "l2": "<->", "dot": "<#>"}


def _distance_request(sel: Any, expr: pb.Node, alias: str, info: TableInfo, k: int,
                      metric: str) -> tuple[TopK, pb.Node] | None:
    """pgvector's ``ORDER BY col <=> | <-> | <#> $1 [ASC] LIMIT k`` (rewritten to
    ``cosine_distance``, ``l2_distance``, ``- inner_product``): the k nearest rows, which the
    column's vector index answers when it ranks by the same metric (cosine: always planned,
    exactly without such an index; l2 and dot: only with one, pgvector's ``vector_l2_ops``
    or ``vector_ip_ops``, else the exact SQL runs). SQL then computes the distances of those
    k rows and sorts them."""
    found = _column_and_constant(sel, expr, alias)
    if found is None:
        return None
    col, left, right = found
    ci = info.column(col)
    if ci is None or ci.type.ndim != 1 or ci.type.base not in ("float4", "float8"):
        return None
    if metric != "cosine":
        if not any(ix.column == col and ix.options.get("metric") == metric
                   for ix in info.indexes):
            return None
    # The planner reads the query from a ``<#>``-shaped expression: give it one.
    shaped = pb.Node()
    shaped.a_expr.kind = pb.AEXPR_OP
    shaped.a_expr.name.add().string.sval = _METRIC_OPERATORS[metric]
    shaped.a_expr.lexpr.CopyFrom(left)
    shaped.a_expr.rexpr.CopyFrom(right)
    return TopK(alias, info, metric, [col], k, nulls_last=True), shaped


#: pgvector's sparsevec operators as sql/rewrite/sparsevec.py writes them -> the metric
_SPARSE_METRICS = {"sparsevec_l2_distance": "l2", "sparsevec_cosine_distance": "cosine",
                   "sparsevec_negative_inner_product": "dot", "sparsevec_l1_distance": "l1"}


def _sparse_request(sel: Any, expr: pb.Node, alias: str, info: TableInfo, k: int
                    ) -> tuple[TopK, pb.Node] | None:
    """``ORDER BY s <-> | <=> | <#> | <+> $1 LIMIT k`` on a sparsevec column: the k nearest
    rows by an exact sparse scan (engine/sparse_ops.py), with or without pgvector's index
    (tarndb's vector index is over dense vectors; a sparsevec index is accepted and named
    in EXPLAIN, and answers by this scan)."""
    found = _column_and_constant(sel, expr, alias)
    if found is None:
        return None
    col, left, right = found
    ci = info.column(col)
    if ci is None or not ci.type.is_sparse:
        return None
    metric = _SPARSE_METRICS[ast.func_name(expr.func_call)]
    shaped = pb.Node()
    shaped.a_expr.kind = pb.AEXPR_OP
    shaped.a_expr.name.add().string.sval = metric
    shaped.a_expr.lexpr.CopyFrom(left)
    shaped.a_expr.rexpr.CopyFrom(right)
    return TopK(alias, info, "sparse_" + metric, [ci.name], k, nulls_last=True), shaped


def _sparse_hits(req: TopK, ds: Any, value: Any, allowed: np.ndarray | None) -> Any:
    """The sparse top-k as the search module's Hits (plan text names the index, if any)."""
    from ..search import Hits
    from . import sparse_scan
    from . import sparsevec as sv

    metric = req.mode[len("sparse_"):]
    col = req.columns[0]
    keys, dists = sparse_scan.topk(ds, col, sv.of(value), req.k, metric, allowed)
    kind = {"dot": "ip"}.get(metric, metric)  # the opclass that serves this operator
    ix = next((i for i in req.info.indexes if i.column == col
               and i.options.get("opclass") == f"sparsevec_{kind}_ops"), None)
    how = f"index {ix.name} ({ix.options.get('opclass')}), " if ix is not None else ""
    return Hits(keys, dists.astype(np.float32), f"{how}exact sparse scan")


def _allowed_rids(sel: Any, scope: Scope, req: TopK, params: list[Any],
                  version: int, ds: Any = None) -> np.ndarray | None:
    """The row ids of ``version`` that the WHERE clause lets through (None: no WHERE).
    ``ds``: the table at ``version``, for the in-memory answer of ``int_col = value``."""
    if not sel.HasField("where_clause"):
        return None
    if any(isinstance(m, pb.A_Expr) and ast.op_name(m) == "<#>"
           for m in ast.walk(sel.where_clause)):
        raise _NotPlannable
    session = scope.session
    if ds is not None and session.pending_change(req.info) is None:
        found = _int_equality_rids(sel.where_clause, req, params, ds)
        if found is not None:
            return found
    key = None
    info = req.info
    if session.pending_change(info) is None:
        # Evaluated on exactly the version searched, so the answer can be kept for it.
        info = replace(info, as_of=version)
        key = cache_key(sel.where_clause, info.path, version, params, session.settings)
    cache = session.db.filter_cache
    if key is not None and (found := cache.get(key)) is not None:
        return found
    q = pb.Node()
    s = q.select_stmt
    s.target_list.add().res_target.val.CopyFrom(ast.column_ref(req.alias, RID))
    rv = s.from_clause.add().range_var
    rv.relname = scope.view(info, with_rid=True, mask=scope.masks.get(req.alias))
    rv.inh = True
    rv.relpersistence = "p"
    rv.alias.aliasname = req.alias
    s.where_clause.CopyFrom(sel.where_clause)
    casts.apply(q)
    sql, values = param_rule.apply(q, params)
    table, _ = session.run_duckdb(sql, values)
    rids = np.asarray(table.column(0).to_numpy(), dtype=np.int64)
    if key is not None:
        cache.put(key, rids)
    return rids


class _NotPlannable(Exception):
    pass


def _int_equality_rids(where: pb.Node, req: TopK, params: list[Any], ds: Any
                       ) -> np.ndarray | None:
    """``int_column = value`` (a constant or a parameter) answered from the column's
    in-memory copy (engine/colcache.py, a binary search per fragment) instead of a DuckDB
    scan of the table (100k rows: ~6 ms); None for any other WHERE."""
    from . import colcache

    if ast.kind(where) != "a_expr" or where.a_expr.kind != pb.AEXPR_OP or \
            ast.op_name(where.a_expr) != "=":
        return None
    left, right = where.a_expr.lexpr, where.a_expr.rexpr
    col = _column(left, req.alias)
    if col is None:
        left, right = right, left
        col = _column(left, req.alias)
    ci = req.info.column(col) if col is not None else None
    if ci is None or ci.type.ndim or ci.type.base not in ("int2", "int4", "int8"):
        return None
    value: Any = None
    if ast.kind(right) == "a_const":
        value = ast.const_value(right)
    elif ast.kind(right) == "param_ref" and right.param_ref.number <= len(params):
        value = params[right.param_ref.number - 1]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        return None
    # Ascending and unique already (np.unique would hash them: ~3 ms for 10k rows).
    return colcache.rids_for_value(ds, ci.name, int(value))


def _query_value(node: pb.Node, scope: Scope, params: list[Any]) -> Any:
    from ..sql.rewrite.similarity import _constant_value

    return _constant_value(node, scope, params)


def plan(stmt: pb.Node, scope: Scope, params: list[Any]) -> None:
    """Narrow the table of a top-k ranking query to its k best rows (see module doc)."""
    if ast.kind(stmt) != "select_stmt" or scope.describing:
        return
    sel = stmt.select_stmt
    found = _request(sel, scope, params)
    if found is None:
        return
    req, expr = found
    from .. import search

    db = scope.session.db
    ds = db.store(req.info).dataset(req.info.as_of)
    # A pinned version ("t@12") is answered exactly: an approximate index's answer depends on
    # how far the index has been folded when the query runs, and a query on a fixed version
    # must return the same rows whenever it runs (training sets rely on it).
    exact = req.info.as_of is not None
    try:
        allowed = _allowed_rids(sel, scope, req, params, ds.version, ds)
    except _NotPlannable:
        return
    if allowed is not None and allowed.size == 0:
        hits_keys = np.zeros(0, np.int64)
        plan_text = "empty filter"
    else:
        right = expr.a_expr.rexpr
        if req.mode == "hybrid":
            args = list(right.func_call.args)
            if len(args) not in (2, 4):
                raise E.InvalidParameterValue(
                    "deeplake_hybrid_record takes (vector, query [, vector_weight, "
                    "text_weight])")
            vec = _query_value(args[0], scope, params)
            text = _query_value(args[1], scope, params)
            w_vec = float(_query_value(args[2], scope, params)) if len(args) == 4 else 0.5
            w_text = float(_query_value(args[3], scope, params)) if len(args) == 4 else 0.5
            method = scope.session.settings.get("tarndb.hybrid_fusion", search.DEFAULT_FUSION)
            hits = search.hybrid_topk(ds, req.columns[0], req.columns[1], vec, str(text or ""),
                                      req.k, w_vec=w_vec, w_text=w_text, method=method,
                                      allowed_row_keys=allowed, exact=exact)
        else:
            value = _query_value(right, scope, params)
            if value is None:
                raise E.DataError("the query of <#> must not be NULL")
            if req.mode.startswith("sparse_"):
                hits = _sparse_hits(req, ds, value, allowed)
            elif req.mode in ("cosine", "l2", "dot"):
                hits = search.vector_topk(ds, req.columns[0], _array(value), req.k,
                                          allowed_row_keys=allowed, exact=exact,
                                          params=search.ann_params(scope.session.settings),
                                          metric=req.mode)
            elif req.mode == "maxsim":
                hits = search.maxsim_topk(ds, req.columns[0], _array(value), req.k,
                                          allowed_row_keys=allowed, exact=exact,
                                          params=search.ann_params(scope.session.settings))
            else:
                hits = search.bm25_topk(ds, req.columns[0], str(value), req.k,
                                        allowed_row_keys=allowed, exact=exact)
        hits_keys = np.asarray(hits.row_keys, dtype=np.int64)
        hits_scores = np.asarray(hits.scores)
        plan_text = hits.plan
        if req.nulls_last and hits_keys.size < req.k:
            return  # fewer rows with a vector than k: NULL distances fill up, exactly
        if req.mode == "bm25" and hits_keys.size < req.k:
            # A BM25 search returns only rows that hold a query term; SQL returns min(k, rows)
            # rows, the others scoring 0 (and rows without text NULL, sorted last), exactly
            # as the per-row path does.
            fill = _bm25_fill(ds, req.columns[0], allowed, hits_keys, req.k - hits_keys.size)
            if fill.size:
                plan_text += f", {fill.size} row(s) without a query term (score 0)"
                hits_keys = np.concatenate([hits_keys, fill])
                hits_scores = np.concatenate([hits_scores.astype(np.float64),
                                              np.zeros(fill.size, np.float64)])
        if req.mode in ("bm25", "hybrid"):
            from ..sql.rewrite.similarity import score_key

            scope.precomputed[score_key(expr, params)] = (req, hits_keys, hits_scores)
    scope.plan.append(f"Top-{req.k} {req.mode} on {req.info.name}.{','.join(req.columns)}: "
                      f"{plan_text}" + (f", prefilter allowed {allowed.size} row(s)"
                                        if allowed is not None else ""))
    scope.restrict(req.alias, req.info, hits_keys)


def _bm25_fill(ds: Any, column: str, allowed: np.ndarray | None, hits: np.ndarray,
               need: int) -> np.ndarray:
    """Up to ``need`` allowed rows that are not in ``hits``: rows with text first (they score
    0), then rows whose text is NULL. Rows are taken in ``__rid`` order, a batch at a time."""
    from ..storage.rowmap import live_rids

    pool = live_rids(ds) if allowed is None else np.sort(np.asarray(allowed, np.int64))
    if hits.size:
        pool = pool[~np.isin(pool, hits)]
    with_text: list[np.ndarray] = []
    without: list[np.ndarray] = []
    found = 0
    batch = max(64, 4 * need)
    for start in range(0, pool.size, batch):
        rows = rows_by_rid(ds, pool[start:start + batch], [RID, column])
        valid = np.asarray(rows.column(column).is_valid().to_numpy(zero_copy_only=False), bool)
        rids = np.asarray(rows.column(RID).to_numpy(), np.int64)
        with_text.append(np.sort(rids[valid]))
        without.append(np.sort(rids[~valid]))
        found += int(valid.sum())
        if found >= need:
            break
    out = np.concatenate(with_text + without) if with_text else np.zeros(0, np.int64)
    return out[:need]


def _array(value: Any) -> Any:
    if isinstance(value, str):
        from ..sql.rewrite.similarity import _parse_pg_array

        return np.asarray(_parse_pg_array(value), dtype=np.float32)
    return np.asarray(value, dtype=np.float32)


def rows_by_rid(ds: Any, rids: np.ndarray, columns: list[str] | None = None) -> pa.Table:
    # A take by row address, not a filter over every row's __rid (see rowmap).
    from ..storage.rowmap import rows_by_rid as take

    return take(ds, rids, columns)


# -- the direct path -------------------------------------------------------------------------

#: WHERE clauses the direct path evaluates: comparisons, ranges, lists, NULL tests and their
#: boolean combinations of scalar columns with constants (a jsonb or array operator needs the
#: rewrites of the general path first).
_FILTER_NODES = (pb.A_Expr, pb.BoolExpr, pb.NullTest, pb.ColumnRef, pb.A_Const, pb.ParamRef,
                 pb.List, pb.String, pb.Integer, pb.Float, pb.Boolean, pb.TypeCast, pb.TypeName)
_FILTER_OPS = {"=", "<>", "!=", "<", ">", "<=", ">="}
_FILTER_EXPRS = {pb.AEXPR_OP, pb.AEXPR_IN, pb.AEXPR_BETWEEN, pb.AEXPR_NOT_BETWEEN}
_FILTER_TYPES = {"int2", "int4", "int8", "float4", "float8", "text", "varchar", "bpchar",
                 "bool", "date", "timestamp", "timestamptz", "numeric", "uuid"}


def _filter_shape(where: pb.Node) -> list[list[str]] | None:
    """The column references (name parts) of a WHERE clause the direct path evaluates (see
    _FILTER_NODES), or None for any other clause. What depends on the table (the columns'
    types) is :func:`_filter_columns_ok`'s."""
    refs: list[list[str]] = []
    for m in ast.walk(where):
        if isinstance(m, pb.Node):
            continue
        if not isinstance(m, _FILTER_NODES):
            return None
        if isinstance(m, pb.A_Expr) and (m.kind not in _FILTER_EXPRS or (
                m.kind == pb.AEXPR_OP and ast.op_name(m) not in _FILTER_OPS)):
            return None
        if isinstance(m, pb.ColumnRef):
            refs.append(ast.names(m.fields))
    return refs


def _filter_columns_ok(refs: list[list[str]], info: TableInfo, alias: str) -> bool:
    for parts in refs:
        if len(parts) > 2 or (len(parts) == 2 and parts[0] != alias):
            return False
        col = info.column(parts[-1])
        if col is None or col.type.ndim or col.type.base not in _FILTER_TYPES:
            return False
    return True


def _simple_filter(where: pb.Node, info: TableInfo, alias: str) -> bool:
    refs = _filter_shape(where)
    return refs is not None and _filter_columns_ok(refs, info, alias)


def _parts_column(parts: list[str] | None, alias: str) -> str | None:
    """:func:`_column` of a column reference's name parts."""
    if parts is None or len(parts) > 2 or (len(parts) == 2 and parts[0] != alias) or \
            parts[-1] == "*":
        return None
    return parts[-1]


_NOT_GIVEN = object()


@dataclass(frozen=True)
class _Operand:
    """A LIMIT / OFFSET count or an ``int_col = value`` value: a constant or ``$n``."""

    const: Any = _NOT_GIVEN
    param: int = 0

    @staticmethod
    def of(node: pb.Node) -> _Operand | None:
        k = ast.kind(node)
        if k == "a_const":
            return _Operand(const=ast.const_value(node))
        if k == "param_ref":
            return _Operand(param=node.param_ref.number)
        return None

    def value(self, params: list[Any]) -> Any:
        """The value (_NOT_GIVEN for a parameter that was not given)."""
        if self.param:
            return params[self.param - 1] if self.param <= len(params) else _NOT_GIVEN
        return self.const

    def count(self, params: list[Any]) -> int | None:
        """:func:`_int`'s answer."""
        v = self.value(params)
        if self.param:
            return int(v) if isinstance(v, (int, np.integer)) else None
        return int(v) if isinstance(v, int) else None


@dataclass(frozen=True)
class _Shape:
    """What :func:`try_direct` reads from a statement's parse tree alone, kept per statement
    (its serialized tree): checking the tree's shape again on every call of a prepared
    ranking cost more than the rest of the statement around the search."""

    schema: str
    relname: str
    alias: str | None  # the FROM item's alias (None: the table's name)
    op: str
    sort_by: Any  # the SortBy node (its direction)
    sort_col: list[str] | None  # the ordered column's name parts
    expr: pb.Node  # the ranking expression (for score_key)
    right: pb.Node  # the query side
    limit: _Operand
    offset: _Operand | None
    #: select list: ("col", ResTarget) or ("score", ResTarget, the same expression as the
    #: ranking's for any parameters)
    targets: list[tuple[Any, ...]]
    where: pb.Node | None
    where_refs: list[list[str]]
    #: ``col = value`` (either order): (the column's name parts, the value), for the
    #: in-memory answer of an integer column
    int_eq: tuple[list[str], _Operand] | None


#: Statement (serialized parse tree) -> its _Shape, or None when try_direct does not answer
#: it. Bounded; cleared when full.
_SHAPES: dict[bytes, _Shape | None] = {}
_SHAPES_MAX = 512


def _direct_shape(stmt: pb.Node) -> _Shape | None:
    """The tree-only checks of :func:`try_direct` (everything that does not depend on the
    table, the session or the parameters)."""
    from ..sql.rewrite.similarity import score_key

    sel = stmt.select_stmt
    if (len(sel.from_clause) != 1 or ast.kind(sel.from_clause[0]) != "range_var"
            or sel.group_clause or sel.distinct_clause or sel.HasField("having_clause")
            or not sel.HasField("limit_count") or sel.window_clause or sel.op != pb.SETOP_NONE
            or sel.with_clause.ctes or sel.HasField("into_clause") or sel.locking_clause
            or len(sel.sort_clause) != 1 or sel.values_lists):
        return None
    rv = sel.from_clause[0].range_var
    if rv.schemaname in ("pg_catalog", "information_schema") or rv.relname == "_files":
        return None
    expr = _sort_expr(sel)
    if expr is None or ast.kind(expr) != "a_expr":
        return None
    op = ast.op_name(expr.a_expr)
    if op not in ("<#>", "<=>", "<->"):
        return None
    sort_by = sel.sort_clause[0].sort_by
    if sort_by.use_op or sort_by.sortby_nulls != pb.SORTBY_NULLS_DEFAULT:
        return None
    right = expr.a_expr.rexpr
    if ast.kind(right) == "func_call" or not _is_constant(right):
        return None
    limit = _Operand.of(sel.limit_count)
    offset = _Operand.of(sel.limit_offset) if sel.HasField("limit_offset") else None
    if limit is None or (offset is None and sel.HasField("limit_offset")):
        return None
    lexpr = expr.a_expr.lexpr
    sort_col = ast.names(lexpr.column_ref.fields) if ast.kind(lexpr) == "column_ref" else None
    # Parameters stand for themselves: a select-list score with the ranking's own
    # expression (the same parameters) is its score whatever they are bound to.
    most = max((m.number for m in ast.walk(stmt) if isinstance(m, pb.ParamRef)), default=0)
    symbolic = [f"\x00${i + 1}" for i in range(most)]
    targets: list[tuple[Any, ...]] = []
    for t in sel.target_list:
        rt = t.res_target
        if rt.indirection:
            return None
        if ast.kind(rt.val) == "column_ref":
            targets.append(("col", rt))
        elif ast.kind(rt.val) == "a_expr" and ast.op_name(rt.val.a_expr) == op:
            targets.append(("score", rt,
                            score_key(rt.val, symbolic) == score_key(expr, symbolic)))
        else:
            return None
    where = sel.where_clause if sel.HasField("where_clause") else None
    refs = _filter_shape(where) if where is not None else []
    if refs is None:
        return None
    int_eq = None
    if where is not None and ast.kind(where) == "a_expr" and \
            where.a_expr.kind == pb.AEXPR_OP and ast.op_name(where.a_expr) == "=":
        a, b = where.a_expr.lexpr, where.a_expr.rexpr
        if ast.kind(a) != "column_ref":
            a, b = b, a
        value = _Operand.of(b)
        if ast.kind(a) == "column_ref" and value is not None:
            int_eq = (ast.names(a.column_ref.fields), value)
    return _Shape(rv.schemaname, rv.relname, rv.alias.aliasname if rv.HasField("alias")
                  else None, op, sort_by, sort_col, expr, right, limit, offset, targets, where,
                  refs, int_eq)


def try_direct(session: Any, stmt: pb.Node, params: list[Any]) -> Any:
    """``SELECT columns[, score] FROM t [WHERE simple filter] ORDER BY col <#> q LIMIT k``
    answered without DuckDB planning the statement: the search picks the k rows, Lance hands
    over just the selected columns of those rows, and the exact scores order them. Returns
    None for any other shape (the general path answers, with the same rows).

    The general path registers the table, builds views, re-points the statement at the k
    rows (reading every column of them, vectors included), registers a scoring function and
    runs DuckDB over them: 5-30 ms of fixed cost on top of the search. Here it is the
    statement's kept shape (:class:`_Shape`), one take of the selected columns (from memory
    for fixed-width and narrow text columns) and a sort of k scores.
    """
    blob = stmt.SerializeToString()
    shape = _SHAPES.get(blob, _NOT_GIVEN)
    if shape is _NOT_GIVEN:
        shape = _direct_shape(stmt)
        if len(_SHAPES) >= _SHAPES_MAX:
            _SHAPES.clear()
        _SHAPES[blob] = shape
    if shape is None:
        return None
    assert isinstance(shape, _Shape)
    return _run_direct(session, stmt, shape, params)


def _run_direct(session: Any, stmt: pb.Node, shape: _Shape, params: list[Any]) -> Any:
    from ..sql.rewrite import ranking
    from ..sql.rewrite.similarity import score_key
    from .result import Column, Result
    from .types import ColumnType

    limit = shape.limit.count(params)
    offset = shape.offset.count(params) if shape.offset is not None else 0
    if limit is None or offset is None or limit <= 0 or offset < 0:
        return None
    info = session.resolve_table(shape.schema or None, shape.relname)
    if info is None or (info.read_only and info.as_of is None) or \
            session.pending_change(info) is not None:
        return None
    alias = shape.alias or info.name
    col_name = _parts_column(shape.sort_col, alias)
    ci = info.column(col_name) if col_name else None
    if ci is None:
        return None
    op, sort_by = shape.op, shape.sort_by
    # pgvector's distances (``<=>``, ``<->``, and ``<#>`` on vector: nearest first, the
    # distance as the score) or pg_deeplake's ``<#>`` on float4[] (a similarity).
    metric = _pgvector_metric(op, ci, info, sort_by)
    mode: str | None
    if op != "<#>" or ci.type.is_vector:
        if metric is None:
            return None
        mode = metric
    else:
        mode = _ranking_mode(ci)
    if mode is None:
        return None
    # Output columns: stored columns by name, or the ranking score itself.
    outputs: list[tuple[str, Any]] = []  # (output name, ColumnInfo or None for the score)
    for target in shape.targets:
        rt = target[1]
        if target[0] == "col":
            found = stored_columns(rt, alias, info)
            if found is None:
                return None
            outputs.extend(found)
        elif target[2] or score_key(rt.val, params) == score_key(shape.expr, params):
            from ..sql import colnames

            outputs.append((rt.name or colnames.figure(rt.val), None))
        else:
            return None
    if shape.where is not None and not _filter_columns_ok(shape.where_refs, info, alias):
        return None
    from .scan import column_mask

    mask = column_mask(session, info)
    if mask is not None and (shape.where is not None or ci.name not in mask or any(
            c is not None and c.name not in mask for _, c in outputs)):
        return None  # a role reading through column grants: the general path's view
    from .. import search

    store = session.db.store(info)
    if info.as_of is not None or (session.in_transaction and session.serializable):
        version = info.as_of if info.as_of is not None else session.snapshot_version(info)
        ds = store.dataset(version)
    else:  # READ COMMITTED: the newest version, recorded as the statement's read
        ds = store.dataset()
        version = session.read_versions[info.path] = ds.version
        session.read_seqs.pop(info.path, None)
    exact = info.as_of is not None
    req = TopK(alias, info, mode, [ci.name], limit + offset)
    allowed = None
    if shape.where is not None:
        allowed = _direct_int_equality(shape, alias, info, params, ds)
        if allowed is None:
            from .scan import Scope

            scope = Scope(session)
            try:
                allowed = _allowed_rids(stmt.select_stmt, scope, req, params, version, ds)
            finally:
                scope.close()
    value = _constant_value_direct(shape.right, session, params)
    if value is None:
        if metric is not None:
            return None  # a NULL distance for every row: the general path
        raise E.DataError("the query of <#> must not be NULL")
    query = None
    if metric is not None:
        try:
            query = _array(value)
        except (E.TarnError, ValueError, TypeError):
            return None
        if query.ndim != 1 or query.size == 0 or not np.isfinite(query).all() or (
                metric == "cosine" and not query.any()) or (
                ci.type.dim is not None and query.size != ci.type.dim):
            return None  # pgvector's errors and NaN distances: the general path
    filled = False
    if allowed is not None and allowed.size == 0:
        keys, scores = np.zeros(0, np.int64), np.zeros(0, np.float64)
    else:
        if mode in ("cosine", "l2", "dot"):
            try:
                hits = search.vector_topk(ds, ci.name,
                                          _array(value) if query is None else query, req.k,
                                          allowed_row_keys=allowed, exact=exact,
                                          params=search.ann_params(session.settings),
                                          metric=mode)
            except E.DataError:
                if metric is None:
                    raise
                return None  # e.g. dimensions that differ: pgvector's error, from SQL
        elif mode == "maxsim":
            hits = search.maxsim_topk(ds, ci.name, _array(value), req.k,
                                      allowed_row_keys=allowed, exact=exact,
                                      params=search.ann_params(session.settings))
        else:
            hits = search.bm25_topk(ds, ci.name, str(value), req.k, allowed_row_keys=allowed,
                                    exact=exact)
        # The search's scores are exact (an index's candidates are re-scored exactly).
        keys = np.asarray(hits.row_keys, np.int64)
        scores = np.asarray(hits.scores, np.float64)
        if metric is not None and keys.size < req.k:
            return None  # fewer rows with a vector than k: NULL distances fill up
        if mode == "bm25" and keys.size < req.k:
            fill = _bm25_fill(ds, ci.name, allowed, keys, req.k - keys.size)
            keys = np.concatenate([keys, fill])
            scores = np.concatenate([scores, np.zeros(fill.size, np.float64)])
            filled = fill.size > 0
    # Rows without text among the filling rows score NULL: their text is read to know.
    wanted = list(dict.fromkeys(([ci.name] if filled else [])
                                + [c.name for _, c in outputs if c is not None]))
    got = _cached_columns(ds, keys, wanted)
    if got is not None:
        rids, exact_scores = keys, scores  # in the search's order
    else:
        rows = rows_by_rid(ds, keys, [RID] + wanted)
        got = {c: rows.column(c) for c in wanted}
        rids = np.asarray(rows.column(RID).to_numpy(), np.int64)
        by_rid = dict(zip(keys.tolist(), scores.tolist(), strict=True))
        exact_scores = np.array([by_rid.get(r, np.nan) for r in rids.tolist()], np.float64)
    if filled:
        exact_scores = exact_scores.copy()
        valid = np.asarray(got[ci.name].is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        exact_scores[~valid] = np.nan
    # Best first, NULL scores last (the ranking rule); then OFFSET and LIMIT.
    nan = np.isnan(exact_scores)
    if nan.any():
        order = np.lexsort((rids, -np.where(nan, -np.inf, exact_scores), nan))
    else:
        order = np.lexsort((rids, -exact_scores))
    order = order[offset:offset + limit]
    shown = exact_scores[order]
    if metric is not None:  # pgvector's distance from the search's score
        shown = (1.0 - shown if metric == "cosine" else -shown if metric == "dot"
                 else np.sqrt(np.maximum(-shown, 0.0)))
    in_place = order.size == rids.size and bool((order == np.arange(order.size)).all())
    take = None if in_place else pa.array(order, pa.int64())
    data: dict[str, Any] = {}
    for i, (_, c) in enumerate(outputs):
        if c is None:
            data[str(i)] = pa.array(shown, pa.float64(), mask=np.isnan(shown))
        else:
            col = got[c.name]
            data[str(i)] = col if take is None else col.take(take)
    out = pa.table(data) if data else pa.table({})
    limit_bytes = session.db.max_result_bytes
    # (k rows of fixed-width columns are far below any limit: Table.nbytes walks every
    # buffer, a twentieth of the statement)
    if limit_bytes and (out.num_rows * 16 * len(outputs) > limit_bytes
                        or any(c is not None and not _fixed_width(c.type) for _, c in outputs)) \
            and out.nbytes > limit_bytes:
        return None  # the general path reports it
    cols = [Column(name, ColumnType("float8") if c is None else c.type) for name, c in outputs]
    notices = [ranking.NOTICE] if sort_by.sortby_dir == pb.SORTBY_ASC and metric is None \
        else []
    return Result(columns=cols, command=f"SELECT {out.num_rows}", rowcount=out.num_rows,
                  notices=notices, _arrow=out)


_FIXED_WIDTH = {"int2", "int4", "int8", "float4", "float8", "bool", "date", "timestamp",
                "timestamptz"}


def _fixed_width(ctype: Any) -> bool:
    """A scalar of at most 8 bytes in Arrow (the result-size check skips such columns)."""
    return not ctype.ndim and ctype.base in _FIXED_WIDTH and not ctype.is_vector


def _direct_int_equality(shape: _Shape, alias: str, info: TableInfo, params: list[Any],
                         ds: Any) -> np.ndarray | None:
    """:func:`_int_equality_rids` from the statement's kept shape (no tree walk)."""
    from . import colcache

    if shape.int_eq is None:
        return None
    col = _parts_column(shape.int_eq[0], alias)
    ci = info.column(col) if col is not None else None
    if ci is None or ci.type.ndim or ci.type.base not in ("int2", "int4", "int8"):
        return None
    value = shape.int_eq[1].value(params)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        return None
    return colcache.rids_for_value(ds, ci.name, int(value))


def _pgvector_metric(op: str, ci: Any, info: TableInfo, sort_by: Any) -> str | None:
    """The search metric of pgvector's ``ORDER BY col <op> q [ASC]`` (``<=>`` cosine,
    ``<->`` l2, ``<#>`` on vector dot) where the direct path serves it: a vector(n) or
    float4[] column, nearest first, and for l2 / dot an index of that metric (pgvector's
    vector_l2_ops / vector_ip_ops); None otherwise."""
    if sort_by.sortby_dir == pb.SORTBY_DESC or ci.type.ndim != 1 or \
            ci.type.base not in ("float4", "float8") or \
            (ci.type.is_vector and ci.type.vector_name != "vector"):
        return None
    if op == "<#>" and not ci.type.is_vector:
        return None  # pg_deeplake's similarity
    metric = {"<=>": "cosine", "<->": "l2", "<#>": "dot"}[op]
    if metric != "cosine" and not any(ix.column == ci.name and ix.options.get("metric") ==
                                      metric for ix in info.indexes):
        return None
    return metric


def _cached_columns(ds: Any, rids: np.ndarray, columns: list[str]
                    ) -> dict[str, pa.Array] | None:
    """The rows' ``columns`` (in the order of ``rids``) from :mod:`.colcache` when every one
    is kept there (None: take them from Lance)."""
    from . import colcache

    if not all(colcache.cacheable(ds, c) for c in columns):
        return None
    data: dict[str, pa.Array] = {}
    for c in columns:
        values = colcache.values_by_rid(ds, c, rids)
        if values is None:
            return None
        data[c] = values
    return data


def _constant_value_direct(node: pb.Node, session: Any, params: list[Any]) -> Any:
    """The query side of ``<#>``: a parameter or a literal (cast or not); other constant
    expressions are evaluated by DuckDB on the session's cursor."""
    inner = node
    while ast.kind(inner) == "type_cast":
        inner = inner.type_cast.arg
    if ast.kind(inner) == "param_ref":
        n = inner.param_ref.number
        if n > len(params):
            raise E.InvalidParameterValue(f"no value given for parameter ${n}")
        return params[n - 1]
    if ast.kind(inner) == "a_const":
        return ast.const_value(inner)
    probe = pb.Node()
    probe.select_stmt.target_list.add().res_target.val.CopyFrom(node)
    casts.apply(probe)
    sql, values = param_rule.apply(probe, params)
    found = session.cursor.execute(sql, values or None).fetchall()
    return found[0][0] if found else None
