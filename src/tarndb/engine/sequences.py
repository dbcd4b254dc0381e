"""``nextval`` / ``currval`` / ``setval`` on the sequences of serial columns.

tarndb's sequences are those of serial columns, named as PostgreSQL names them
(``<table>_<column>_seq``). pg_dump restores a serial column as ``CREATE SEQUENCE``, ``ALTER
SEQUENCE ... OWNED BY``, ``ALTER COLUMN ... SET DEFAULT nextval(...)`` and
``SELECT setval(...)``; these functions and :mod:`tarndb.engine.ddl`'s sequence statements
make that work. ``setval`` moves a sequence forward only (values already handed out by other
servers on the lake are never handed out again).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import errors as E
from .udf import remember_error

if TYPE_CHECKING:
    from .catalog import ColumnInfo, TableInfo
    from .database import Database

_INSTALLED = "_tarndb_sequence_functions"
_last: dict[int, int] = {}


def find(db: Database, name: str, path: list[str]) -> tuple[TableInfo, ColumnInfo]:
    """The serial column whose sequence ``name`` (``seq`` or ``schema.seq``) is; 42P01."""
    parts = [p.strip('"') for p in name.split(".")]
    schemas = [parts[0]] if len(parts) == 2 else path
    seq = parts[-1]
    for ws in schemas:
        for info in db.catalog.all_tables():
            if info.workspace != ws:
                continue
            for col in info.columns:
                if col.serial and f"{info.name}_{col.name}_seq" == seq:
                    return info, col
    raise E.UndefinedTable(f'relation "{name}" does not exist')


def install(db: Database) -> None:
    """Register the functions on the database's DuckDB connection (once)."""
    con = db._duck
    if getattr(db, _INSTALLED, False):
        return
    import duckdb

    def nextval(name: str, path: str) -> int:
        try:
            info, col = find(db, name, path.split(","))
            value = db.next_values(info, col.name, 1)[0]
            _last[id(db)] = value
            return value
        except E.TarnError as e:
            remember_error(e)
            raise

    def setval(name: str, value: int, called: bool, path: str) -> int:
        try:
            info, col = find(db, name, path.split(","))
            key = f"seq:{info.path}:{col.name}"
            nxt = value + 1 if called else value
            with db._lock:
                db._blocks.pop(key, None)  # this process's unused values go
                db.catalog.reserve(key, 0, nxt)
            return value
        except E.TarnError as e:
            remember_error(e)
            raise

    big, text = duckdb.sqltype("BIGINT"), duckdb.sqltype("VARCHAR")
    con.create_function("__tarndb_nextval", nextval, [text, text], big, side_effects=True)
    con.create_function("__tarndb_setval", setval, [text, big, duckdb.sqltype("BOOLEAN"), text],
                        big, side_effects=True)
    setattr(db, _INSTALLED, True)


def rewrite_calls(stmt: Any, db: Database, session: Any, path: list[str]) -> None:
    """``nextval('s'[::regclass])`` / ``setval('s', n[, called])`` -> the functions above."""
    from postgast import pg_query_pb2 as pb

    from ..sql import ast

    calls = [m for m in ast.walk(stmt) if isinstance(m, pb.Node)
             and ast.kind(m) == "func_call" and ast.func_name(m.func_call) in ("nextval",
                                                                               "setval")]
    if not calls:
        return
    install(db)
    for node in calls:
        fc = node.func_call
        name = ast.func_name(fc)
        args = list(fc.args)
        if not args:
            continue
        first = args[0]
        if ast.kind(first) == "type_cast":  # 's'::regclass: the name itself
            first = first.type_cast.arg
        rest = args[1:]
        if name == "setval":
            if len(rest) == 1:
                rest.append(ast.null_const())
                rest[1].CopyFrom(_bool(True))
            if len(rest) != 2:
                continue
        elif rest:
            continue
        new_args = [ast.type_cast(first, ["text"])] + rest + [ast.string_const(",".join(path))]
        node.CopyFrom(ast.func_call(f"__tarndb_{name}", new_args))


def _bool(value: bool) -> Any:
    from postgast import pg_query_pb2 as pb

    n = pb.Node()
    n.a_const.boolval.boolval = value
    return n
