"""Small helpers over libpg_query's protobuf parse tree (via postgast).

The tree is protobuf messages: a ``Node`` wraps exactly one concrete node in a oneof named
``node``. Rewrites edit the tree in place and deparse it back to SQL for DuckDB.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any, TypeAlias

import postgast
from google.protobuf.message import DecodeError, Message
from postgast import pg_query_pb2 as pb

from ..errors import ProgramLimitExceeded, SyntaxError_

#: A parse-tree node (``pg_query_pb2.Node``); typed loosely, protobuf stubs are generated.
Node: TypeAlias = Any


#: SQL text -> its serialized parse tree, for statements sent again and again (a driver's
#: ``SELECT 1``, a prepared key lookup): libpg_query's parse is most of a small statement's
#: parse cost, decoding the tree a quarter of it. Each caller gets its own decoded tree
#: (trees are rewritten in place). Bounded; cleared when full.
_PARSED: dict[str, bytes] = {}
_PARSED_MAX = 512
_PARSED_MAX_TEXT = 4096


def parse(sql: str) -> Any:
    """Parse SQL text into a ParseResult, raising SyntaxError_ with a 1-based position."""
    data = _PARSED.get(sql)
    if data is not None:
        return pb.ParseResult.FromString(data)
    try:
        tree = postgast.parse(sql)
        if len(sql) <= _PARSED_MAX_TEXT:
            if len(_PARSED) >= _PARSED_MAX:
                _PARSED.clear()
            _PARSED[sql] = tree.SerializeToString()
        return tree
    except postgast.PgQueryError as e:
        pos = getattr(e, "cursorpos", None) or None
        raise SyntaxError_(str(getattr(e, "message", e)), position=pos) from None
    except DecodeError:
        # The parse tree is deeper than protobuf decodes (~100 levels: ARRAY[ARRAY[...]] some
        # 50 deep): a limit, not a server error.
        raise ProgramLimitExceeded(
            "statement is nested too deeply",
            detail="Expressions (nested ARRAY[...], function calls, subqueries) may be nested "
                   "about 50 levels deep.") from None


def deparse_node(stmt_node: Node) -> str:
    """SQL text of a statement, for DuckDB: PostgreSQL's deparser, plus quotes around the
    identifiers that are keywords to DuckDB but not to PostgreSQL (a column named ``at``,
    ``by``, ``map``, ``show`` ... which DuckDB's grammar would read as syntax)."""
    tree = pb.ParseResult(version=180004)
    raw = tree.stmts.add()
    raw.stmt.CopyFrom(stmt_node)
    text = str(postgast.deparse(tree))
    kw = _duck_keywords()
    if kw.pattern.search(text) is None or _QUOTE_MARK in text:
        return text
    marks: dict[str, str] = {}

    def mark(name: str) -> str:
        if name.lower() != name or name not in kw.words:
            return name
        m = f"{_QUOTE_MARK}{len(marks)}_q"
        marks[m] = '"' + name + '"'
        return m

    for m in walk(raw.stmt):
        if isinstance(m, pb.ColumnRef):
            for f in m.fields:
                if f.WhichOneof("node") == "string":
                    f.string.sval = mark(f.string.sval)
        elif isinstance(m, pb.ResTarget):
            if m.name:
                m.name = mark(m.name)
        elif isinstance(m, pb.RangeVar):
            m.relname = mark(m.relname)
            if m.schemaname:
                m.schemaname = mark(m.schemaname)
        elif isinstance(m, pb.Alias):
            m.aliasname = mark(m.aliasname)
            for f in m.colnames:
                if f.WhichOneof("node") == "string":
                    f.string.sval = mark(f.string.sval)
        elif isinstance(m, pb.ColumnDef):
            m.colname = mark(m.colname)
        elif isinstance(m, pb.IndexElem):
            if m.name:
                m.name = mark(m.name)
        elif isinstance(m, pb.CommonTableExpr):
            m.ctename = mark(m.ctename)
    if not marks:
        return text
    out = str(postgast.deparse(tree))
    return re.sub(_QUOTE_MARK + r"\d+_q", lambda g: marks[g.group(0)], out)


_QUOTE_MARK = "tarndb_qid_"


class _Keywords:
    def __init__(self, words: frozenset[str]) -> None:
        self.words = words
        alt = "|".join(sorted(words, key=len, reverse=True)) or "(?!)"
        # Case-sensitive: the deparser writes keywords in capitals and bare identifiers in
        # lower case, so only a lower-case word can be an identifier to quote.
        self.pattern = re.compile(rf"\b(?:{alt})\b")


@functools.lru_cache(maxsize=1)
def _duck_keywords() -> _Keywords:
    """DuckDB's keywords that may not stand as a bare column or table name there, less those
    PostgreSQL's deparser quotes anyway."""
    import duckdb

    rows = duckdb.connect().execute(
        "SELECT DISTINCT keyword_name FROM duckdb_keywords() "
        "WHERE keyword_category <> 'unreserved'").fetchall()
    words = set()
    for (w,) in rows:
        w = str(w).lower()
        if re.fullmatch(r"[a-z_][a-z0-9_]*", w) is None:
            continue
        try:
            quoted = f'"{w}"' in str(postgast.deparse(postgast.parse(f'SELECT "{w}" FROM t')))
        except Exception:  # noqa: BLE001 - not deparsable bare: quoting is the deparser's
            quoted = True
        if not quoted:
            words.add(w)
    return _Keywords(frozenset(words))


def kind(node: Node) -> str | None:
    return node.WhichOneof("node")


def inner(node: Node) -> Any:
    k = node.WhichOneof("node")
    return getattr(node, k) if k else None


def children(msg: Message) -> Iterator[Message]:
    """The messages directly inside ``msg`` (for walks that prune: push these onto the
    stack, or not)."""
    for fd, value in msg.ListFields():
        if fd.message_type is None:
            continue
        if fd.is_repeated:
            yield from value
        else:
            yield value


def walk(msg: Message) -> Iterator[Message]:
    """Every message in the tree, parents before children."""
    stack = [msg]
    while stack:
        m = stack.pop()
        yield m
        for fd, value in m.ListFields():
            if fd.message_type is None:
                continue
            if fd.is_repeated:
                stack.extend(reversed(list(value)))
            else:
                stack.append(value)


def walk_nodes(msg: Message) -> Iterator[Node]:
    for m in walk(msg):
        if isinstance(m, pb.Node):
            yield m


def names(field: Any) -> list[str]:
    """The strings of a repeated Node list of String nodes (``names``, ``fields``)."""
    out = []
    for n in field:
        k = n.WhichOneof("node")
        if k == "string":
            out.append(n.string.sval)
        elif k == "a_star":
            out.append("*")
    return out


def const_value(node: Node) -> Any:
    """Python value of an A_Const node (None for NULL)."""
    c = node.a_const
    if c.isnull:
        return None
    k = c.WhichOneof("val")
    if k == "ival":
        return c.ival.ival
    if k == "fval":
        return float(c.fval.fval) if "." in c.fval.fval or "e" in c.fval.fval.lower() \
            else int(c.fval.fval)
    if k == "sval":
        return c.sval.sval
    if k == "boolval":
        return c.boolval.boolval
    if k == "bsval":
        return c.bsval.bsval
    return None


def string_const(value: str) -> Node:
    n = pb.Node()
    n.a_const.sval.sval = value
    return n


def int_const(value: int) -> Node:
    n = pb.Node()
    n.a_const.ival.ival = value
    return n


def float_const(value: float) -> Node:
    n = pb.Node()
    n.a_const.fval.fval = repr(float(value))
    return n


def null_const() -> Node:
    n = pb.Node()
    n.a_const.isnull = True
    return n


def column_ref(*parts: str) -> Node:
    n = pb.Node()
    for p in parts:
        f = n.column_ref.fields.add()
        f.string.sval = p
    return n


def func_call(name: str, args: list[Node]) -> Node:
    n = pb.Node()
    s = n.func_call.funcname.add()
    s.string.sval = name
    for a in args:
        n.func_call.args.add().CopyFrom(a)
    n.func_call.funcformat = pb.COERCE_EXPLICIT_CALL
    return n


def param_ref(number: int) -> Node:
    n = pb.Node()
    n.param_ref.number = number
    return n


def type_cast(arg: Node, type_names: list[str], ndim: int = 0) -> Node:
    n = pb.Node()
    n.type_cast.arg.CopyFrom(arg)
    for t in type_names:
        n.type_cast.type_name.names.add().string.sval = t
    for _ in range(ndim):
        n.type_cast.type_name.array_bounds.add().integer.ival = -1
    n.type_cast.type_name.typemod = -1
    return n


def func_name(fc: Any) -> str:
    """Lower-case unqualified name of a FuncCall (``pg_catalog.`` dropped)."""
    parts = names(fc.funcname)
    return parts[-1].lower() if parts else ""


def op_name(expr: Any) -> str:
    parts = names(expr.name)
    return parts[-1] if parts else ""
