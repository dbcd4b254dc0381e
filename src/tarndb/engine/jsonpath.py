"""``jsonb_path_match`` / ``jsonb_path_exists`` for the SQL/JSON path predicates applications
send: ``$.a.b <op> <operand>`` with ``==``, ``!=``, ``<>``, ``<``, ``<=``, ``>``, ``>=``; the
operand a ``$variable`` (from the third argument), a number, a double-quoted string,
``true``, ``false`` or ``null``; or a bare path (``jsonb_path_exists``). Comparison follows
SQL/JSON: a missing item makes the predicate false, values of different types make it
unknown (NULL). Other path expressions fail with 0A000 rather than answer wrongly.
"""

from __future__ import annotations

import json
import re
from typing import Any, cast

import duckdb

from .. import errors as E

_PATH = r"\$((?:\.(?:[A-Za-z_][A-Za-z0-9_]*|\"(?:[^\"\\]|\\.)*\"))*)"
_PRED = re.compile(rf"^\s*{_PATH}\s*(==|!=|<>|<=|>=|<|>)\s*(.+?)\s*$")
_BARE = re.compile(rf"^\s*{_PATH}\s*$")
_STEP = re.compile(r"\.(?:([A-Za-z_][A-Za-z0-9_]*)|\"((?:[^\"\\]|\\.)*)\")")
_MISSING = object()


def _walk(doc: Any, steps: str) -> Any:
    for m in _STEP.finditer(steps):
        key = m.group(1) if m.group(1) is not None else json.loads(f'"{m.group(2)}"')
        if not isinstance(doc, dict) or key not in doc:
            return _MISSING
        doc = doc[key]
    return doc


def _operand(text: str, variables: dict[str, Any]) -> Any:
    if text.startswith("$"):
        name = text[1:]
        if name not in variables:
            raise E.UndefinedObject(f'could not find jsonpath variable "{name}"')
        return variables[name]
    try:
        return json.loads(text)
    except ValueError as e:
        raise E.FeatureNotSupported(f"jsonpath operand {text!r} is not supported by tarndb"
                                    ) from e


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return type(v).__name__


def _compare(a: Any, op: str, b: Any) -> bool | None:
    if isinstance(a, (dict, list)):
        return None
    if _kind(a) != _kind(b):
        if (a is None or b is None) and op in ("==", "!=", "<>"):
            return op != "=="  # null equals only null
        return None
    if op == "==":
        return bool(a == b)
    if op in ("!=", "<>"):
        return bool(a != b)
    if isinstance(a, bool) or a is None:
        return None
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def path_match(doc_text: str | None, path: str | None, vars_text: str | None,
               exists: bool = False) -> bool | None:
    if doc_text is None or path is None:
        return None
    doc = json.loads(doc_text)
    variables = json.loads(vars_text) if vars_text else {}
    if exists:
        m = _BARE.match(path)
        if m:
            return _walk(doc, m.group(1)) is not _MISSING
    m = _PRED.match(path)
    if m is None:
        raise E.FeatureNotSupported(f"jsonpath {path!r} is not supported by tarndb")
    item = _walk(doc, m.group(1))
    if item is _MISSING:
        return False
    # A predicate over an array compares each element (lax mode), true if any is.
    items = item if isinstance(item, list) else [item]
    right = _operand(m.group(3), variables)
    results = [_compare(x, m.group(2), right) for x in items]
    if any(r is True for r in results):
        return True
    return None if any(r is None for r in results) else False


def _udf(exists: bool) -> Any:
    def fn(doc: str | None, path: str | None, variables: str | None) -> bool | None:
        from .udf import remember_error

        try:
            return path_match(doc, path, variables, exists)
        except E.TarnError as e:
            remember_error(e)
            raise
    return fn


def install(con: duckdb.DuckDBPyConnection) -> None:
    v = duckdb.sqltype("VARCHAR")
    for name, exists in (("__jsonb_path_match", False), ("__jsonb_path_exists", True)):
        cast(Any, con).create_function(name, _udf(exists), [v, v, v],
                                       duckdb.sqltype("BOOLEAN"), null_handling="special")
    for name in ("jsonb_path_match", "jsonb_path_exists"):
        con.execute(f"CREATE OR REPLACE MACRO {name}(doc, path) AS __{name}("
                    "CAST(doc AS VARCHAR), CAST(path AS VARCHAR), CAST(NULL AS VARCHAR)), "
                    f"(doc, path, vars) AS __{name}(CAST(doc AS VARCHAR), "
                    "CAST(path AS VARCHAR), CAST(vars AS VARCHAR))")
