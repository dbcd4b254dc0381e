"""SQL-level ``PREPARE name [(types)] AS statement``, ``EXECUTE name [(args)]`` and
``DEALLOCATE [PREPARE] name | ALL``, per session, as PostgreSQL has them.

pg_dump 15 prepares some of its catalog queries this way (``getColumnACLs`` once a table
has column privileges). The protocol's own prepared statements (Parse / Bind) are the
front end's business; these are kept here, by name, for the session's lifetime.

``EXECUTE`` puts each argument, cast to the type PREPARE declared for it, where the query
has ``$n``, and runs the statement through the session's ordinary dispatch: its privileges
are checked when it runs, as in PostgreSQL, not when it is prepared. ``DEALLOCATE`` of a
name that is not here is accepted silently, because clients send it for the protocol's
statements too (psycopg evicting its cache)."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from postgast import pg_query_pb2 as pb

from .. import errors as E
from ..sql import ast
from .result import Result

if TYPE_CHECKING:
    from .session import Session

#: session -> name -> (the statement, serialized; the declared argument types)
_PREPARED: weakref.WeakKeyDictionary[Any, dict[str, tuple[bytes, list[bytes]]]] = (
    weakref.WeakKeyDictionary()
)


def _of(session: Session) -> dict[str, tuple[bytes, list[bytes]]]:
    found = _PREPARED.get(session)
    if found is None:
        found = _PREPARED[session] = {}
    return found


def prepare(session: Session, node: Any, params: list[Any]) -> Result:  # noqa: ARG001
    mine = _of(session)
    if node.name in mine:
        raise E.DuplicatePreparedStatement(f'prepared statement "{node.name}" already exists')
    mine[node.name] = (
        node.query.SerializeToString(),
        [t.type_name.SerializeToString() for t in node.argtypes],
    )
    return Result(command="PREPARE")


def execute(session: Session, node: Any, params: list[Any]) -> Result:  # noqa: ARG001
    found = _of(session).get(node.name)
    if found is None:
        raise E.InvalidSqlStatementName(f'prepared statement "{node.name}" does not exist')
    data, types = found
    stmt = pb.Node()
    stmt.ParseFromString(data)
    args = list(node.params)
    if len(args) != len(types):
        raise E.SyntaxErrorOrAccessRuleViolation(
            f'wrong number of parameters for prepared statement "{node.name}"',
            detail=f"Expected {len(types)} parameters but got {len(args)}.",
        )
    for n in list(ast.walk_nodes(stmt)):
        if ast.kind(n) != "param_ref" or not 0 < n.param_ref.number <= len(args):
            continue
        i = n.param_ref.number - 1
        cast = pb.Node()
        cast.type_cast.arg.CopyFrom(args[i])
        cast.type_cast.type_name.ParseFromString(types[i])
        cast.type_cast.location = -1
        n.CopyFrom(cast)
    return session._dispatch(ast.kind(stmt), stmt, [])  # noqa: SLF001 - checked there


def deallocate(session: Session, node: Any, params: list[Any]) -> Result:  # noqa: ARG001
    mine = _of(session)
    if node.isall or not node.name:
        mine.clear()
    else:
        mine.pop(node.name, None)
    return Result(command="DEALLOCATE ALL" if node.isall else "DEALLOCATE")
