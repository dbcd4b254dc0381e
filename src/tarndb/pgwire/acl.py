"""Privileges of roles that log in with a password: ``GRANT`` / ``REVOKE`` on schemas and
tables, checked as PostgreSQL checks them.

Who is checked: a session whose ``acl_role`` is set, which the Postgres front end sets for a
role that is not a superuser (a superuser after ``SET ROLE`` to one, too). API-token sessions
are limited by their token instead (workspaces, read/write); superusers and embedded use are
not checked.

The model, PostgreSQL's with one simplification:

- **Schemas**: ``USAGE`` lets a role reach objects in a schema; ``public`` has it for
  ``PUBLIC`` by default (PostgreSQL 15's default). A role's session is limited to the schemas
  it has ``USAGE`` on when it logs in (the engine's workspace limit: qualified names,
  ``search_path``, ``_files``, ``deep_memory()`` and the catalog views all follow it).
- **Tables and views**: ``SELECT``, ``INSERT``, ``UPDATE``, ``DELETE``, ``TRUNCATE`` (and
  ``REFERENCES``, ``TRIGGER``, kept but unused) per table or view, granted per relation or
  ``ON ALL TABLES IN SCHEMA`` (the tables and views there now, as in PostgreSQL). Every
  statement's relations are checked: the target of INSERT/UPDATE/DELETE/COPY FROM for that
  privilege, every other table or view read for ``SELECT``. What a view reads is checked
  when it is expanded (engine/views.py): as the reader for a ``security_invoker`` view, not
  at all (its owner, a superuser) for a plain one; the reader's schemas limit both.
- **Owners**: every table and schema is owned by the bootstrap superuser. A role that is not
  a superuser cannot create, alter or drop tables or schemas (42501), so ``GRANT CREATE ON
  SCHEMA`` is refused as not supported. Grants are kept in the catalog (kind ``acl``) and
  apply from the grantee's next statement; a schema ``USAGE`` grant from its next login.

``GRANT`` / ``REVOKE`` on sequences, functions and the database are accepted and change
nothing (sequences behind SERIAL columns are used through the table's ``INSERT``).
"""

from __future__ import annotations

from typing import Any

from ..engine.result import Result
from ..errors import (
    FeatureNotSupported,
    InsufficientPrivilege,
    SyntaxErrorOrAccessRuleViolation,
    UndefinedObject,
    UndefinedTable,
)
from . import roles

KIND = "acl"
PUBLIC = "public"
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
SCHEMA_PRIVILEGES = ("USAGE", "CREATE")
_SYSTEM = ("pg_catalog", "information_schema")
#: Statements that create, change or drop objects: owners only, and only superusers own.
_DDL = {"create_stmt", "create_table_as_stmt", "view_stmt", "create_schema_stmt", "index_stmt",
        "alter_table_stmt", "drop_stmt", "rename_stmt", "create_seq_stmt", "alter_seq_stmt",
        "comment_stmt", "create_function_stmt", "alter_owner_stmt"}


def _table_key(workspace: str, table: str, oid: int) -> str:
    # With the table's oid: a table dropped and made again under its name starts with no
    # grants, as in PostgreSQL.
    return f"table:{workspace}.{table}:{oid}"


def _schema_key(workspace: str) -> str:
    return f"schema:{workspace}"


def _grants(db: Any, key: str) -> dict[str, list[str]]:
    obj = db.catalog.get_object(KIND, key)
    if obj is None:
        return {PUBLIC: ["USAGE"]} if key == _schema_key("public") else {}
    return {k: list(v) for k, v in dict(obj.get("grants") or {}).items()}


def _put(db: Any, key: str, grants: dict[str, list[str]]) -> None:
    db.catalog.put_object(KIND, key, {"grants": {k: sorted(set(v)) for k, v in grants.items()
                                                 if v}})


def _holds(grants: dict[str, list[str]], role: str, privilege: str) -> bool:
    return privilege in grants.get(role, ()) or privilege in grants.get(PUBLIC, ())


def usable_schemas(db: Any, role: str) -> set[str]:
    """The schemas ``role`` has USAGE on (its session's workspace limit)."""
    names = set(db.catalog.workspaces()) | {"public"}
    return {ws for ws in names if _holds(_grants(db, _schema_key(ws)), role, "USAGE")}


def check_table(session: Any, workspace: str, table: str, oid: int, privilege: str,
                what: str = "table") -> None:
    """Raise 42501 unless the session's ``acl_role`` holds ``privilege`` on the table (or
    the view: ``what``)."""
    role = getattr(session, "acl_role", None)
    if role is None or workspace in _SYSTEM or table == "_files":
        return  # _files: its schema's USAGE (the session's workspace limit) is enough
    if not _holds(_grants(session.db, _table_key(workspace, table, oid)), role, privilege):
        raise InsufficientPrivilege(f"permission denied for {what} {table}")


def privileges_of(db: Any, workspace: str, name: str, oid: int) -> dict[str, list[str]]:
    """The grants on a table or view: grantee (``public`` for PUBLIC) -> privileges."""
    return _grants(db, _table_key(workspace, name, oid))


def holds(db: Any, role: str, workspace: str, name: str, oid: int, privilege: str) -> bool:
    """Whether ``role`` (a superuser: always) holds ``privilege`` on a table or view."""
    if roles.is_superuser(db, role) or workspace in _SYSTEM:
        return True
    return _holds(_grants(db, _table_key(workspace, name, oid)), role, privilege.upper())


def check_table_named(session: Any, workspace: str | None, table: str, privilege: str) -> None:
    """:func:`check_table` for a table given by name (COPY FROM STDIN)."""
    if getattr(session, "acl_role", None) is None:
        return
    found = _resolve(session, workspace, table)
    if found is not None:
        check_table(session, *found[:3], privilege, found[3])


def _resolve(session: Any, schema: str | None, name: str
             ) -> tuple[str, str, int, str] | None:
    """(workspace, name, oid, "table" | "view") of a lake table or a view, or None."""
    if schema in _SYSTEM:
        return None
    from ..engine import views

    try:
        info = session.resolve_table(schema, name)
        if info is None:
            view = views.resolve(session, schema, name)
            if view is None:
                return None
            return view.workspace, view.name, view.oid, "view"
    except Exception:  # noqa: BLE001 - a bad name is the statement's error to report
        return None
    return str(info.workspace), str(info.name), int(info.oid), "table"


def _resolved(session: Any, rv: Any) -> tuple[str, str, int, str] | None:
    """(workspace, name, oid, kind) of the table or view a RangeVar names, or None for what
    is neither (CTEs, the catalogs, names that do not exist: the statement reports those)."""
    return _resolve(session, rv.schemaname or None, rv.relname)


def check_statement(session: Any, kind: str | None, stmt: Any) -> None:
    """The engine's ``check_privileges`` hook: called before every statement runs."""
    role = getattr(session, "acl_role", None)
    if role is None:
        return
    from postgast import pg_query_pb2 as pb

    from ..sql import ast

    node = ast.inner(stmt)
    if kind == "create_schema_stmt":
        raise InsufficientPrivilege('permission denied for database "postgres"')
    if kind in ("create_stmt", "create_table_as_stmt", "view_stmt", "create_seq_stmt"):
        rv = node.into.rel if kind == "create_table_as_stmt" else (
            node.view if kind == "view_stmt" else (
                node.sequence if kind == "create_seq_stmt" else node.relation))
        raise InsufficientPrivilege(
            f"permission denied for schema {rv.schemaname or session.workspace}")
    if kind in _DDL:
        name = next((m.relname for m in ast.walk(stmt) if isinstance(m, pb.RangeVar)), None)
        raise InsufficientPrivilege(f"must be owner of table {name}" if name else
                                    "must be owner of the object")
    targets: dict[tuple[str, int], str] = {}
    if kind == "insert_stmt":
        targets[(node.relation.relname, node.relation.location)] = "INSERT"
    elif kind == "update_stmt":
        targets[(node.relation.relname, node.relation.location)] = "UPDATE"
    elif kind == "delete_stmt":
        targets[(node.relation.relname, node.relation.location)] = "DELETE"
    elif kind == "merge_stmt":
        # MERGE needs the privilege of every action it names on the target (and SELECT,
        # which PostgreSQL also asks of it: the join reads it).
        found = _resolved(session, node.relation)
        if found is not None:
            names = {pb.CMD_UPDATE: "UPDATE", pb.CMD_DELETE: "DELETE", pb.CMD_INSERT: "INSERT"}
            for w in node.merge_when_clauses:
                priv = names.get(w.merge_when_clause.command_type)
                if priv is not None:
                    check_table(session, *found[:3], priv, found[3])
    elif kind == "copy_stmt" and node.HasField("relation"):
        targets[(node.relation.relname, node.relation.location)] = \
            "INSERT" if node.is_from else "SELECT"
    elif kind == "truncate_stmt":
        for r in node.relations:
            targets[(r.range_var.relname, r.range_var.location)] = "TRUNCATE"
    for m in ast.walk(stmt):
        if not isinstance(m, pb.RangeVar):
            continue
        found = _resolved(session, m)
        if found is not None:
            check_table(session, *found[:3], targets.get((m.relname, m.location), "SELECT"),
                        found[3])


def _privileges(node: Any, allowed: tuple[str, ...], what: str) -> list[str]:
    if not node.privileges:  # ALL [PRIVILEGES]
        return list(allowed)
    out = []
    for p in node.privileges:
        if p.access_priv.cols:
            # never widened to the whole table: a view of those columns does it
            raise FeatureNotSupported(
                "column privileges are not supported",
                hint="Grant SELECT on a view that reads only those columns.")
        name = p.access_priv.priv_name.upper()
        if name not in allowed:
            raise SyntaxErrorOrAccessRuleViolation(
                f"invalid privilege type {name} for {what}")
        out.append(name)
    return out


def _grantees(db: Any, node: Any) -> list[str]:
    from postgast import pg_query_pb2 as pb

    out = []
    for g in node.grantees:
        spec = g.role_spec
        if spec.roletype == pb.ROLESPEC_PUBLIC:
            out.append(PUBLIC)
            continue
        name = spec.rolename
        if roles.get_role(db, name) is None:
            raise UndefinedObject(f'role "{name}" does not exist')
        out.append(name)
    return out


def grant_stmt(session: Any, node: Any, params: Any) -> Result:  # noqa: ARG001
    """``GRANT`` / ``REVOKE`` on tables, views and schemas (the ``grant_stmt`` hook)."""
    from postgast import pg_query_pb2 as pb

    from ..engine import views

    db = session.db
    word = "GRANT" if node.is_grant else "REVOKE"
    keys: list[tuple[str, str]] = []  # (catalog key, object name for messages)
    if node.objtype == pb.OBJECT_TABLE:
        privs = _privileges(node, TABLE_PRIVILEGES, "relation")
        if node.targtype == pb.ACL_TARGET_ALL_IN_SCHEMA:
            for o in node.objects:
                ws = o.string.sval
                session.check_workspace(ws)
                keys += [(_table_key(ws, t.name, t.oid), t.name)
                         for t in db.catalog.tables(ws)]
                # ALL TABLES takes in the views there too, as in PostgreSQL
                keys += [(_table_key(ws, v.name, v.oid), v.name)
                         for v in views.all_views(db, session)
                         if v.workspace == ws and not v.temp]
        else:
            for o in node.objects:
                rv = o.range_var
                found = _resolved(session, rv)
                if found is None:
                    raise UndefinedTable(f'relation "{rv.relname}" does not exist',
                                         table=rv.relname)
                keys.append((_table_key(*found[:3]), found[1]))
    elif node.objtype == pb.OBJECT_SCHEMA:
        privs = _privileges(node, SCHEMA_PRIVILEGES, "schema")
        if "CREATE" in privs and node.privileges:
            raise FeatureNotSupported(
                "GRANT CREATE ON SCHEMA is not supported: in tarndb only superusers create "
                "tables; grant roles privileges on the tables instead")
        privs = [p for p in privs if p != "CREATE"]
        for o in node.objects:
            ws = o.string.sval
            if ws != "public" and not db.catalog.workspace_exists(ws):
                raise UndefinedObject(f'schema "{ws}" does not exist')
            keys.append((_schema_key(ws), ws))
    else:
        privs = []  # sequences, functions, the database: accepted, nothing to keep
    if not roles.is_superuser(db, getattr(session, "user", None)):
        what = "schema" if node.objtype == pb.OBJECT_SCHEMA else "table"
        raise InsufficientPrivilege(
            f"permission denied for {what} {keys[0][1] if keys else ''}".rstrip())
    grantees = _grantees(db, node)
    for key, _ in keys:
        grants = _grants(db, key)
        for g in grantees:
            have = set(grants.get(g, ()))
            grants[g] = sorted(have | set(privs)) if node.is_grant else sorted(have - set(privs))
        _put(db, key, grants)
    return Result(command=word)
