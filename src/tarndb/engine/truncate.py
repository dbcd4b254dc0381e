"""``TRUNCATE [TABLE] [ONLY] t [, ...] [RESTART IDENTITY | CONTINUE IDENTITY] [CASCADE |
RESTRICT]``, as PostgreSQL has it.

pg_restore -j truncates each table it has just created before COPYing into it; applications
empty tables with it between runs. Here it is a DELETE of every row of each table, in the
statement's transaction (rolled back with it), so the rows go as a DELETE's do (the table's
versions keep them for time travel until vacuumed).

- A table that a foreign key of a table not named references is refused (0A000, with
  PostgreSQL's detail and hint) unless CASCADE takes the referencing tables in too; the
  referencing tables are emptied first, so the constraints hold throughout.
- RESTART IDENTITY starts the serial and identity columns' sequences and the sequences
  OWNED BY the tables' columns again, at COMMIT (a rollback leaves them as they were).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from postgast import pg_query_pb2 as pb

from .. import errors as E
from ..sql import ast
from . import fkeys, sequences, views
from .result import Result
from .scan import quote_ident

if TYPE_CHECKING:
    from .catalog import TableInfo
    from .session import Session


def truncate(session: Session, node: pb.TruncateStmt, params: list[Any]) -> Result:  # noqa: ARG001
    targets: list[TableInfo] = []
    for r in node.relations:
        rv = r.range_var
        info = session.resolve_table(rv.schemaname or None, rv.relname)
        if info is None:
            if views.resolve(session, rv.schemaname or None, rv.relname) is not None:
                raise E.WrongObjectType(f'"{rv.relname}" is not a table')
            raise E.UndefinedTable(f'relation "{rv.relname}" does not exist', table=rv.relname)
        if not any(_same(info, t) for t in targets):
            targets.append(info)
    cascade = node.behavior == pb.DROP_CASCADE
    pending = list(targets)
    while pending:
        parent = pending.pop()
        for child, _ in fkeys.referencing(session, parent):
            if any(_same(child, t) for t in targets):
                continue
            if not cascade:
                raise E.FeatureNotSupported(
                    "cannot truncate a table referenced in a foreign key constraint",
                    detail=f'Table "{child.name}" references "{parent.name}".',
                    hint=f'Truncate table "{child.name}" at the same time, or use TRUNCATE '
                         "... CASCADE.")
            session.notices.append(f'truncate cascades to table "{child.name}"')
            targets.append(child)
            pending.append(child)
    from . import dml

    for info in _children_first(session, targets):
        target = f"{quote_ident(info.workspace)}.{quote_ident(info.name)}"
        stmt = ast.parse(f"DELETE FROM {target}").stmts[0].stmt
        dml.delete(session, stmt.delete_stmt, [])
    if node.restart_seqs:
        session.on_commit(lambda: _restart_sequences(session, targets))
    return Result(command="TRUNCATE TABLE")


def _same(a: TableInfo, b: TableInfo) -> bool:
    return (a.workspace, a.name) == (b.workspace, b.name)


def _children_first(session: Session, targets: list[TableInfo]) -> list[TableInfo]:
    """The tables in an order that empties each referencing table before the tables it
    references (a cycle of references: the order given)."""
    left = list(targets)
    out: list[TableInfo] = []
    while left:
        free = [t for t in left if not any(
            not _same(child, t) and any(_same(child, o) for o in left)
            for child, _ in fkeys.referencing(session, t))]
        step = free or left[:1]
        out.extend(step)
        left = [t for t in left if not any(_same(t, s) for s in step)]
    return out


def _restart_sequences(session: Session, targets: list[TableInfo]) -> None:
    db = session.db
    for info in targets:
        for col in info.columns:
            if col.serial:  # identity columns too
                seq = f"{quote_ident(info.workspace)}.{quote_ident(f'{info.name}_{col.name}_seq')}"
                sequences.setval(db, None, seq, 1, False, [info.workspace])
        for d in sequences.owned_by(db, None, info):
            sequences.set_state(db, d, d.start, False)
