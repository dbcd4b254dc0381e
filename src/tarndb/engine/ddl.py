"""Schema statements: CREATE/DROP SCHEMA and TABLE, CTAS, ALTER TABLE, CREATE/DROP INDEX,
CREATE EXTENSION.

DDL takes effect at once (it is not part of the surrounding transaction): clients such as
psycopg2 open a transaction before every first statement, and a table created there must be
usable by the next statement.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from postgast import pg_query_pb2 as pb

from .. import errors as E
from ..sql import ast
from ..sql import colnames as output_names
from ..storage.tables import RID
from . import fkeys, prepared, sequences, vacuum, views
from .catalog import PLAIN_INDEX_METHODS, ColumnInfo, IndexInfo, TableInfo
from .commit import unique_keys
from .result import Result
from .types import SERIALS, ColumnType, resolve_type

if TYPE_CHECKING:
    from .session import Session


def _type_of(type_name: pb.TypeName) -> tuple[ColumnType, bool]:
    parts = ast.names(type_name.names)
    typmods = tuple(int(ast.const_value(m)) for m in type_name.typmods
                    if ast.kind(m) == "a_const" and isinstance(ast.const_value(m), int))
    plain = [p.lower() for p in parts if p.lower() != "pg_catalog"]
    serial = len(plain) == 1 and plain[0] in SERIALS
    ctype = resolve_type(parts, len(type_name.array_bounds), typmods)
    if ctype.base == "interval":
        # Lance stores no Arrow interval type: say so here, not with a storage error later.
        raise E.FeatureNotSupported(
            "tarndb tables cannot store type interval yet",
            hint="Store the number of seconds (double precision or bigint), or the text.")
    return ctype, serial


def _expr_sql(node: pb.Node) -> str:
    sel = pb.Node()
    sel.select_stmt.target_list.add().res_target.val.CopyFrom(node)
    return ast.deparse_node(sel)[len("SELECT "):]


def _workspace(session: Session, rv: pb.RangeVar) -> str:
    return rv.schemaname or session.workspace


def create_table(session: Session, node: pb.CreateStmt, params: list[Any]) -> Result:
    ws = _workspace(session, node.relation)
    name = node.relation.relname
    if name == "_files":
        raise E.DuplicateTable('"_files" is the file store\'s system table; choose another name')
    if session.find_table(ws, name) is not None or \
            sequences.lookup(session.db, session, ws, name) is not None or \
            views.lookup(session.db, session, ws, name) is not None:
        if node.if_not_exists:
            session.notices.append(f'relation "{name}" already exists, skipping')
            return Result(command="CREATE TABLE")
        raise E.DuplicateTable(f'relation "{name}" already exists', table=name)
    columns: list[ColumnInfo] = []
    pk: list[str] = []
    constraints: list[dict[str, Any]] = []
    foreign: list[tuple[pb.Constraint, list[str]]] = []
    for elt in node.table_elts:
        k = ast.kind(elt)
        if k == "column_def":
            cd = elt.column_def
            if any(c.name == cd.colname for c in columns):
                raise E.DuplicateColumn(f'column "{cd.colname}" specified more than once')
            ctype, serial = _type_of(cd.type_name)
            col = ColumnInfo(cd.colname, ctype, serial=serial, not_null=serial)
            for c in cd.constraints:
                con = c.constraint
                if con.contype == pb.CONSTR_PRIMARY:
                    pk.append(cd.colname)
                    col.not_null = True
                elif con.contype == pb.CONSTR_NOTNULL:
                    col.not_null = True
                elif con.contype == pb.CONSTR_DEFAULT:
                    seq = _nextval_of(con.raw_expr)
                    col.default_sql = (seq and _sequence_default(session, seq)) or \
                        _expr_sql(con.raw_expr)
                elif con.contype == pb.CONSTR_GENERATED:
                    col.generated_sql = _expr_sql(con.raw_expr)
                elif con.contype == pb.CONSTR_IDENTITY:
                    # GENERATED {ALWAYS | BY DEFAULT} AS IDENTITY (Django's primary keys): a
                    # sequence of the column's own, as a serial column has
                    if ctype.base not in ("int2", "int4", "int8") or ctype.ndim:
                        raise E.InvalidTableDefinition(
                            'identity column type must be smallint, integer, or bigint')
                    col.serial = True
                    col.not_null = True
                    col.identity = con.generated_when or "a"
                elif con.contype == pb.CONSTR_FOREIGN:
                    foreign.append((con, [cd.colname]))
                elif con.contype in (pb.CONSTR_UNIQUE, pb.CONSTR_CHECK):
                    constraints.append(_constraint(name, con, [cd.colname]))
            columns.append(col)
        elif k == "constraint" and elt.constraint.contype == pb.CONSTR_PRIMARY:
            for key in elt.constraint.keys:
                pk.append(key.string.sval)
        elif k == "constraint" and elt.constraint.contype == pb.CONSTR_FOREIGN:
            foreign.append((elt.constraint, []))
        elif k == "constraint":
            constraints.append(_constraint(name, elt.constraint, []))
    if len(pk) != len(set(pk)):
        raise E.InvalidTextRepresentation("multiple primary keys are not allowed")
    for key in pk:
        keycol = next((c for c in columns if c.name == key), None)
        if keycol is None:
            raise E.UndefinedColumn(f'column "{key}" named in key does not exist', column=key)
        keycol.not_null = True
    if not columns:
        raise E.FeatureNotSupported("a table needs at least one column")
    if foreign:
        own = unique_keys(TableInfo(ws, name, columns, "", pk, constraints=constraints))
        for con, cols in foreign:
            constraints.append(fkeys.spec_from(session, ws, name, con, cols, own))
    _check_constraint_columns(constraints, columns)
    _name_constraints(name, constraints)
    _create(session, ws, name, columns, pk, constraints)
    return Result(command="CREATE TABLE")


def _constraint(table: str, con: pb.Constraint, columns: list[str]) -> dict[str, Any]:
    """A UNIQUE or CHECK constraint as the catalog keeps it (foreign keys: fkeys.spec_from)."""
    if con.contype == pb.CONSTR_UNIQUE:
        cols = [k.string.sval for k in con.keys] or columns
        return {"name": con.conname, "type": "unique", "columns": cols}
    if con.contype == pb.CONSTR_CHECK:
        return {"name": con.conname, "type": "check", "columns": columns,
                "expr": _expr_sql(con.raw_expr)}
    raise E.FeatureNotSupported("this constraint is not supported by tarndb")


def _check_constraint_columns(constraints: list[dict[str, Any]],
                              columns: list[ColumnInfo]) -> None:
    names = {c.name for c in columns}
    for con in constraints:
        if con["type"] in ("unique", "foreign"):
            for c in con["columns"]:
                if c not in names:
                    raise E.UndefinedColumn(f'column "{c}" named in key does not exist',
                                            column=c)


def _name_constraints(table: str, constraints: list[dict[str, Any]],
                      taken: set[str] | None = None) -> None:
    """PostgreSQL's default names: ``<table>_<cols>_key`` and ``<table>_<col>_check``."""
    used = set(taken or ())
    for con in constraints:
        if not con["name"]:
            suffix = {"unique": "key", "foreign": "fkey"}.get(con["type"], "check")
            base = "_".join([table, *con["columns"][:1 if con["type"] == "check" else None],
                             suffix]) if con["columns"] else f"{table}_{suffix}"
            candidate, n = base, 0
            while candidate in used:
                n += 1
                candidate = f"{base}{n}"
            con["name"] = candidate
        used.add(con["name"])


def _create(session: Session, ws: str, name: str, columns: list[ColumnInfo], pk: list[str],
            constraints: list[dict[str, Any]] | None = None) -> TableInfo:
    cat = session.db.catalog
    cat.ensure_workspace(ws)
    info = TableInfo(ws, name, columns, cat.new_table_path(ws, name), pk,
                     constraints=list(constraints or []))
    schema = pa.schema([pa.field(c.name, c.type.arrow) for c in columns]
                       + [pa.field(RID, pa.int64())])
    # A create in progress until COMMIT or ROLLBACK: the orphan sweep leaves it alone.
    vacuum.hold_create(session, info.path)
    store = session.db.store(info)
    store.create(schema)
    session.on_rollback(lambda: session.db.forget_store(info))
    session.catalog_create(info)
    found = session.find_table(ws, name)
    assert found is not None
    return found


def create_table_as(session: Session, node: pb.CreateTableAsStmt, params: list[Any]) -> Result:
    if node.objtype != pb.OBJECT_TABLE:
        raise E.FeatureNotSupported("only CREATE TABLE ... AS is supported")
    into = node.into
    ws = _workspace(session, into.rel)
    name = into.rel.relname
    if session.find_table(ws, name) is not None:
        if node.if_not_exists:
            session.notices.append(f'relation "{name}" already exists, skipping')
            return Result(command="SELECT 0")
        raise E.DuplicateTable(f'relation "{name}" already exists', table=name)
    from .scan import Scope

    scope = Scope(session)
    output_names.apply(node.query)
    try:
        scope.bind(node.query)
        source_tables = dict(scope.tables)
        table, description = session.query_arrow(node.query, params, scope)
    finally:
        scope.close()
    colnames = [c.string.sval for c in into.col_names] or [d[0] for d in description]
    columns = []
    from .types import from_duckdb

    for i, d in enumerate(description):
        ctype = from_duckdb(str(d[1]))
        # Keep declared types (json vs jsonb, domains) of columns copied straight through.
        for src in source_tables.values():
            col = src.column(d[0])
            if col is not None and col.type.duckdb == ctype.duckdb:
                ctype = col.type
                break
        columns.append(ColumnInfo(colnames[i] if i < len(colnames) else d[0], ctype))
    info = _create(session, ws, name, columns, [])
    n = 0
    if table is not None and table.num_rows and not into.skip_data:
        from .dml import storage_expr, to_storage
        from .scan import Scope as _Scope
        from .scan import quote_ident

        scope = _Scope(session)
        try:
            raw = scope.register(table, "__ctas")
            exprs = [storage_expr(f"{raw}.{quote_ident(table.column_names[i])}", c)
                     + f" AS {quote_ident(c.name)}" for i, c in enumerate(info.columns)]
            out, _ = session.run_duckdb(f"SELECT {', '.join(exprs)} FROM {raw}", [])
        finally:
            scope.close()
        rows = to_storage(out, info, info.column_names)
        rids = session.db.allocate_rids(info, rows.num_rows)
        session.change_for(info).add_rows(rows.append_column(RID, pa.array(rids, pa.int64())))
        n = rows.num_rows
    return Result(command=f"SELECT {n}", rowcount=n)


def create_schema(session: Session, node: pb.CreateSchemaStmt, params: list[Any]) -> Result:
    cat = session.db.catalog
    existed = cat.workspace_exists(node.schemaname)
    cat.create_workspace(node.schemaname, if_not_exists=node.if_not_exists)
    if not existed:
        session.on_rollback(lambda: cat.drop_workspace(node.schemaname, missing_ok=True))
    return Result(command="CREATE SCHEMA")


def drop(session: Session, node: pb.DropStmt, params: list[Any]) -> Result:
    cat = session.db.catalog
    cascade = node.behavior == pb.DROP_CASCADE
    if node.remove_type == pb.OBJECT_TABLE:
        for obj in node.objects:
            parts = ast.names(obj.list.items)
            ws = parts[-2] if len(parts) >= 2 else None
            info = session.resolve_table(ws, parts[-1])
            if info is None:
                if node.missing_ok:
                    session.notices.append(f'table "{parts[-1]}" does not exist, skipping')
                    continue
                raise E.UndefinedTable(f'table "{parts[-1]}" does not exist', table=parts[-1])
            _drop_references_to(session, info, cascade, dropping={
                (o.workspace, o.name) for o in [info]})
            views.check_dependents(session, info.workspace, info.name, "table", cascade,
                                   {(info.workspace, info.name)})
            session.catalog_drop(info)
            sequences.drop_owned(session, info)
        return Result(command="DROP TABLE")
    if node.remove_type == pb.OBJECT_SEQUENCE:
        return sequences.drop(session, node)
    if node.remove_type == pb.OBJECT_VIEW:
        return views.drop(session, node)
    if node.remove_type == pb.OBJECT_SCHEMA:
        for obj in node.objects:
            name = obj.string.sval
            session.refuse_in_transaction_block("DROP SCHEMA")
            tables = cat.tables(name) if cat.workspace_exists(name) else []
            sequences.drop_workspace(session, name, cascade)
            cat.drop_workspace(name, cascade=cascade, missing_ok=node.missing_ok)
            for info in tables:
                session.db.forget_store(info)
        return Result(command="DROP SCHEMA")
    if node.remove_type == pb.OBJECT_INDEX:
        for obj in node.objects:
            parts = ast.names(obj.list.items)
            found = _find_index(session, parts[-1], parts[-2] if len(parts) > 1 else None)
            if found is None:
                if node.missing_ok:
                    session.notices.append(f'index "{parts[-1]}" does not exist, skipping')
                    continue
                raise E.UndefinedObject(f'index "{parts[-1]}" does not exist')
            info, ix = found
            info.indexes = [i for i in info.indexes if i.name != ix.name]
            session.catalog_update(info)
            session.on_commit(lambda info=info, ix=ix: session.db.drop_index_state(info, ix))
        return Result(command="DROP INDEX")
    if node.remove_type == pb.OBJECT_EXTENSION:
        for obj in node.objects:
            name = ast.const_value(obj) if ast.kind(obj) == "string" else None
            name = obj.string.sval if ast.kind(obj) == "string" else name
            if name and session.db.catalog.get_object("extension", name.lower()) is not None:
                session.db.catalog.delete_object("extension", name.lower())
        return Result(command="DROP EXTENSION")
    raise E.FeatureNotSupported("DROP of this object type is not supported")


def _drop_references_to(session: Session, info: TableInfo, cascade: bool,
                        dropping: set[tuple[str, str]]) -> None:
    """Foreign keys of other tables that reference ``info``: 2BP01, or with CASCADE the
    constraints go (the referencing tables stay), as in PostgreSQL."""
    deps = [(t, fk) for t, fk in fkeys.referencing(session, info)
            if (t.workspace, t.name) not in dropping]
    if not deps:
        return
    if not cascade:
        t, fk = deps[0]
        raise E.DependentObjectsStillExist(
            f'cannot drop table {info.name} because other objects depend on it',
            detail=f'constraint {fk["name"]} on table {t.name} depends on table {info.name}',
            hint="Use DROP ... CASCADE to drop the dependent objects too.")
    for t, fk in deps:
        session.notices.append(f'drop cascades to constraint {fk["name"]} on table {t.name}')
        t.constraints = [c for c in t.constraints if c.get("name") != fk["name"]]
        session.catalog_update(t)


def _find_index(session: Session, name: str, ws: str | None) -> tuple[TableInfo, IndexInfo] | None:
    for info in session.all_tables():
        if ws and info.workspace != ws:
            continue
        for ix in info.indexes:
            if ix.name == name:
                return info, ix
    return None


def alter_table(session: Session, node: pb.AlterTableStmt, params: list[Any]) -> Result:
    if node.objtype == pb.OBJECT_SEQUENCE:
        return _alter_sequence_owner(session, node)
    if node.objtype not in (pb.OBJECT_TABLE, pb.OBJECT_VIEW, 0):
        raise E.FeatureNotSupported("only ALTER TABLE is supported")
    info = session.resolve_table(node.relation.schemaname or None, node.relation.relname)
    if info is None and views.resolve(session, node.relation.schemaname or None,
                                      node.relation.relname) is not None:
        # ALTER TABLE / VIEW v OWNER TO (pg_dump's): views are owned as tables are;
        # SET / RESET (security_invoker) change how the view is read (engine/views.py)
        for c in node.cmds:
            sub = c.alter_table_cmd.subtype
            if sub in (pb.AT_SetRelOptions, pb.AT_ResetRelOptions):
                views.set_options(session, node.relation, c.alter_table_cmd,
                                  reset=sub == pb.AT_ResetRelOptions)
                continue
            if sub != pb.AT_ChangeOwner:
                raise E.FeatureNotSupported(
                    f'ALTER of view "{node.relation.relname}" is not supported; use CREATE OR '
                    "REPLACE VIEW")
            _check_owner(session, c.alter_table_cmd.newowner)
        return Result(command="ALTER VIEW" if node.objtype == pb.OBJECT_VIEW
                      else "ALTER TABLE")
    if info is not None and node.objtype == pb.OBJECT_VIEW:
        raise E.WrongObjectType(f'"{info.name}" is not a view')
    if info is None and _is_sequence(session, node.relation) and all(
            c.alter_table_cmd.subtype == pb.AT_ChangeOwner for c in node.cmds):
        # ALTER TABLE seq OWNER TO (pg_dump's, for a sequence)
        for c in node.cmds:
            _check_owner(session, c.alter_table_cmd.newowner)
        return Result(command="ALTER TABLE")
    if info is None:
        if node.missing_ok:
            session.notices.append(f'relation "{node.relation.relname}" does not exist, skipping')
            return Result(command="ALTER TABLE")
        raise E.UndefinedTable(f'relation "{node.relation.relname}" does not exist')
    store = session.db.store(info)
    for c in node.cmds:
        cmd = c.alter_table_cmd
        if cmd.subtype == pb.AT_AddColumn:
            cd = getattr(cmd, "def").column_def
            if info.column(cd.colname) is not None:
                if cmd.missing_ok:
                    session.notices.append(
                        f'column "{cd.colname}" of relation "{info.name}" already exists, '
                        "skipping")
                    continue
                raise E.DuplicateColumn(
                    f'column "{cd.colname}" of relation "{info.name}" already exists')
            ctype, serial = _type_of(cd.type_name)
            col = ColumnInfo(cd.colname, ctype, serial=serial)
            for con in cd.constraints:
                if con.constraint.contype == pb.CONSTR_DEFAULT:
                    col.default_sql = _expr_sql(con.constraint.raw_expr)
                elif con.constraint.contype == pb.CONSTR_GENERATED:
                    col.generated_sql = _expr_sql(con.constraint.raw_expr)
                elif con.constraint.contype == pb.CONSTR_NOTNULL:
                    col.not_null = True
            if col.not_null and store.dataset().count_rows() and not col.default_sql:
                raise E.NotNullViolation(
                    f'column "{col.name}" of relation "{info.name}" contains null values')
            store.add_column(pa.field(col.name, ctype.arrow))
            session.on_rollback(lambda name=col.name: store.drop_column(name))
            info.columns.append(col)
            session.catalog_update(info)
            if col.default_sql or col.generated_sql:
                # Existing rows get the default, or the generated value (an UPDATE that
                # changes nothing else recomputes every generated column).
                first = next(c.name for c in info.columns if not c.generated_sql)
                set_col = col.name if col.default_sql else first
                value = "DEFAULT" if col.default_sql else f'"{first}"'
                session.execute(f'UPDATE "{info.workspace}"."{info.name}" '
                                f'SET "{set_col}" = {value}')
        elif cmd.subtype == pb.AT_DropColumn:
            if info.column(cmd.name) is None:
                if cmd.missing_ok:
                    continue
                raise E.UndefinedColumn(
                    f'column "{cmd.name}" of relation "{info.name}" does not exist')
            session.on_commit(lambda name=cmd.name: store.drop_column(name))
            session.on_commit(lambda name=cmd.name: _column_changed(session, info, name, None))
            info.columns = [col for col in info.columns if col.name != cmd.name]
            info.primary_key = [k for k in info.primary_key if k != cmd.name]
            info.indexes = [i for i in info.indexes if i.column != cmd.name]
            session.catalog_update(info)
        elif cmd.subtype == pb.AT_AddConstraint:
            _add_constraint(session, info, getattr(cmd, "def").constraint)
        elif cmd.subtype == pb.AT_DropConstraint:
            before = len(info.constraints) + len(info.primary_key)
            if cmd.name == f"{info.name}_pkey":
                info.primary_key = []
            info.constraints = [c for c in info.constraints if c["name"] != cmd.name]
            if before == len(info.constraints) + len(info.primary_key):
                if cmd.missing_ok:
                    session.notices.append(
                        f'constraint "{cmd.name}" of relation "{info.name}" does not exist, '
                        "skipping")
                    continue
                raise E.UndefinedObject(
                    f'constraint "{cmd.name}" of relation "{info.name}" does not exist')
            session.catalog_update(info)
        elif cmd.subtype in (pb.AT_SetNotNull, pb.AT_DropNotNull):
            target = info.column(cmd.name)
            if target is None:
                raise E.UndefinedColumn(f'column "{cmd.name}" does not exist')
            target.not_null = cmd.subtype == pb.AT_SetNotNull
            session.catalog_update(info)
        elif cmd.subtype == pb.AT_ChangeOwner:
            _check_owner(session, cmd.newowner)  # tables belong to the superusers
        elif cmd.subtype == pb.AT_ColumnDefault:
            _set_default(session, info, cmd)
        elif cmd.subtype == pb.AT_AlterColumnType:
            _alter_type(session, info, cmd)
        elif cmd.subtype == pb.AT_AddIdentity:
            _add_identity(session, info, cmd)
        else:
            raise E.FeatureNotSupported("this ALTER TABLE action is not supported")
    return Result(command="ALTER TABLE")


def _add_identity(session: Session, info: TableInfo, cmd: Any) -> None:
    """``ALTER COLUMN c ADD GENERATED {ALWAYS | BY DEFAULT} AS IDENTITY [(SEQUENCE NAME s
    ...)]``, as pg_dump writes an identity column: the column gets its sequence (named as
    a serial column's; pg_dump's ``setval`` then moves it past the restored rows)."""
    col = info.column(cmd.name)
    if col is None:
        raise E.UndefinedColumn(
            f'column "{cmd.name}" of relation "{info.name}" does not exist', column=cmd.name)
    if col.type.base not in ("int2", "int4", "int8") or col.type.ndim:
        raise E.InvalidTableDefinition(
            "identity column type must be smallint, integer, or bigint")
    if col.serial or col.default_sql:
        raise E.ObjectNotInPrerequisiteState(
            f'column "{col.name}" of relation "{info.name}" is already an identity column'
            if col.identity else
            f'column "{col.name}" of relation "{info.name}" already has a default value')
    con = getattr(cmd, "def").constraint
    col.serial = True
    col.not_null = True
    col.identity = con.generated_when or "a"
    session.catalog_update(info)


def _alter_type(session: Session, info: TableInfo, cmd: Any) -> None:
    """``ALTER COLUMN c [SET DATA] TYPE t [USING c::t]`` (Alembic's ``alter_column(type_=)``,
    Django's AlterField): every value is converted with SQL's cast (its errors, 22P02 and
    friends, leave the table as it was), then the column is rewritten on the lake."""
    col = info.column(cmd.name)
    if col is None:
        raise E.UndefinedColumn(
            f'column "{cmd.name}" of relation "{info.name}" does not exist', column=cmd.name)
    cd = getattr(cmd, "def").column_def
    new, serial = _type_of(cd.type_name)
    if serial:
        raise E.UndefinedObject(f'type "{ast.names(cd.type_name.names)[-1]}" does not exist')
    if cd.HasField("raw_default"):  # USING: only the column itself, maybe cast
        using = cd.raw_default
        while ast.kind(using) == "type_cast":
            using = using.type_cast.arg
        if ast.kind(using) != "column_ref" or \
                ast.names(using.column_ref.fields)[-1] != col.name:
            raise E.FeatureNotSupported(
                "ALTER COLUMN TYPE ... USING an expression other than the column is not "
                "supported by tarndb")
    if col.generated_sql or any(col.name in (c.get("columns") or [])
                                for c in info.constraints if c.get("type") == "foreign"):
        raise E.FeatureNotSupported("ALTER COLUMN TYPE of a generated or foreign-key column "
                                    "is not supported by tarndb")
    import re

    from . import retype
    from .dml import storage_expr
    from .scan import Scope, quote_ident

    for v in views.dependents(session, info.workspace, info.name, set()):
        if "*" in v.sql or re.search(rf'(?<![\w"]){re.escape(col.name)}(?![\w"])|'
                                     rf'"{re.escape(col.name)}"', v.sql):
            raise E.FeatureNotSupported(
                "cannot alter type of a column used by a view or rule",
                detail=f'rule _RETURN on view {v.name} depends on column "{col.name}"')
    # ACCESS EXCLUSIVE, as PostgreSQL: other writers of the table wait for this
    # transaction's end; the rewrite happens at COMMIT (engine/retype.py)
    retype.stage(session, info)
    change = session.change_for(info)
    scope = Scope(session)
    try:  # every value must convert, by SQL's rules (errors as PostgreSQL's)
        view = scope.view(info)
        probe = ColumnInfo(col.name, new)
        session.run_duckdb(
            f"SELECT count({storage_expr(quote_ident(col.name), probe, col.type.duckdb)}) "
            f"FROM {view}", [])
        if new.base in ("varchar", "bpchar") and new.typmods and not new.ndim:
            n = new.typmods[0]
            q = quote_ident(col.name)
            got, _ = session.run_duckdb(
                f"SELECT count(*) FROM {view} WHERE length(rtrim(CAST({q} AS VARCHAR), ' '))"
                f" > {n}", [])
            if got is not None and got.column(0)[0].as_py():
                name = "character varying" if new.base == "varchar" else "character"
                raise E.StringDataRightTruncation(f"value too long for type {name}({n})",
                                                  column=col.name)
    finally:
        scope.close()
    if change.added is not None and change.added.num_rows and new.arrow != col.type.arrow:
        import pyarrow.compute as pc

        # rows this transaction inserted (checked above with the others) take the type
        added = change.added
        i = added.schema.get_field_index(col.name)
        if i >= 0:
            change.added = added.set_column(i, pa.field(col.name, new.arrow),
                                            pc.cast(added.column(i), new.arrow, safe=False))
    col.type = new
    session.catalog_update(info)


def lance_udf(fn: Callable[[pa.RecordBatch], pa.RecordBatch]) -> Any:
    import lance

    return lance.batch_udf()(fn)


def _is_sequence(session: Session, rv: Any) -> bool:
    """Whether a relation names a sequence: a serial column's or a standalone one."""
    return _serial_target(session, rv) is not None or any(
        sequences.lookup(session.db, session, ws, rv.relname)
        for ws in ([rv.schemaname] if rv.schemaname else session.search_path()))


def _alter_sequence_owner(session: Session, node: pb.AlterTableStmt) -> Result:
    """``ALTER SEQUENCE s OWNER TO r``: pg_dump 16 writes this where 15 wrote ALTER TABLE
    (the only ALTER TABLE form that a sequence takes; the others are ALTER SEQUENCE's own)."""
    if not all(c.alter_table_cmd.subtype == pb.AT_ChangeOwner for c in node.cmds):
        raise E.FeatureNotSupported("only OWNER TO is supported in this form of ALTER "
                                    "SEQUENCE")
    if not _is_sequence(session, node.relation):
        if session.resolve_table(node.relation.schemaname or None,
                                 node.relation.relname) is not None or views.resolve(
                session, node.relation.schemaname or None, node.relation.relname) is not None:
            raise E.WrongObjectType(f'"{node.relation.relname}" is not a sequence')
        if node.missing_ok:
            session.notices.append(f'relation "{node.relation.relname}" does not exist, skipping')
            return Result(command="ALTER SEQUENCE")
        raise E.UndefinedTable(f'relation "{node.relation.relname}" does not exist')
    for c in node.cmds:
        _check_owner(session, c.alter_table_cmd.newowner)
    return Result(command="ALTER SEQUENCE")


def _check_owner(session: Session, role: Any) -> None:
    """``OWNER TO role`` (what pg_dump writes after each object): every object is owned by
    the superusers, so only a superuser (or CURRENT_USER, SESSION_USER) may be named."""
    user = getattr(session, "user", "postgres")
    name = role.rolename if role.rolename else user
    if name not in (user, "postgres"):
        raise E.FeatureNotSupported(
            f'tarndb objects are owned by the superusers; cannot make "{name}" the owner')


def _set_default(session: Session, info: TableInfo, cmd: Any) -> None:
    """``ALTER COLUMN c SET DEFAULT expr`` / ``DROP DEFAULT``. ``nextval('t_c_seq')`` of
    the column's own sequence (pg_dump's spelling of a serial column) makes it serial."""
    col = info.column(cmd.name)
    if col is None:
        raise E.UndefinedColumn(
            f'column "{cmd.name}" of relation "{info.name}" does not exist', column=cmd.name)
    if col.generated_sql:
        raise E.SyntaxError_(f'column "{cmd.name}" of relation "{info.name}" is a generated '
                             "column", hint="Use ALTER TABLE ... ALTER COLUMN ... SET "
                             "EXPRESSION instead.")
    if not cmd.HasField("def"):  # DROP DEFAULT
        col.default_sql = None
        col.serial = False
    else:
        expr = getattr(cmd, "def")
        seq = _nextval_of(expr)
        own = f"{info.name}_{col.name}_seq"
        if seq is not None and seq.split(".")[-1].strip('"') == own:
            if col.type.base not in ("int2", "int4", "int8") or col.type.ndim:
                raise E.FeatureNotSupported(
                    "a sequence default is supported on integer columns only")
            col.serial = True
            col.default_sql = None
        elif seq is not None and (standalone := sequences.default_of(session, seq)):
            col.serial = False
            col.default_sql = standalone
        elif seq is not None:
            raise E.FeatureNotSupported(
                f"tarndb's sequences belong to serial columns; nextval('{seq}') names none "
                f'(a serial column "{col.name}" of "{info.name}" uses "{own}")')
        else:
            col.serial = False
            col.default_sql = _expr_sql(expr)
    session.catalog_update(info)


def _sequence_default(session: Session, seq: str) -> str | None:
    """``DEFAULT nextval('s')`` of a standalone sequence, as stored; None for others."""
    try:
        return sequences.default_of(session, seq)
    except E.UndefinedTable:
        return None


def _nextval_of(expr: pb.Node) -> str | None:
    """The sequence name of ``nextval('name'[::regclass])``, else None."""
    if ast.kind(expr) != "func_call" or ast.func_name(expr.func_call) != "nextval" or \
            len(expr.func_call.args) != 1:
        return None
    arg = expr.func_call.args[0]
    if ast.kind(arg) == "type_cast":
        arg = arg.type_cast.arg
    value = ast.const_value(arg) if ast.kind(arg) == "a_const" else None
    return value if isinstance(value, str) else None


def _add_constraint(session: Session, info: TableInfo, con: pb.Constraint) -> None:
    """ALTER TABLE ADD [CONSTRAINT name] PRIMARY KEY / UNIQUE / CHECK, after checking the
    rows already in the table, as PostgreSQL does."""
    taken = {c["name"] for c in info.constraints} | {ix.name for ix in info.indexes}
    if con.conname and (con.conname in taken or (
            info.primary_key and con.conname == f"{info.name}_pkey")):
        raise E.DuplicateObject(
            f'constraint "{con.conname}" for relation "{info.name}" already exists')
    if con.contype == pb.CONSTR_PRIMARY:
        if info.primary_key:
            raise E.InvalidTableDefinition(
                f'multiple primary keys for table "{info.name}" are not allowed')
        cols = [k.string.sval for k in con.keys]
        for c in cols:
            col = info.column(c)
            if col is None:
                raise E.UndefinedColumn(f'column "{c}" of relation "{info.name}" does not exist')
        _validate_existing_unique(session, info, cols, f"{info.name}_pkey", not_null=True)
        info.primary_key = cols
        for c in cols:
            info.column(c).not_null = True  # type: ignore[union-attr]
    elif con.contype == pb.CONSTR_FOREIGN:
        spec = fkeys.spec_from(session, info.workspace, info.name, con, [], unique_keys(info))
        _check_constraint_columns([spec], info.columns)
        _name_constraints(info.name, [spec], taken)
        probe = dataclasses.replace(info, constraints=[spec])
        ds = session.db.store(info).dataset()
        present = set(ds.schema.names)
        if all(c in present for c in spec["columns"]):
            fkeys.check_child(session, probe, ds.to_table(columns=list(spec["columns"])))
        info.constraints.append(spec)
    else:
        spec = _constraint(info.name, con, [])
        _check_constraint_columns([spec], info.columns)
        _name_constraints(info.name, [spec], taken)
        if spec["type"] == "unique":
            _validate_existing_unique(session, info, spec["columns"], spec["name"])
        else:
            _validate_existing_check(session, info, spec)
        info.constraints.append(spec)
    session.catalog_update(info)


def _validate_existing_unique(session: Session, info: TableInfo, cols: list[str], name: str,
                              not_null: bool = False) -> None:
    from .scan import Scope, quote_ident

    scope = Scope(session)
    try:
        view = scope.view(info)
        keys = ", ".join(quote_ident(c) for c in cols)
        if not_null:
            nulls = session.cursor.execute(
                f"SELECT count(*) FROM {view} WHERE "
                + " OR ".join(f"{quote_ident(c)} IS NULL" for c in cols)).fetchone()
            if nulls and nulls[0]:
                raise E.NotNullViolation(
                    f'column "{cols[0]}" of relation "{info.name}" contains null values')
        dup = session.cursor.execute(
            f"SELECT {keys} FROM {view} WHERE "
            + " AND ".join(f"{quote_ident(c)} IS NOT NULL" for c in cols)
            + f" GROUP BY {keys} HAVING count(*) > 1 LIMIT 1").fetchall()
    finally:
        scope.close()
    if dup:
        raise E.UniqueViolation(
            f'could not create unique index "{name}"',
            detail=f"Key ({', '.join(cols)})=({', '.join(str(v) for v in dup[0])}) is "
                   "duplicated.", table=info.name)


def _validate_existing_check(session: Session, info: TableInfo, spec: dict[str, Any]) -> None:
    from .scan import Scope, quote_ident

    scope = Scope(session)
    try:
        view = scope.view(info)
        bad = session.cursor.execute(
            f"SELECT count(*) FROM (SELECT * FROM {view}) AS {quote_ident(info.name)} "
            f"WHERE NOT coalesce(({spec['expr']}), true)").fetchone()
    finally:
        scope.close()
    if bad and bad[0]:
        raise E.CheckViolation(
            f'check constraint "{spec["name"]}" of relation "{info.name}" is violated by '
            "some row", table=info.name)


def rename(session: Session, node: pb.RenameStmt, params: list[Any]) -> Result:
    if node.rename_type == pb.OBJECT_VIEW or (
            node.rename_type == pb.OBJECT_TABLE and session.resolve_table(
                node.relation.schemaname or None, node.relation.relname) is None
            and views.resolve(session, node.relation.schemaname or None,
                              node.relation.relname) is not None):
        return views.rename(session, node)
    if node.rename_type == pb.OBJECT_TABLE:
        info = session.table_for(node.relation)
        if session.find_table(info.workspace, node.newname) is not None or \
                views.lookup(session.db, session, info.workspace, node.newname) is not None:
            raise E.DuplicateTable(f'relation "{node.newname}" already exists')
        if sequences.lookup(session.db, session, info.workspace, node.newname) is not None:
            raise E.DuplicateTable(f'relation "{node.newname}" already exists')
        old = info.name
        info.name = node.newname
        session.catalog_update(info, old_name=old)
        sequences.owner_renamed(session, info.workspace, old, info.name)
        views.relation_renamed(session, info.workspace, old, info.name)
        return Result(command="ALTER TABLE")
    if node.rename_type == pb.OBJECT_SEQUENCE:
        return sequences.rename(session, node)
    if node.rename_type == pb.OBJECT_COLUMN:
        info = session.table_for(node.relation)
        col = info.column(node.subname)
        if col is None:
            raise E.UndefinedColumn(f'column "{node.subname}" does not exist')
        if info.column(node.newname) is not None:
            raise E.DuplicateColumn(f'column "{node.newname}" of relation already exists')
        session.refuse_in_transaction_block("ALTER TABLE ... RENAME COLUMN")
        views.check_column_rename(session, info.workspace, info.name, node.subname)
        session.db.store(info).rename_column(node.subname, node.newname)
        col.name = node.newname
        info.primary_key = [node.newname if k == node.subname else k for k in info.primary_key]
        for ix in info.indexes:
            if ix.column == node.subname:
                ix.column = node.newname
        session.catalog_update(info)
        _column_changed(session, info, node.subname, node.newname)
        sequences.owner_renamed(session, info.workspace, info.name, info.name, node.subname,
                                node.newname)
        return Result(command="ALTER TABLE")
    raise E.FeatureNotSupported("this RENAME is not supported")


def _column_changed(session: Session, info: TableInfo, old: str, new: str | None) -> None:
    """Tell the privilege store (pgwire/acl.py, when the server has one) that a column was
    renamed (``new``) or dropped (None): its column grants follow it or go."""
    hook = session.db.statement_hooks.get("column_changed")
    if hook is not None:
        hook(session, (info.workspace, info.name, int(info.oid or 0), old, new), [])


def create_index(session: Session, node: pb.IndexStmt, params: list[Any]) -> Result:
    """``USING deeplake_index``: a search (vector, BM25, ...) or unique index of one column.
    Any other method (btree, hash, gin, brin, or none) makes a plain scalar index, as in
    PostgreSQL: a unique one enforces its key, the others serve equality lookups."""
    info = session.table_for(node.relation)
    method = (node.access_method or "").lower()
    if method and method not in ("deeplake_index", "hnsw", "ivfflat") and \
            method not in PLAIN_INDEX_METHODS:
        raise E.UndefinedObject(f'access method "{method}" does not exist')
    pgvector = method in ("hnsw", "ivfflat")
    plain = method not in ("deeplake_index", "hnsw", "ivfflat")
    columns: list[str] = []
    expression = None
    for p in node.index_params:
        elem = p.index_elem
        if not elem.name and plain and not node.unique and len(node.index_params) == 1:
            # A plain index on an expression ((doc ->> 'k')): kept in the catalog, not used
            # for lookups; named after the first column the expression reads.
            refs = [m for m in ast.walk(elem.expr) if isinstance(m, pb.ColumnRef)]
            names = [ast.names(r.fields)[-1] for r in refs]
            known = [n for n in names if info.column(n) is not None]
            if not known:
                raise E.FeatureNotSupported("an index expression must read a column")
            expression = _expr_sql(elem.expr)
            columns.append(known[0])
            continue
        if not elem.name and pgvector and len(node.index_params) == 1:
            # pgvector's ((emb::halfvec(n)) halfvec_cosine_ops) and
            # ((binary_quantize(emb)::bit(n)) bit_hamming_ops): kept in the catalog; the
            # queries that order by the expression run as exact scans
            col_name, expression = _pgvector_expression(info, elem, method)
            columns.append(col_name)
            continue
        if not elem.name:
            raise E.FeatureNotSupported("an index on an expression is not supported by tarndb")
        if info.column(elem.name) is None:
            raise E.UndefinedColumn(f'column "{elem.name}" does not exist', column=elem.name)
        columns.append(elem.name)
    if len(columns) != 1 and not plain:
        raise E.FeatureNotSupported(f"a {method} index covers exactly one column")
    if len(set(columns)) != len(columns):
        raise E.DuplicateColumn("column specified more than once")
    if node.unique and node.HasField("where_clause"):
        raise E.FeatureNotSupported("a partial unique index is not supported by tarndb")
    column = columns[0]
    options: dict[str, Any] = {}
    for opt in node.options:
        de = opt.def_elem
        options[de.defname.lower()] = _def_arg(de.arg) if de.HasField("arg") else "true"
    name = node.idxname or f"{info.name}_{'_'.join(columns) if expression is None else 'expr'}_idx"
    existing = [ix for ix in info.indexes if ix.name == name]
    if existing or _find_index(session, name, info.workspace):
        if node.if_not_exists:
            session.notices.append(f'relation "{name}" already exists, skipping')
            return Result(command="CREATE INDEX")
        raise E.DuplicateTable(f'relation "{name}" already exists')
    other = info.index_on(column) if not plain or node.unique else None
    if other is not None and len(columns) == 1:
        if node.if_not_exists:
            session.notices.append(
                f'column "{column}" already has index "{other.name}", skipping')
            return Result(command="CREATE INDEX")
        raise E.DuplicateObject(
            f'column "{column}" of "{info.name}" already has index "{other.name}"; '
            "drop it first (one index per column)")
    if node.unique:
        _validate_existing_unique(session, info, columns, name)
    if len(columns) > 1:
        options["columns"] = columns
    if expression is not None:
        options["expression"] = expression
    index_type = options.pop("index_type", "")
    if pgvector and expression is not None:
        index_type = "btree"  # no search state: the queries run as exact scans
        options.update(_pgvector_expression_options(node, method))
    elif pgvector:
        # pgvector's index on tarndb's vector index, clustered by the ops class's metric
        # (m / ef_construction / lists are kept for the catalog; the probe count is
        # calibrated on the data).
        index_type = ""
        options.update(_pgvector_index(info, node, method, column))
        col = info.column(column)
        if col is not None and col.type.is_sparse:
            # tarndb's vector index is over dense vectors: a sparsevec index keeps no search
            # state, and its queries run as an exact sparse scan (engine/sparse_ops.py)
            index_type = "btree"
            options["exact_scan"] = True
    if plain:
        index_type = method or "btree"
        if node.unique:
            options["method"] = index_type  # kept for pg_indexes; the kind is "unique"
    ix = IndexInfo(name, column, index_type, options)
    session.db.create_index(info, ix, unique=node.unique, publish=session.catalog_update)
    session.on_rollback(lambda: session.db.drop_index_state(info, ix))
    return Result(command="CREATE INDEX")


#: pgvector's operator classes by the type they index (a float4[] column takes vector's)
_OPCLASS_KINDS = ("l2", "cosine", "ip", "l1")
#: The metric of tarndb's vector index that serves each opclass's operator (``<->``, ``<=>``,
#: ``<#>``). L1 has no ANN metric in Lance: a *_l1_ops index is a cosine one, and ``<+>``
#: runs as an exact scan.
_KIND_METRICS = {"l2": "l2", "cosine": "cosine", "ip": "dot"}


def _opclass(name: str) -> tuple[str, str] | None:
    """(type, kind) of ``vector_l2_ops``, ``halfvec_cosine_ops``, ``sparsevec_ip_ops`` ...;
    None for other names."""
    for t in ("vector", "halfvec", "sparsevec"):
        for kind in _OPCLASS_KINDS:
            if name == f"{t}_{kind}_ops":
                return t, kind
    return None


def _pgvector_index(info: TableInfo, node: pb.IndexStmt, method: str, column: str
                    ) -> dict[str, Any]:
    """Check ``USING hnsw | ivfflat (col opclass)`` as pgvector does; the options to keep."""
    col = info.column(column)
    assert col is not None
    if (col.type.ndim != 1 or col.type.base not in ("float4", "float8")) and \
            not col.type.is_sparse:
        raise E.UndefinedObject(
            f'data type {col.type.pg_name} has no default operator class for access method '
            f'"{method}"',
            hint="You must specify an operator class for the index or define a default "
                 "operator class for the data type.")
    col_type = col.type.vector_name or "vector"
    opclass = f"{col_type}_l2_ops"
    elem = node.index_params[0].index_elem
    if elem.opclass:
        opclass = ast.names(elem.opclass)[-1].lower()
    found = _opclass(opclass)
    if found is None or (found[0] == "sparsevec" and method == "ivfflat"):
        raise E.UndefinedObject(f'operator class "{opclass}" does not exist for access '
                                f'method "{method}"')
    if found[0] != col_type:
        raise E.DatatypeMismatch(
            f'operator class "{opclass}" does not accept data type {col_type}')
    allowed = ("m", "ef_construction") if method == "hnsw" else ("lists",)
    for opt in node.options:
        name = opt.def_elem.defname.lower()
        if name not in allowed and name != "index_type":
            raise E.InvalidParameterValue(f'unrecognized parameter "{name}"')
    out = {"method": method, "opclass": opclass}
    if found[1] in _KIND_METRICS:
        out["metric"] = _KIND_METRICS[found[1]]
    return out


def _pgvector_expression(info: TableInfo, elem: Any, method: str) -> tuple[str, str]:
    """(column, SQL) of an hnsw / ivfflat index expression tarndb accepts: a vector column
    cast to ``halfvec(n)`` / ``vector(n)``, or ``binary_quantize(col)::bit(n)``, with an
    operator class of the expression's type (pgvector's checks and words)."""
    expr = elem.expr
    if ast.kind(expr) != "type_cast":
        raise E.FeatureNotSupported(
            "an hnsw / ivfflat index expression must be a vector column cast to halfvec(n) "
            "or vector(n), or binary_quantize(column)::bit(n)")
    tc = expr.type_cast
    target = ast.names(tc.type_name.names)[-1].lower()
    typmods = [ast.const_value(m) for m in tc.type_name.typmods]
    arg = tc.arg
    quantized = ast.kind(arg) == "func_call" and \
        ast.func_name(arg.func_call) == "binary_quantize" and len(arg.func_call.args) == 1
    if quantized:
        arg = arg.func_call.args[0]
    if ast.kind(arg) != "column_ref" or (target != "bit" if quantized
                                         else target not in ("halfvec", "vector")):
        raise E.FeatureNotSupported(
            "an hnsw / ivfflat index expression must be a vector column cast to halfvec(n) "
            "or vector(n), or binary_quantize(column)::bit(n)")
    name = ast.names(arg.column_ref.fields)[-1]
    col = info.column(name)
    if col is None:
        raise E.UndefinedColumn(f'column "{name}" does not exist', column=name)
    if col.type.ndim != 1 or col.type.base not in ("float4", "float8"):
        raise E.UndefinedFunction(
            f"function binary_quantize({col.type.pg_name}) does not exist" if quantized else
            f"cannot cast type {col.type.pg_name} to {target}")
    if len(typmods) != 1 or not isinstance(typmods[0], int):
        raise E.DataError(f"column cannot have more than 16000 dimensions for {method} index"
                          if not typmods else f"invalid type modifier for {target}")
    if col.type.dim is not None and typmods[0] != col.type.dim:
        raise E.DataError(f"expected {typmods[0]} dimensions, not {col.type.dim}"
                          if not quantized else
                          f"bit string length {col.type.dim} does not match type "
                          f"bit({typmods[0]})")
    opclass = ast.names(elem.opclass)[-1].lower() if elem.opclass else f"{target}_l2_ops"
    allowed = {"bit": ("bit_hamming_ops", "bit_jaccard_ops") if method == "hnsw"
               else ("bit_hamming_ops",)}.get(target) or \
        tuple(f"{target}_{k}_ops" for k in _OPCLASS_KINDS)
    if opclass not in allowed:
        found = _opclass(opclass)
        if found is not None or opclass.startswith("bit_"):
            raise E.DatatypeMismatch(
                f'operator class "{opclass}" does not accept data type {target}')
        raise E.UndefinedObject(f'operator class "{opclass}" does not exist for access '
                                f'method "{method}"')
    return col.name, _expr_sql(expr)


def _pgvector_expression_options(node: pb.IndexStmt, method: str) -> dict[str, Any]:
    elem = node.index_params[0].index_elem
    allowed = ("m", "ef_construction") if method == "hnsw" else ("lists",)
    for opt in node.options:
        name = opt.def_elem.defname.lower()
        if name not in allowed:
            raise E.InvalidParameterValue(f'unrecognized parameter "{name}"')
    opclass = ast.names(elem.opclass)[-1].lower() if elem.opclass else None
    out: dict[str, Any] = {"method": method, "exact_scan": True}
    if opclass:
        out["opclass"] = opclass
    return out


def _def_arg(node: pb.Node) -> str:
    k = ast.kind(node)
    if k == "string":
        return node.string.sval
    if k == "integer":
        return str(node.integer.ival)
    if k == "float":
        return node.float.fval
    if k == "type_name":
        return " ".join(ast.names(node.type_name.names))
    if k == "a_const":
        return str(ast.const_value(node))
    return ""


def create_extension(session: Session, node: Any, params: list[Any]) -> Result:
    name = node.extname.lower()
    if name not in ("pg_deeplake", "deeplake", "vector", "plpgsql"):
        raise E.UndefinedObject(f'extension "{node.extname}" is not available')
    if name == "vector":
        # pgvector's SQL surface is built in; registering makes it visible in pg_extension.
        catalog = session.db.catalog
        if catalog.get_object("extension", name) is not None:
            if not node.if_not_exists:
                raise E.DuplicateObject(f'extension "{name}" already exists')
            session.notices.append(f'extension "{name}" already exists, skipping')
        else:
            catalog.put_object("extension", name, {"version": PGVECTOR_VERSION})
    return Result(command="CREATE EXTENSION")


#: The pgvector release whose SQL surface tarndb serves.
PGVECTOR_VERSION = "0.8.0"


def noop(tag: str) -> Callable[[Session, Any, list[Any]], Result]:
    def run(session: Session, node: Any, params: list[Any]) -> Result:
        return Result(command=tag)
    return run


def grant(session: Session, node: Any, params: list[Any]) -> Result:
    """GRANT/REVOKE: checked by the role hook when one is installed (pgwire/roles.py)."""
    hook = session.db.statement_hooks.get("grant_stmt")
    if hook is not None:
        return hook(session, node, params)
    return Result(command="GRANT" if node.is_grant else "REVOKE")


def _serial_target(session: Session, rv: Any) -> tuple[TableInfo, ColumnInfo] | None:
    """The integer column ``<table>_<column>_seq`` names, in the sequence's schema (as this
    session sees it: pg_restore --single-transaction creates the table in the same
    transaction)."""
    ws = rv.schemaname or session.search_path()[0]
    for info in session.all_tables():
        if info.workspace != ws:
            continue
        for col in info.columns:
            if f"{info.name}_{col.name}_seq" == rv.relname and not col.type.ndim \
                    and col.type.base in ("int2", "int4", "int8"):
                return info, col
    return None


def _create_sequence(session: Session, node: Any, params: list[Any]) -> Result:
    """``CREATE SEQUENCE``: a standalone sequence (engine/sequences.py), or, for
    ``<table>_<column>_seq`` of an integer column (pg_dump's spelling of a serial column),
    the column's own sequence (it becomes serial with ``SET DEFAULT nextval(...)``)."""
    if _serial_target(session, node.sequence) is None or \
            sequences.lookup(session.db, session, node.sequence.schemaname
                             or sequences.creation_schema(session), node.sequence.relname):
        return sequences.create(session, node)
    for opt in node.options:
        d = opt.def_elem
        if d.defname in ("increment",) and ast.const_value(d.arg) not in (1, None):
            raise E.FeatureNotSupported("sequences with an increment other than 1 are not "
                                        "supported by tarndb")
    return Result(command="CREATE SEQUENCE")


def _alter_sequence(session: Session, node: Any, params: list[Any]) -> Result:
    """``ALTER SEQUENCE`` of a standalone sequence, or ``ALTER SEQUENCE s OWNED BY t.c`` of
    a column's own sequence."""
    done = sequences.alter(session, node)
    if done is not None:
        return done
    target = _serial_target(session, node.sequence)
    if target is None:
        if node.missing_ok:
            session.notices.append(
                f'relation "{node.sequence.relname}" does not exist, skipping')
            return Result(command="ALTER SEQUENCE")
        raise E.UndefinedTable(f'relation "{node.sequence.relname}" does not exist')
    for opt in node.options:
        d = opt.def_elem
        if d.defname == "owned_by":
            names = ast.names(d.arg.list.items) if ast.kind(d.arg) == "list" else []
            if names and names != ["none"] and names[-1] != target[1].name:
                raise E.FeatureNotSupported(
                    f'sequence "{node.sequence.relname}" belongs to column '
                    f'"{target[1].name}" of "{target[0].name}"')
        elif d.defname not in ("as", "start", "minvalue", "maxvalue", "cache", "restart"):
            raise E.FeatureNotSupported(f"ALTER SEQUENCE ... {d.defname} is not supported by "
                                        "tarndb")
    return Result(command="ALTER SEQUENCE")


def _alter_owner(session: Session, node: Any, params: list[Any]) -> Result:
    """``ALTER SCHEMA s OWNER TO r`` and friends (pg_dump writes one per object)."""
    _check_owner(session, node.newowner)
    return Result(command=f"ALTER {pb.ObjectType.Name(node.object_type)[len('OBJECT_'):]}")


def _truncate(session: Session, node: Any, params: list[Any]) -> Result:
    from .truncate import truncate  # a DELETE of every row (engine/truncate.py)

    return truncate(session, node, params)


def _merge(session: Session, node: Any, params: list[Any]) -> Result:
    from .merge import merge  # DML, not DDL: dispatched from here as the other statements

    return merge(session, node, params)


HANDLERS: dict[str, Callable[[Session, Any, list[Any]], Result]] = {
    "create_stmt": create_table,
    "create_table_as_stmt": create_table_as,
    "create_schema_stmt": create_schema,
    "drop_stmt": drop,
    "alter_table_stmt": alter_table,
    "rename_stmt": rename,
    "index_stmt": create_index,
    "create_extension_stmt": create_extension,
    "discard_stmt": prepared.discard,
    "deallocate_stmt": prepared.deallocate,
    "prepare_stmt": prepared.prepare,
    "execute_stmt": prepared.execute,
    "listen_stmt": noop("LISTEN"),
    "unlisten_stmt": noop("UNLISTEN"),
    "vacuum_stmt": noop("VACUUM"),
    "check_point_stmt": noop("CHECKPOINT"),
    "comment_stmt": noop("COMMENT"),
    "grant_stmt": grant,
    "merge_stmt": _merge,
    # pg_dump locks what it dumps against DDL; its snapshot already fixes what it reads
    "lock_stmt": noop("LOCK TABLE"),
    "alter_owner_stmt": _alter_owner,
    "create_seq_stmt": _create_sequence,
    "view_stmt": views.create,
    "alter_seq_stmt": _alter_sequence,
    "truncate_stmt": _truncate,
}
