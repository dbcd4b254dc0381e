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
- **Columns**: ``SELECT``, ``INSERT``, ``UPDATE`` and ``REFERENCES`` may be granted on
  columns of a table or view (``GRANT SELECT (a, b) ON t``; ``ALL (a)`` is the four), kept
  in the same catalog object as the table's grants (``columns``: grantee -> column ->
  privileges). PostgreSQL's executor check: a statement needs each privilege on the table,
  or else on every column it uses for that privilege, the columns found in its parse tree
  by colrefs.py (every column named anywhere, ``*`` and whole-row references all of them);
  a statement that uses no column of the relation (``count(*)``) needs the privilege on any
  column. Writes always get this check (the columns their WHERE / SET expressions /
  RETURNING read need ``SELECT`` even with the table's write privilege); reads only when
  the role lacks the table privilege and holds some column grant there, so a role with
  table grants pays nothing more. The refusal is PostgreSQL's ``permission denied for
  table t``. ``REVOKE`` of a table privilege takes it off every column too (PostgreSQL's
  ExecGrant_Relation); grants follow a column renamed and go with one dropped. MERGE is
  a write like the others, with PostgreSQL's marks (transformMergeStmt): UPDATE on the
  columns of its SET lists, INSERT on those its INSERTs fill, DELETE on the table, SELECT
  on what its join condition, WHEN conditions, values and RETURNING name (and on some
  column for DO NOTHING). Statement kinds colrefs.py does not take apart need the table
  privileges. Behind the check, a read through column grants gets a view of the table
  holding only the granted columns (:func:`column_mask`, engine/scan.py): a name the check
  missed finds no value (42703), whatever DuckDB makes of it. The catalogs show them
  (sql/colprivs.py): ``pg_attribute.attacl``, ``information_schema.column_privileges``,
  ``has_column_privilege``, psql's ``\\dp``, pg_dump.
- **Owners**: every table and schema is owned by the bootstrap superuser. A role that is not
  a superuser cannot create, alter or drop tables or schemas (42501), so ``GRANT CREATE ON
  SCHEMA`` is refused as not supported. Grants are kept in the catalog (kind ``acl``) and
  apply from the grantee's next statement; a schema ``USAGE`` grant from its next login.
- **Dropping a role**: ``DROP ROLE`` of a role that still holds privileges on a live table,
  view, column or schema is refused with 2BP01 and the list PostgreSQL gives (a role made
  later under the name would otherwise hold them); ``DROP OWNED BY`` (a superuser, or the
  role itself) revokes them all, as roles own nothing else.

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
    UndefinedColumn,
    UndefinedObject,
    UndefinedTable,
)
from . import colrefs, roles

KIND = "acl"
PUBLIC = "public"
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
#: the privileges PostgreSQL grants on columns
COLUMN_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "REFERENCES")
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


#: grantee -> column -> privileges (PostgreSQL's ``pg_attribute.attacl``)
ColumnGrants = dict[str, dict[str, list[str]]]


def _column_grants(db: Any, key: str) -> ColumnGrants:
    obj = db.catalog.get_object(KIND, key)
    if obj is None:
        return {}
    return {g: {c: list(p) for c, p in cols.items()}
            for g, cols in dict(obj.get("columns") or {}).items()}


def _put(db: Any, key: str, grants: dict[str, list[str]],
         columns: ColumnGrants | None = None) -> None:
    if columns is None:
        columns = _column_grants(db, key)
    cols = {g: {c: sorted(set(p)) for c, p in by_col.items() if p}
            for g, by_col in columns.items()}
    db.catalog.put_object(KIND, key, {
        "grants": {k: sorted(set(v)) for k, v in grants.items() if v},
        "columns": {g: c for g, c in cols.items() if c}})


def _holds(grants: dict[str, list[str]], role: str, privilege: str) -> bool:
    return privilege in grants.get(role, ()) or privilege in grants.get(PUBLIC, ())


def _columns_held(columns: ColumnGrants, role: str, privilege: str) -> set[str]:
    """The columns on which ``role`` (or PUBLIC) holds ``privilege`` by a column grant."""
    return {c for g in (role, PUBLIC) for c, p in columns.get(g, {}).items()
            if privilege in p}


def schema_privileges_of(db: Any, workspace: str) -> dict[str, list[str]]:
    """The grants on a schema: grantee (``public`` for PUBLIC) -> privileges."""
    return _grants(db, _schema_key(workspace))


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


def column_mask(session: Any, info: Any) -> frozenset[str] | None:
    """The only columns of table ``info`` that a statement of this session may read (its
    role lacks SELECT on the table, and holds it on these columns), or None (no limit).
    engine/scan.py shows just these in the statement's view of the table. None granted
    while the statement got this far: 42501 (the check before binding would have refused
    it)."""
    role = getattr(session, "acl_role", None)
    if role is None or info.workspace in _SYSTEM or info.name == "_files":
        return None
    key = _table_key(str(info.workspace), str(info.name), int(info.oid or 0))
    if _holds(_grants(session.db, key), role, "SELECT"):
        return None
    held = _columns_held(_column_grants(session.db, key), role, "SELECT")
    if not held:
        raise InsufficientPrivilege(f"permission denied for table {info.name}")
    return frozenset(held)


def column_privileges_of(db: Any, workspace: str, name: str, oid: int) -> ColumnGrants:
    """The column grants on a table or view: grantee (``public`` for PUBLIC) -> column ->
    privileges."""
    return {g: {c: p for c, p in cols.items() if p}
            for g, cols in _column_grants(db, _table_key(workspace, name, oid)).items()}


def holds(db: Any, role: str, workspace: str, name: str, oid: int, privilege: str) -> bool:
    """Whether ``role`` (a superuser: always) holds ``privilege`` on a table or view."""
    if roles.is_superuser(db, role) or workspace in _SYSTEM:
        return True
    return _holds(_grants(db, _table_key(workspace, name, oid)), role, privilege.upper())


def check_table_named(session: Any, workspace: str | None, table: str, privilege: str,
                      columns: list[str] | None = None) -> None:
    """:func:`check_table` for a table given by name (COPY FROM STDIN): the privilege on
    the table, or on each of ``columns`` (all of the table's when none are named)."""
    if getattr(session, "acl_role", None) is None:
        return
    found = _resolve(session, workspace, table)
    if found is None:
        return
    try:
        check_table(session, *found[:3], privilege, found[3])
    except InsufficientPrivilege:
        need = colrefs.Need({privilege}, columns=found[4])
        getattr(need, privilege.lower()).update(columns or found[4])
        _check_need(session, found[:4], need)


def _resolve(session: Any, schema: str | None, name: str
             ) -> tuple[str, str, int, str, list[str]] | None:
    """(workspace, name, oid, "table" | "view", column names) of a lake table or a view, or
    None."""
    if schema in _SYSTEM:
        return None
    from ..engine import views

    try:
        info = session.resolve_table(schema, name)
        if info is None:
            view = views.resolve(session, schema, name)
            if view is None:
                return None
            return view.workspace, view.name, view.oid, "view", [n for n, _ in view.columns]
    except Exception:  # noqa: BLE001 - a bad name is the statement's error to report
        return None
    return (str(info.workspace), str(info.name), int(info.oid), "table",
            [c.name for c in info.columns])


def _resolved(session: Any, rv: Any) -> tuple[str, str, int, str, list[str]] | None:
    """(workspace, name, oid, kind, columns) of the table or view a RangeVar names, or None
    for what is neither (CTEs, the catalogs, names that do not exist: the statement reports
    those)."""
    return _resolve(session, rv.schemaname or None, rv.relname)


#: statements that write to a table: their column needs are always worked out (the columns
#: they read need SELECT, as in PostgreSQL, even with the table's write privilege)
_WRITES = ("insert_stmt", "update_stmt", "delete_stmt", "merge_stmt")


def _check_merge_tables(session: Any, node: Any) -> None:
    """A MERGE that colrefs.py could not take apart: the table privilege of every action
    it names on the target, and SELECT (the join reads it)."""
    from postgast import pg_query_pb2 as pb

    found = _resolved(session, node.relation)
    if found is None:
        return
    names = {pb.CMD_UPDATE: "UPDATE", pb.CMD_DELETE: "DELETE", pb.CMD_INSERT: "INSERT"}
    for w in node.merge_when_clauses:
        priv = names.get(w.merge_when_clause.command_type)
        if priv is not None:
            check_table(session, *found[:3], priv, found[3])
    check_table(session, *found[:3], "SELECT", found[3])


def check_statement(session: Any, kind: str | None, stmt: Any) -> None:
    """The engine's ``check_privileges`` hook: called before every statement runs.

    Table privileges first, as PostgreSQL's executor does; a relation the role lacks the
    table privilege on passes when its column grants cover the columns the statement uses
    (colrefs.py finds them), which is worked out only for such a relation and for writes."""
    role = getattr(session, "acl_role", None)
    if role is None:
        return
    from postgast import pg_query_pb2 as pb

    from ..sql import ast

    node = ast.inner(stmt)
    if kind == "prepare_stmt":
        return  # checked when EXECUTE runs it (engine/prepared.py), as in PostgreSQL
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
    elif kind == "copy_stmt" and node.HasField("relation"):
        targets[(node.relation.relname, node.relation.location)] = \
            "INSERT" if node.is_from else "SELECT"
    elif kind == "truncate_stmt":
        for r in node.relations:
            targets[(r.range_var.relname, r.range_var.location)] = "TRUNCATE"
    inner_kind, inner = kind, node
    while inner_kind in ("explain_stmt", "declare_cursor_stmt"):
        inner_kind = ast.kind(inner.query)
        inner = ast.inner(inner.query)
    if inner_kind == "select_stmt" and inner.locking_clause:
        inner_kind = "update_stmt"  # FOR UPDATE / SHARE: UPDATE on the tables it locks
    resolved: dict[tuple[str, str], tuple[str, str, int, str, list[str]] | None] = {}

    def resolve(rv: Any) -> tuple[str, str, int, str, list[str]] | None:
        # each name once per statement: a self-join or a subquery names its table again
        name = (rv.schemaname, rv.relname)
        if name not in resolved:
            resolved[name] = _resolved(session, rv)
        return resolved[name]

    nodes = list(ast.walk(stmt))
    # an unqualified name of one of the statement's CTEs is never bound to a table
    # (engine/scan.py's bind skips it the same way): nothing to check; but the target of a
    # write is always the table of that name
    ctes = {c.common_table_expr.ctename for m in nodes if isinstance(m, pb.WithClause)
            for c in m.ctes}
    short: list[tuple[tuple[str, str, int, str, list[str]], str]] = []
    for m in nodes:
        if isinstance(m, (pb.InsertStmt, pb.UpdateStmt, pb.DeleteStmt)):
            inner_kind = "update_stmt"  # a write anywhere (a CTE's too) is taken apart
        if not isinstance(m, pb.RangeVar) or (
                not m.schemaname and m.relname in ctes
                and (m.relname, m.location) not in targets):
            continue
        found = resolve(m)
        if found is None or found[1] == "_files":
            continue  # _files: its schema's USAGE (the session's workspace limit) is enough
        priv = targets.get((m.relname, m.location), "SELECT")
        if not _holds(_grants(session.db, _table_key(*found[:3])), role, priv):
            short.append((found, priv))
    if not short and inner_kind not in _WRITES:
        return
    if inner_kind not in _WRITES and not any(
            _column_grants(session.db, _table_key(*f[:3])) for f, _ in short):
        check_table(session, *short[0][0][:3], short[0][1], short[0][0][3])
    analysis = colrefs.analyze(kind, stmt, lambda rv: _rel(resolve(rv)))
    if analysis is None:  # not taken apart: table privileges on all it names
        if inner_kind == "merge_stmt":
            _check_merge_tables(session, inner)
        for found, priv in short:
            check_table(session, *found[:3], priv, found[3])
        return
    needs, seen = analysis
    for m in ast.walk(stmt):
        if isinstance(m, pb.RangeVar) and (m.relname, m.location) not in seen:
            found = resolve(m)
            if found is not None:
                check_table(session, *found[:3], targets.get((m.relname, m.location),
                                                             "SELECT"), found[3])
    for key, need in needs.items():
        _check_need(session, key, need)


def _rel(found: tuple[str, str, int, str, list[str]] | None) -> colrefs.Rel | None:
    if found is None or found[1] == "_files":
        return None
    return colrefs.Rel(found[:4], found[4])


def _check_need(session: Any, key: tuple[str, str, int, str], need: colrefs.Need) -> None:
    """PostgreSQL's ExecCheckOneRelPerms: each privilege the statement needs on the
    relation, held on the table, or on every column it covers (on any column when it
    covers none: ``count(*)``, ``INSERT ... DEFAULT VALUES``); a whole row covers all."""
    role = session.acl_role
    ws, name, oid, what = key
    tkey = _table_key(ws, name, oid)
    grants = _grants(session.db, tkey)
    columns: ColumnGrants | None = None
    for priv in sorted(need.privileges):
        if _holds(grants, role, priv):
            continue
        if priv in COLUMN_PRIVILEGES:
            if columns is None:
                columns = _column_grants(session.db, tkey)
            # a name that is no column is the statement's 42703, reported when it runs
            wanted = getattr(need, priv.lower()) & set(need.columns)
            held = _columns_held(columns, role, priv)
            if (wanted and wanted <= held) or (not wanted and held):
                continue
        raise InsufficientPrivilege(f"permission denied for {what} {name}")


def column_changed(session: Any, change: Any, params: Any) -> Result:  # noqa: ARG001
    """engine/ddl.py's ``column_changed`` hook, ``change`` = (workspace, table, oid, old
    name, new name or None): column grants follow a renamed column and go with a dropped
    one (PostgreSQL keeps them by column number, so neither a rename loses them nor a new
    column of a dropped one's name finds them)."""
    ws, table, oid, old, new = change
    key = _table_key(ws, table, oid)
    columns = _column_grants(session.db, key)
    if any(old in by_col for by_col in columns.values()):
        for by_col in columns.values():
            privs = by_col.pop(old, None)
            if privs and new:
                by_col[new] = privs
        _put(session.db, key, _grants(session.db, key), columns)
    return Result(command="ALTER TABLE")


def _privileges(node: Any, allowed: tuple[str, ...], what: str
                ) -> tuple[list[str], dict[str, list[str]]]:
    """The table (or schema) privileges a GRANT / REVOKE names, and its column ones:
    privilege -> columns (``SELECT (a, b)``; ``ALL (a)`` is every column privilege)."""
    if not node.privileges:  # ALL [PRIVILEGES]
        return list(allowed), {}
    out: list[str] = []
    cols: dict[str, list[str]] = {}
    for p in node.privileges:
        name = p.access_priv.priv_name.upper()
        if p.access_priv.cols:
            if what != "relation":
                raise SyntaxErrorOrAccessRuleViolation(
                    f"column privileges are only valid for relations, not {what}s")
            names = [c.string.sval for c in p.access_priv.cols]
            for priv in ([name] if name else COLUMN_PRIVILEGES):
                if priv not in COLUMN_PRIVILEGES:
                    raise SyntaxErrorOrAccessRuleViolation(
                        f"invalid privilege type {priv} for column")
                cols.setdefault(priv, [])
                cols[priv] += [c for c in names if c not in cols[priv]]
            continue
        if name not in allowed:
            raise SyntaxErrorOrAccessRuleViolation(
                f"invalid privilege type {name} for {what}")
        out.append(name)
    return out, cols


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
    columns: dict[str, list[str]] = {}  # privilege -> columns
    known: dict[str, list[str]] = {}  # catalog key -> the relation's columns
    pending: dict[str, tuple[str, str]] = {}  # key -> (workspace, name) not numbered yet
    if node.objtype == pb.OBJECT_TABLE:
        privs, columns = _privileges(node, TABLE_PRIVILEGES, "relation")
        if node.targtype == pb.ACL_TARGET_ALL_IN_SCHEMA:
            for o in node.objects:
                ws = o.string.sval
                session.check_workspace(ws)
                for t in db.catalog.tables(ws):
                    keys.append((_table_key(ws, t.name, t.oid), t.name))
                    known[keys[-1][0]] = [c.name for c in t.columns]
                # ALL TABLES takes in the views there too, as in PostgreSQL
                for v in views.all_views(db, session):
                    if v.workspace == ws and not v.temp:
                        keys.append((_table_key(ws, v.name, v.oid), v.name))
                        known[keys[-1][0]] = [n for n, _ in v.columns]
        else:
            for o in node.objects:
                rv = o.range_var
                found = _resolved(session, rv)
                if found is None:
                    raise UndefinedTable(f'relation "{rv.relname}" does not exist',
                                         table=rv.relname)
                keys.append((_table_key(*found[:3]), found[1]))
                known[keys[-1][0]] = found[4]
                if found[3] == "table" and found[2] == 0:
                    # created in this transaction: its oid (part of the key) comes at COMMIT
                    pending[keys[-1][0]] = (found[0], found[1])
    elif node.objtype == pb.OBJECT_SCHEMA:
        privs, _ = _privileges(node, SCHEMA_PRIVILEGES, "schema")
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
    for key, rel in keys:
        for c in sorted({c for cs in columns.values() for c in cs} - set(known.get(key, ()))):
            raise UndefinedColumn(f'column "{c}" of relation "{rel}" does not exist')
    for key, _ in keys:
        if key in pending:
            # pg_restore --single-transaction creates a table and grants on it in one
            # transaction: the grant is kept under the oid the table gets at COMMIT (and
            # is never kept if the transaction rolls back).
            ws, name = pending[key]
            session.on_commit(lambda ws=ws, name=name, cols=known[key]: _grant_created(
                db, ws, name, cols, grantees, privs, columns, node.is_grant))
            continue
        _apply_grant(db, key, known.get(key, []), grantees, privs, columns, node.is_grant)
    return Result(command=word)


def _grant_created(db: Any, workspace: str, name: str, known: list[str], grantees: list[str],
                   privs: list[str], columns: dict[str, list[str]], is_grant: bool) -> None:
    """A GRANT / REVOKE on a table created in the same transaction, once it is committed."""
    info = db.catalog.find_table(workspace, name)
    if info is not None:
        _apply_grant(db, _table_key(workspace, name, int(info.oid)), known, grantees, privs,
                     columns, is_grant)


def _apply_grant(db: Any, key: str, known: list[str], grantees: list[str], privs: list[str],
                 columns: dict[str, list[str]], is_grant: bool) -> None:
    grants = _grants(db, key)
    by_column = _column_grants(db, key)
    for g in grantees:
        have = set(grants.get(g, ()))
        grants[g] = sorted(have | set(privs)) if is_grant else sorted(have - set(privs))
        mine = by_column.setdefault(g, {})
        # REVOKE of a table privilege takes it off every column too (PostgreSQL's
        # ExecGrant_Relation, per the SQL standard); a GRANT of it leaves them be
        revoke_all = set() if is_grant else set(privs) & set(COLUMN_PRIVILEGES)
        for col in known:
            held = set(mine.get(col, ())) - revoke_all
            given = {p for p, cs in columns.items() if col in cs}
            held = held | given if is_grant else held - given
            mine[col] = sorted(held)
    _put(db, key, grants, by_column)


def _live_objects(db: Any) -> dict[str, str]:
    """Catalog key -> what PostgreSQL calls it ("table ws.t", "schema ws") of the tables,
    views and schemas that exist now (the grants of a dropped table stay in the catalog
    under its old oid, and count for nothing)."""
    from ..engine import views

    out = {_schema_key(ws): f"schema {ws}" for ws in db.catalog.workspaces()}
    out[_schema_key("public")] = "schema public"
    for t in db.catalog.all_tables():
        out[_table_key(str(t.workspace), str(t.name), int(t.oid or 0))] = \
            f"table {t.workspace}.{t.name}"
    for spec in db.catalog.list_objects(views.KIND).values():
        v = views.ViewDef.from_json(spec)
        out[_table_key(v.workspace, v.name, v.oid)] = f"view {v.workspace}.{v.name}"
    return out


def privileges_held(db: Any, role: str) -> list[str]:
    """What ``role`` holds privileges on, worded as PostgreSQL's DROP ROLE lists it
    ("privileges for table ws.t", "privileges for column c of table ws.t")."""
    live = _live_objects(db)
    out: list[str] = []
    for key in sorted(db.catalog.list_objects(KIND)):
        what = live.get(key)
        if what is None:
            continue
        if _grants(db, key).get(role):
            out.append(f"privileges for {what}")
        for col, privs in sorted(_column_grants(db, key).get(role, {}).items()):
            if privs:
                out.append(f"privileges for column {col} of {what}")
    return out


def revoke_all_from(db: Any, role: str) -> None:
    """Take every privilege granted to ``role`` away (``DROP OWNED BY``; roles own no
    objects in tarndb, so that is all it drops)."""
    for key in list(db.catalog.list_objects(KIND)):
        grants, columns = _grants(db, key), _column_grants(db, key)
        if role in grants or role in columns:
            grants.pop(role, None)
            columns.pop(role, None)
            _put(db, key, grants, columns)
