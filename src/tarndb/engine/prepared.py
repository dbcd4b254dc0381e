"""SQL-level ``PREPARE name [(types)] AS statement``, ``EXECUTE name [(args)]`` and
``DEALLOCATE [PREPARE] name | ALL``, per session, as PostgreSQL has them.

pg_dump 15 prepares some of its catalog queries this way (``getColumnACLs`` once a table
has column privileges). These are kept here, by name, for the session's lifetime. The
protocol's own prepared statements (Parse / Bind) are the front end's, but in PostgreSQL
both kinds share one namespace per session: a Parse cannot take a name that ``PREPARE``
took (nor the reverse), ``DEALLOCATE name`` and Close drop either kind, and ``DEALLOCATE
ALL`` / ``DISCARD ALL`` drop both (asyncpg and connection poolers send them between
clients, then prepare their names again). So the front end lends its statements here
(:func:`share_protocol_statements`) and asks here before it names one (:func:`named`).

``EXECUTE`` puts each argument, cast to the type PREPARE declared for it, where the query
has ``$n``, and runs the statement through the session's ordinary dispatch: its privileges
are checked when it runs, as in PostgreSQL, not when it is prepared. ``DEALLOCATE`` of a
name that neither kind has fails with 26000, as in PostgreSQL."""

from __future__ import annotations

import contextlib
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


#: session -> the front end's protocol-level statements, by name ("" is the unnamed one,
#: which PostgreSQL keeps apart: neither DEALLOCATE nor DISCARD touches it)
_PROTOCOL: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def share_protocol_statements(session: Any, statements: dict[str, Any]) -> None:
    """The front end's protocol-level statements of ``session``: one namespace with
    ``PREPARE``'s, as PostgreSQL has it."""
    with contextlib.suppress(TypeError):  # (a stand-in session without weak references)
        _PROTOCOL[session] = statements


def _get(table: weakref.WeakKeyDictionary[Any, Any], session: Any) -> Any:
    try:
        return table.get(session)
    except TypeError:  # not weakly referenceable: nothing of it was kept
        return None


def named(session: Any, name: str) -> bool:
    """Whether ``PREPARE`` took ``name`` in ``session`` (a Parse may not take it too)."""
    found = _get(_PREPARED, session)
    return found is not None and name in found


def drop(session: Any, name: str) -> None:
    """The protocol's Close of a statement: whichever kind has ``name`` goes; a name that
    none has is no error (PostgreSQL's Close)."""
    found = _get(_PREPARED, session)
    if found is not None:
        found.pop(name, None)


def drop_all(session: Any) -> None:
    """``DEALLOCATE ALL``: every named statement of both kinds."""
    found = _get(_PREPARED, session)
    if found is not None:
        found.clear()
    protocol = _get(_PROTOCOL, session)
    if protocol is not None:
        for name in [n for n in protocol if n]:
            del protocol[name]


def _of(session: Session) -> dict[str, tuple[bytes, list[bytes]]]:
    found = _PREPARED.get(session)
    if found is None:
        found = _PREPARED[session] = {}
    return found


def prepare(session: Session, node: Any, params: list[Any]) -> Result:  # noqa: ARG001
    mine = _of(session)
    if node.name in mine or node.name in _PROTOCOL.get(session, ()):
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
    if node.isall or not node.name:
        drop_all(session)
        return Result(command="DEALLOCATE ALL")
    mine = _of(session)
    protocol = _PROTOCOL.get(session, {})
    if node.name in mine:
        del mine[node.name]
    elif node.name in protocol:
        del protocol[node.name]
    else:
        raise E.InvalidSqlStatementName(f'prepared statement "{node.name}" does not exist')
    return Result(command="DEALLOCATE")


def discard(session: Session, node: Any, params: list[Any]) -> Result:  # noqa: ARG001
    """``DISCARD ALL`` drops the session's prepared statements (both kinds), as
    PostgreSQL's does, and like it refuses to run in a transaction block (25001);
    ``DISCARD PLANS | SEQUENCES | TEMP`` have nothing here to drop."""
    if node.target == pb.DISCARD_ALL:
        if session._explicit:  # noqa: SLF001 - a transaction block (BEGIN), not autocommit's
            raise E.ActiveSqlTransaction("DISCARD ALL cannot run inside a transaction block")
        drop_all(session)
    # PostgreSQL's tags: DISCARD ALL, DISCARD PLANS, DISCARD SEQUENCES, DISCARD TEMP
    return Result(command="DISCARD " + pb.DiscardMode.Name(node.target).removeprefix(
        "DISCARD_"))
