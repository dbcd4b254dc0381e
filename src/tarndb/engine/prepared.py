"""SQL-level ``PREPARE name [(types)] AS statement``, ``EXECUTE name [(args)]`` and
``DEALLOCATE [PREPARE] name | ALL``, per session, as PostgreSQL has them.

pg_dump 15 prepares some of its catalog queries this way (``getColumnACLs`` once a table
has column privileges). These are kept here, by name, for the session's lifetime. The
protocol's own prepared statements (Parse / Bind) are the front end's, but in PostgreSQL
both kinds share one namespace per session: a Parse cannot take a name that ``PREPARE``
took (nor the reverse), ``DEALLOCATE name`` and Close drop either kind, and ``DEALLOCATE
ALL`` / ``DISCARD ALL`` drop both (asyncpg and connection poolers send them between
clients, then prepare their names again). So the front end lends its statements here
(:func:`share_protocol_statements`) and asks here before it names one (:func:`named`);
``EXECUTE`` runs a statement Parse named, and a Bind one ``PREPARE`` named
(:func:`sql_statement`), as PostgreSQL lets them.

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


def _protocol_statement(session: Session, name: str) -> tuple[bytes, list[bytes | None]] | None:
    """A statement Parse named, as :func:`execute` takes one: its tree, and for each ``$n``
    the type Parse gave it (None where it gave none: the argument goes in as written)."""
    protocol = _get(_PROTOCOL, session)
    st = protocol.get(name) if protocol is not None and name else None
    if st is None:
        return None
    from ..sql.rewrite.params import max_param
    from .types import type_for_oid

    tree = ast.parse(st.sql)
    if len(tree.stmts) != 1:
        raise E.SyntaxError_("cannot insert multiple commands into a prepared statement")
    stmt = tree.stmts[0].stmt
    oids = list(st.param_oids)
    types: list[bytes | None] = []
    for i in range(max_param(stmt)):
        oid = oids[i] if i < len(oids) else 0
        if not oid:
            types.append(None)
            continue
        cast = ast.parse(f"SELECT NULL::{type_for_oid(oid).pg_name}").stmts[0].stmt
        types.append(cast.select_stmt.target_list[0].res_target.val.type_cast.type_name
                     .SerializeToString())
    return stmt.SerializeToString(), types


def sql_statement(session: Any, name: str) -> tuple[str, list[int]] | None:
    """A statement ``PREPARE`` named, as a Bind (or a Describe) of the protocol takes one:
    its text and the type OIDs of its parameters; None when PREPARE named none so."""
    found = _get(_PREPARED, session)
    data = found.get(name) if found is not None else None
    if data is None:
        return None
    from .types import resolve_type

    stmt = pb.Node()
    stmt.ParseFromString(data[0])
    oids = []
    for raw in data[1]:
        tn = pb.TypeName()
        tn.ParseFromString(raw)
        oids.append(resolve_type(ast.names(tn.names), len(tn.array_bounds)).oid)
    return ast.deparse_node(stmt), oids


def execute(session: Session, node: Any, params: list[Any]) -> Result:  # noqa: ARG001
    found: tuple[bytes, list[bytes]] | tuple[bytes, list[bytes | None]] | None = \
        _of(session).get(node.name) or _protocol_statement(session, node.name)
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
        type_name = types[i]
        if type_name is None:  # (a Parse that left the type to the statement)
            n.CopyFrom(args[i])
            continue
        cast = pb.Node()
        cast.type_cast.arg.CopyFrom(args[i])
        cast.type_cast.type_name.ParseFromString(type_name)
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
