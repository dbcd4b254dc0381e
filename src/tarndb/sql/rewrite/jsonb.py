"""Rewrite rule: PostgreSQL's jsonb key operators -> functions DuckDB runs as macros.

- ``j ? 'k'``             -> ``jsonb_exists(j, 'k')``: a top-level key of an object, or a
  string element of an array (PostgreSQL's rule)
- ``j ?| array['a','b']`` -> ``jsonb_exists_any(j, ...)``
- ``j ?& array['a','b']`` -> ``jsonb_exists_all(j, ...)``
- ``a <@ b`` with a jsonb side -> ``json_contains(b, a)`` (``b @> a``)

``jsonb_exists`` and friends are also PostgreSQL functions that applications call by name
(langchain-postgres' ``$exists`` filter).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb
from postgast import pg_query_pb2 as pb

from .. import ast

if TYPE_CHECKING:
    from ...engine.scan import Scope

MACROS = [
    """CREATE OR REPLACE MACRO jsonb_exists(j, k) AS (
        CASE WHEN j IS NULL OR k IS NULL THEN NULL ELSE CASE json_type(CAST(j AS JSON))
        WHEN 'OBJECT' THEN list_contains(json_keys(CAST(j AS JSON)), CAST(k AS VARCHAR))
        WHEN 'ARRAY' THEN list_contains(
            list_transform(json_extract(CAST(j AS JSON), '$[*]'),
                           lambda e: CASE WHEN json_type(e) = 'VARCHAR'
                                          THEN json_extract_string(e, '$') END),
            CAST(k AS VARCHAR))
        ELSE false END END)""",
    """CREATE OR REPLACE MACRO jsonb_exists_any(j, ks) AS (
        CASE WHEN j IS NULL OR ks IS NULL THEN NULL ELSE
        len(list_filter(CAST(ks AS VARCHAR[]), lambda k: jsonb_exists(j, k))) > 0 END)""",
    """CREATE OR REPLACE MACRO jsonb_exists_all(j, ks) AS (
        CASE WHEN j IS NULL OR ks IS NULL THEN NULL ELSE
        len(list_filter(CAST(ks AS VARCHAR[]), lambda k: NOT jsonb_exists(j, k))) = 0 END)""",
]

_PTR = ("'/' || array_to_string(list_transform(CAST(p AS VARCHAR[]), lambda x: "
        "replace(replace(x, '~', '~0'), '/', '~1')), '/')")
MACROS += [
    # A text[] path as a JSON pointer (RFC 6901: '/a/b/0'), which DuckDB's JSON functions
    # read as PostgreSQL reads the path: keys of objects, indexes of arrays.
    f"CREATE OR REPLACE MACRO jsonb_ptr(p) AS (CASE WHEN p IS NULL THEN NULL ELSE {_PTR} END)",
    """CREATE OR REPLACE MACRO jsonb_get_path(j, p) AS (
        CASE WHEN j IS NULL OR p IS NULL THEN NULL
        WHEN len(CAST(p AS VARCHAR[])) = 0 THEN CAST(j AS JSON)
        ELSE json_extract(CAST(j AS JSON), jsonb_ptr(p)) END)""",
    """CREATE OR REPLACE MACRO jsonb_get_path_text(j, p) AS (
        CASE WHEN j IS NULL OR p IS NULL THEN NULL
        WHEN len(CAST(p AS VARCHAR[])) = 0 THEN CAST(CAST(j AS JSON) AS VARCHAR)
        ELSE json_extract_string(CAST(j AS JSON), jsonb_ptr(p)) END)""",
    """CREATE OR REPLACE MACRO jsonb_typeof(j) AS (
        CASE WHEN j IS NULL THEN NULL ELSE CASE json_type(CAST(j AS JSON))
        WHEN 'OBJECT' THEN 'object' WHEN 'ARRAY' THEN 'array' WHEN 'VARCHAR' THEN 'string'
        WHEN 'BOOLEAN' THEN 'boolean' WHEN 'NULL' THEN 'null' ELSE 'number' END END)""",
    "CREATE OR REPLACE MACRO json_typeof(j) AS jsonb_typeof(j)",
    "CREATE OR REPLACE MACRO jsonb_array_length(j) AS json_array_length(CAST(j AS JSON))",
    """CREATE OR REPLACE MACRO jsonb_set(j, p, v) AS
        json_set(CAST(j AS JSON), jsonb_ptr(p), CAST(v AS JSON)),
        (j, p, v, create_missing) AS
        json_set(CAST(j AS JSON), jsonb_ptr(p), CAST(v AS JSON))""",
    "CREATE OR REPLACE MACRO jsonb_delete_path(j, p) AS json_remove(CAST(j AS JSON), "
    "jsonb_ptr(p))",
]
for _fn, _get in (("jsonb_extract_path", "jsonb_get_path"),
                  ("jsonb_extract_path_text", "jsonb_get_path_text")):
    _overloads = []
    for _n in range(1, 9):
        _ks = [f"k{i}" for i in range(_n)]
        _overloads.append(f"(j, {', '.join(_ks)}) AS {_get}(j, [{', '.join(_ks)}])")
    MACROS.append(f"CREATE OR REPLACE MACRO {_fn}" + ", ".join(_overloads))

_KEY_OPS = {"?": "jsonb_exists", "?|": "jsonb_exists_any", "?&": "jsonb_exists_all"}
_PATH_OPS = {"#>": "jsonb_get_path", "#>>": "jsonb_get_path_text", "#-": "jsonb_delete_path"}
#: PostgreSQL's jsonb/json functions that DuckDB has under another name.
_RENAMED = {"jsonb_build_object": "json_build_object", "jsonb_build_array": "json_array",
            "json_build_array": "json_array", "jsonb_object_agg": "json_group_object",
            "json_object_agg": "json_group_object", "to_jsonb": "to_json",
            "jsonb_pretty": "json_pretty", "jsonb_strip_nulls": "json_strip_nulls"}


def _concat(a: str | None, b: str | None) -> str | None:
    """PostgreSQL's ``jsonb || jsonb``: two objects merge their top-level keys (the right
    one's value wins), two arrays concatenate, anything else joins as array elements."""
    import json

    if a is None or b is None:
        return None
    x, y = json.loads(a), json.loads(b)
    if isinstance(x, dict) and isinstance(y, dict):
        out: object = {**x, **y}
    else:
        out = (x if isinstance(x, list) else [x]) + (y if isinstance(y, list) else [y])
    return json.dumps(out, separators=(", ", ": "), ensure_ascii=False)


def install(cur: duckdb.DuckDBPyConnection) -> None:
    from typing import Any
    from typing import cast as _cast

    text = duckdb.sqltype("VARCHAR")
    try:
        _cast(Any, cur).create_function(
            "__jsonb_concat", _concat, [text, text], text, null_handling="special")
    except Exception:  # noqa: BLE001 - already registered on this connection
        pass
    for m in MACROS:
        cur.execute(m)


def _is_json(node: pb.Node, scope: Scope) -> bool:
    k = ast.kind(node)
    if k == "type_cast":
        names = [n.lower() for n in ast.names(node.type_cast.type_name.names)]
        return bool(names) and names[-1] in ("json", "jsonb") and \
            not node.type_cast.type_name.array_bounds
    if k == "column_ref":
        from .similarity import _Resolver

        col = _Resolver(scope).column(node.column_ref)
        return col is not None and col[2].ndim == 0 and col[2].base in ("json", "jsonb")
    return False


def _path(node: pb.Node) -> pb.Node:
    """A path operand: ``'{a,b,0}'`` (array text, maybe cast to text[]) as ``ARRAY['a', 'b',
    '0']``; anything else (an ARRAY[...], a parameter, a column) as it is."""
    inner = node
    if ast.kind(inner) == "type_cast":
        inner = inner.type_cast.arg
    if ast.kind(inner) != "a_const" or inner.a_const.WhichOneof("val") != "sval":
        return node
    text = inner.a_const.sval.sval.strip()
    if not (text.startswith("{") and text.endswith("}")):
        from ...errors import InvalidTextRepresentation

        raise InvalidTextRepresentation(f'malformed array literal: "{text}"')
    import csv

    body = text[1:-1]
    items = next(csv.reader([body], skipinitialspace=True)) if body.strip() else []
    arr = pb.Node()
    arr.a_array_expr.SetInParent()
    for item in items:
        arr.a_array_expr.elements.add().CopyFrom(ast.string_const(item.strip()))
    if not items:
        return ast.type_cast(arr, ["text"], ndim=1)
    return arr


def apply(stmt: pb.Node, scope: Scope) -> None:
    """Rewrite the jsonb key operators of ``stmt`` (already bound)."""
    nodes = [m for m in ast.walk(stmt) if isinstance(m, pb.Node)]
    for node in reversed(nodes):  # children first
        if ast.kind(node) == "func_call":
            fc = node.func_call
            parts = ast.names(fc.funcname)
            if parts and parts[-1].lower() in ("jsonb_agg", "json_agg") and not fc.agg_star:
                # to_json(list(x [ORDER BY ...])): DuckDB's json_group_array is a macro, which
                # takes no ORDER BY.
                del fc.funcname[:]
                fc.funcname.add().string.sval = "list"
                node.CopyFrom(ast.func_call("to_json", [node]))
            elif parts and parts[-1].lower() in _RENAMED and not fc.agg_star:
                del fc.funcname[:]
                fc.funcname.add().string.sval = _RENAMED[parts[-1].lower()]
            elif parts and parts[-1].lower() == "jsonb_set" and len(fc.args) >= 2:
                fc.args[1].CopyFrom(_path(fc.args[1]))  # jsonb_set(j, '{a,b}', v)
            continue
        if ast.kind(node) != "a_expr" or node.a_expr.kind != pb.AEXPR_OP:
            continue
        op = ast.op_name(node.a_expr)
        left, right = node.a_expr.lexpr, node.a_expr.rexpr
        if op in _KEY_OPS:
            node.CopyFrom(ast.func_call(_KEY_OPS[op], [left, right]))
        elif op in _PATH_OPS:
            node.CopyFrom(ast.func_call(_PATH_OPS[op], [left, _path(right)]))
        elif op == "-" and node.a_expr.HasField("lexpr") and _is_json(left, scope):
            # jsonb - 'key' (an object's key) / jsonb - 2 (an array's element)
            if ast.kind(right) == "a_const" and right.a_const.WhichOneof("val") == "ival":
                ptr = ast.string_const(f"$[{right.a_const.ival.ival}]")
            else:
                arr = pb.Node()
                arr.a_array_expr.elements.add().CopyFrom(right)
                ptr = ast.func_call("jsonb_ptr", [arr])
            node.CopyFrom(ast.func_call("json_remove", [ast.type_cast(left, ["json"]), ptr]))
        elif op == "||" and (_is_json(left, scope) or _is_json(right, scope)):
            node.CopyFrom(ast.type_cast(ast.func_call("__jsonb_concat", [
                ast.type_cast(ast.type_cast(left, ["json"]), ["text"]),
                ast.type_cast(ast.type_cast(right, ["json"]), ["text"])]), ["json"]))
        elif op == "<@" and (_is_json(left, scope) or _is_json(right, scope)):
            node.CopyFrom(ast.func_call("json_contains", [
                ast.type_cast(right, ["json"]), ast.type_cast(left, ["json"])]))
