"""FOREIGN KEY constraints, enforced as PostgreSQL enforces them (23503).

A constraint lives in the referencing table's ``info.constraints``::

    {"name", "type": "foreign", "columns": [...], "ref_workspace", "ref_table",
     "ref_columns": [...], "on_delete": "a"|"r"|"c"|"n"|"d", "on_update": ...}

(the action letters are PostgreSQL's: NO ACTION, RESTRICT, CASCADE, SET NULL, SET DEFAULT).

- **Writes to the referencing table** (INSERT, UPDATE, upsert, COPY) look every non-NULL key
  up in the referenced table's key index (engine/commit.py) and in the transaction's own
  rows, then take a shared lock on the referenced rows (PostgreSQL's ``FOR KEY SHARE``), so a
  concurrent DELETE of the referenced row waits for this transaction; a referenced row that
  went away meanwhile is looked up again.
- **DELETE from the referenced table** runs, for each referencing table, the constraint's
  action on the rows that reference the deleted keys: CASCADE deletes them (and so on down),
  SET NULL / SET DEFAULT updates them, NO ACTION / RESTRICT fail with 23503 when any exist.
- **UPDATE of a referenced key** that is still referenced fails with 23503 whatever the
  action (ON UPDATE CASCADE is not carried out).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
from postgast import pg_query_pb2 as pb

from .. import errors as E
from ..sql import ast
from .catalog import TableInfo
from .commit import UniqueKey, _keys, unique_keys
from .scan import quote_ident

if TYPE_CHECKING:
    from .session import Session

_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL",
            "d": "SET DEFAULT"}


def spec_from(session: Session, ws: str, table: str, con: pb.Constraint,
              columns: list[str], own_keys: list[UniqueKey]) -> dict[str, Any]:
    """The catalog form of a REFERENCES / FOREIGN KEY clause, checked against the
    referenced table (42P01, 42830)."""
    cols = [s.string.sval for s in con.fk_attrs] or columns
    ref_ws = con.pktable.schemaname or None
    ref_name = con.pktable.relname
    ref_cols = [s.string.sval for s in con.pk_attrs]
    if ref_name == table and (ref_ws or ws) == ws:
        keys = own_keys
        ref_ws = ws
    else:
        parent = session.resolve_table(ref_ws, ref_name)
        if parent is None:
            raise E.UndefinedTable(f'relation "{ref_name}" does not exist', table=ref_name)
        keys = unique_keys(parent)
        ref_ws = parent.workspace
    if not ref_cols:
        primary = next((k for k in keys if k.primary), None)
        if primary is None:
            raise E.InvalidForeignKey(
                f'there is no primary key for referenced table "{ref_name}"')
        ref_cols = list(primary.columns)
    if len(ref_cols) != len(cols):
        raise E.InvalidForeignKey("number of referencing and referenced columns for foreign "
                                  "key disagree")
    if not any(set(k.columns) == set(ref_cols) and len(k.columns) == len(ref_cols)
               for k in keys):
        raise E.InvalidForeignKey(
            f'there is no unique constraint matching given keys for referenced table '
            f'"{ref_name}"')
    if con.fk_matchtype == "f":
        raise E.FeatureNotSupported("MATCH FULL foreign keys are not supported by tarndb")
    return {"name": con.conname, "type": "foreign", "columns": cols,
            "ref_workspace": ref_ws, "ref_table": ref_name, "ref_columns": ref_cols,
            "on_delete": con.fk_del_action or "a", "on_update": con.fk_upd_action or "a"}


def foreign_keys(info: TableInfo) -> list[dict[str, Any]]:
    return [c for c in info.constraints if c.get("type") == "foreign"]


def _parent_key(parent: TableInfo, ref_cols: list[str]) -> UniqueKey:
    for k in unique_keys(parent):
        if set(k.columns) == set(ref_cols):
            return UniqueKey(k.name, tuple(ref_cols), k.primary)
    raise E.InvalidForeignKey(
        f'there is no unique constraint matching given keys for referenced table '
        f'"{parent.name}"')


def check_child(session: Session, info: TableInfo, rows: pa.Table) -> None:
    """Every non-NULL key of ``rows`` exists in the referenced table (23503)."""
    for fk in foreign_keys(info):
        values = _keys(rows, tuple(fk["columns"]))
        wanted = {v for v in values if v is not None}
        if not wanted:
            continue
        parent = session.resolve_table(fk["ref_workspace"], fk["ref_table"])
        if parent is None:
            raise E.UndefinedTable(f'relation "{fk["ref_table"]}" does not exist')
        key = _parent_key(parent, fk["ref_columns"])
        _verify_present(session, info, parent, key, fk, wanted, rows)


def _verify_present(session: Session, info: TableInfo, parent: TableInfo, key: UniqueKey,
                    fk: dict[str, Any], wanted: set[Any], rows: pa.Table) -> None:
    writes = session.db.writes
    for _ in range(100):
        latest = session.db.store(parent).dataset().version
        ix = writes.key_index(parent, key, latest)
        change = session.pending_change(parent)
        own = change.keys_of(key) if change is not None else {}
        removed = change.removed if change is not None else set()
        if parent.path == info.path and all(c in rows.column_names for c in key.columns):
            # A self-reference may point at a row of the same statement (PostgreSQL checks
            # at the end of the statement).
            own = dict(own)
            own.update((k, -1) for k in _keys(rows, key.columns) if k is not None)
        holders: list[int] = []
        for v in wanted:
            if v in own:
                continue
            h = ix.get(v)
            if h is None or h in removed:
                raise _missing(info, parent, fk, v)
            holders.append(h)
        if not holders or not session.txn_id:
            return
        session.lock([(parent.path, h) for h in holders], exclusive=False)
        now = session.db.store(parent).dataset().version
        if now == latest or not writes.changed_since(parent, latest, holders, now):
            return
    raise E.SerializationFailure("could not serialize access due to concurrent update")


def _missing(info: TableInfo, parent: TableInfo, fk: dict[str, Any], v: Any
             ) -> E.ForeignKeyViolation:
    vals = v if isinstance(v, tuple) else (v,)
    return E.ForeignKeyViolation(
        f'insert or update on table "{info.name}" violates foreign key constraint '
        f'"{fk["name"]}"',
        detail=f"Key ({', '.join(fk['columns'])})=({', '.join(str(x) for x in vals)}) is not "
               f'present in table "{parent.name}".', table=info.name)


def _points_at(constraints: Any, parent: TableInfo) -> bool:
    return any(c.get("type") == "foreign" and c.get("ref_table") == parent.name
               and c.get("ref_workspace") == parent.workspace for c in constraints or ())


def referencing(session: Session, parent: TableInfo) -> list[tuple[TableInfo, dict[str, Any]]]:
    """(table, constraint) of every foreign key that references ``parent``."""
    # Every DELETE asks: answer from the catalog's specs without building TableInfos.
    specs = session.db.catalog.list_objects("table").values()
    if not any(_points_at(s.get("constraints"), parent) for s in specs) and not any(
            t is not None and _points_at(t.constraints, parent)
            for t in session._overlay.values()):
        return []
    out = []
    for t in session.all_tables():
        for fk in foreign_keys(t):
            if fk["ref_workspace"] == parent.workspace and fk["ref_table"] == parent.name:
                out.append((t, fk))
    return out


def on_parent_delete(session: Session, parent: TableInfo, old: pa.Table,
                     new: pa.Table | None = None) -> None:
    """Carry out the referencing tables' actions for parent rows a statement deletes
    (``new`` None) or updates (``new``: the rows after the update, same order)."""
    children = referencing(session, parent)
    if not children or old.num_rows == 0:
        return
    # NO ACTION / RESTRICT checks first: their error is the one PostgreSQL reports.
    children.sort(key=lambda cf: cf[1]["on_delete"] not in ("a", "r"))
    for child, fk in children:
        ref = tuple(fk["ref_columns"])
        old_keys = _keys(old, ref)
        if new is not None:
            new_keys = _keys(new, ref)
            gone = {o for o, n in zip(old_keys, new_keys, strict=True)
                    if o is not None and o != n}
        else:
            gone = {o for o in old_keys if o is not None}
        if not gone:
            continue
        flat = [[str(x) for x in (k if isinstance(k, tuple) else (k,))] for k in gone]
        cols = fk["columns"]
        probe = "ARRAY[" + ", ".join(f"CAST({quote_ident(c)} AS VARCHAR)" for c in cols) + "]"
        where = f"list_contains($1, {probe})"
        target = f"{quote_ident(child.workspace)}.{quote_ident(child.name)}"
        action = fk["on_delete"] if new is None else "a"
        from . import dml

        if action == "c":
            stmt = ast.parse(f"DELETE FROM {target} WHERE {where}").stmts[0].stmt
            dml.delete(session, stmt.delete_stmt, [flat])
        elif action in ("n", "d"):
            sets = ", ".join(f"{quote_ident(c)} = {'NULL' if action == 'n' else 'DEFAULT'}"
                             for c in cols)
            stmt = ast.parse(f"UPDATE {target} SET {sets} WHERE {where}").stmts[0].stmt
            dml.update(session, stmt.update_stmt, [flat])
        else:
            stmt = ast.parse(f"SELECT {', '.join(quote_ident(c) for c in cols)} FROM {target} "
                             f"WHERE {where} LIMIT 1").stmts[0].stmt
            res = session.run_select(stmt, [flat])
            if res.rows:
                vals = res.rows[0]
                raise E.ForeignKeyViolation(
                    f'update or delete on table "{parent.name}" violates foreign key '
                    f'constraint "{fk["name"]}" on table "{child.name}"',
                    detail=f"Key ({', '.join(fk['ref_columns'])})=("
                           f"{', '.join(str(x) for x in vals)}) is still referenced from "
                           f'table "{child.name}".', table=parent.name)
