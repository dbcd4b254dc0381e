"""Views: ``CREATE [OR REPLACE] [TEMP] VIEW``, ``DROP VIEW [IF EXISTS]``, and reading them.

A view is a catalog object (kind ``view``) holding its query as SQL text, with every table
and view it reads named with its schema (resolved when the view is made, as PostgreSQL binds
a view to the relations it names), and its output columns with their types, fixed at
creation (``SELECT *`` does not grow when the table does).

Reading a view replaces its name in the statement by its query (a subquery with the view's
name as alias), before the statement's tables are bound, so filters, joins, aggregates and
``<#>`` / ``<=>`` ordering run over it as over any subquery (exact scans: the vector index
planner looks at single-table statements only).

Privileges, as PostgreSQL decides them for a role with GRANTs (pgwire/acl.py): reading a
view needs ``SELECT`` on the view itself. A plain view (``security_invoker = false``,
PostgreSQL's default) then reads its tables with its owner's privileges (views are made,
so owned, by superusers only), so a role can be given a view without its tables; a view
made ``WITH (security_invoker = true)`` is read with the privileges of the session reading
it (its query checked as if the session had written it, down to the tables). Once inside a
view read with its owner's rights, the views it reads are too (PostgreSQL checks them as
the outer view's owner). A role reading a view with its owner's rights reads a view that
leaves rows out through a fence (``OFFSET 0``): the reader's own filters run on the rows the
view gives, never pushed under the view's ``WHERE`` where an error message could show a row
the view hides (what PostgreSQL's ``security_barrier`` asks for). A view that only picks
columns shows every row it reads: no fence, its filters keep their pushdown.

Workspaces are never widened by a view: a session limited to some workspaces (an API token,
a role with USAGE on some schemas) reads a view only when it may reach every workspace the
view's query reads (42501 otherwise), whatever the view's ``security_invoker``. (In
PostgreSQL the owner's schema USAGE would do.) API tokens have no per-table grants, so for
them a view is exactly as readable as its tables' workspaces.

Transactions: CREATE / DROP VIEW are transactional like the other DDL. The session sees its
own uncommitted views; others see them after COMMIT; ROLLBACK forgets them.

``CREATE TEMP VIEW``: a view of this session only, never published, dropped when the
session ends (kept in the session's ``pg_temp`` overlay).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import postgast
from postgast import pg_query_pb2 as pb

from .. import errors as E
from ..sql import ast
from .staged import StagedObjects
from .types import ColumnType

if TYPE_CHECKING:
    from .session import Session

KIND = "view"
TEMP_SCHEMA = "pg_temp"
_MAX_DEPTH = 64


@dataclass
class ViewDef:
    workspace: str
    name: str
    #: the view's SELECT in PostgreSQL syntax, its relations schema-qualified
    sql: str
    columns: list[tuple[str, ColumnType]]
    oid: int = 0
    #: (schema, name) of the tables and views the query reads
    depends: list[tuple[str, str]] = field(default_factory=list)
    temp: bool = False
    #: ``WITH (security_invoker = true)``: read with the reader's privileges, not the owner's
    security_invoker: bool = False
    #: ``WITH (security_barrier)``: kept for the catalogs and pg_dump (a role always reads a
    #: view with its owner's rights through a fence, barrier or not)
    security_barrier: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"workspace": self.workspace, "name": self.name, "sql": self.sql,
                "columns": [{"name": n, "type": t.to_json()} for n, t in self.columns],
                "oid": self.oid, "depends": [list(d) for d in self.depends],
                "security_invoker": self.security_invoker,
                "security_barrier": self.security_barrier}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ViewDef:
        # Views stored before GRANT on views existed were read with the reader's privileges:
        # they keep that (security_invoker) rather than start to widen anyone's access.
        return cls(d["workspace"], d["name"], d["sql"],
                   [(c["name"], ColumnType.from_json(c["type"])) for c in d["columns"]],
                   int(d.get("oid", 0)), [(a, b) for a, b in d.get("depends", [])],
                   security_invoker=bool(d.get("security_invoker", True)),
                   security_barrier=bool(d.get("security_barrier", False)))

    @property
    def reloptions(self) -> list[str] | None:
        """``pg_class.reloptions``: what ``CREATE VIEW ... WITH (...)`` set."""
        out = (["security_barrier=true"] if self.security_barrier else []) + \
            (["security_invoker=true"] if self.security_invoker else [])
        return out or None

    @property
    def definition(self) -> str:
        """``pg_get_viewdef``: the query, ending with a semicolon as PostgreSQL's does."""
        return " " + self.sql + ";"


def _key(ws: str, name: str) -> str:
    return f"{ws}\x1f{name}"


#: uncommitted CREATE / DROP VIEW of a session's transaction (None: dropped)
_staged: StagedObjects[ViewDef] = StagedObjects()
#: a session's temporary views
_temps: weakref.WeakKeyDictionary[Any, dict[str, ViewDef]] = weakref.WeakKeyDictionary()
#: parsed view bodies, by SQL text
_parsed: dict[str, bytes] = {}


def _overlay_of(session: Any) -> dict[tuple[str, str], ViewDef | None] | None:
    return _staged.of(session)


def _temps_of(session: Any) -> dict[str, ViewDef] | None:
    if session is None:
        return None
    try:
        return _temps.get(session)
    except TypeError:
        return None


def staged(session: Any) -> bool:
    """Whether ``session`` has views others do not see (uncommitted, or temporary)."""
    return bool(_overlay_of(session) or _temps_of(session))


def _committed(db: Any) -> dict[str, dict[str, Any]]:
    return db.catalog.list_objects(KIND)  # type: ignore[no-any-return]


def lookup(db: Any, session: Any, ws: str, name: str) -> ViewDef | None:
    """The view ``ws.name`` as ``session`` sees it (its own DDL first)."""
    if ws == TEMP_SCHEMA:
        return (_temps_of(session) or {}).get(name)
    ov = _overlay_of(session)
    if ov and (ws, name) in ov:
        return ov[(ws, name)]
    spec = db.catalog.get_object(KIND, _key(ws, name))
    return ViewDef.from_json(spec) if spec is not None else None


#: catalog -> (its version, whether it holds a view)
_has_views: weakref.WeakKeyDictionary[Any, tuple[int, bool]] = weakref.WeakKeyDictionary()


def any_views(db: Any, session: Any) -> bool:
    """Whether a statement may name a view at all (the cheap test before each SELECT)."""
    if _overlay_of(session) or _temps_of(session):
        return True
    cat = db.catalog
    cat.refresh()
    known = _has_views.get(cat)
    if known is not None and known[0] == cat.version:
        return known[1]
    found = any(k == KIND for k, _ in cat._objects)  # noqa: SLF001 - no copy of the specs
    _has_views[cat] = (cat.version, found)
    return found


def all_views(db: Any, session: Any = None) -> list[ViewDef]:
    """Every view ``session`` may see: committed ones, its uncommitted DDL, its temporary
    ones; limited to its workspaces."""
    out = {(s["workspace"], s["name"]): ViewDef.from_json(s)
           for s in _committed(db).values()}
    for key, d in (_overlay_of(session) or {}).items():
        if d is None:
            out.pop(key, None)
        else:
            out[key] = d
    for name, d in (_temps_of(session) or {}).items():
        out[(TEMP_SCHEMA, name)] = d
    allowed = getattr(session, "allowed_workspaces", None)
    return sorted((d for d in out.values()
                   if allowed is None or d.temp or d.workspace in allowed),
                  key=lambda d: (d.workspace, d.name))


def resolve(session: Session, schema: str | None, name: str) -> ViewDef | None:
    """The view a (possibly unqualified) name means, or None (a table, or nothing)."""
    db = session.db
    if schema:
        if schema == TEMP_SCHEMA:
            return lookup(db, session, schema, name)
        session.check_workspace(schema)
        return lookup(db, session, schema, name)
    temp = (_temps_of(session) or {}).get(name)
    if temp is not None:
        return temp
    for ws in session.search_path():
        if session.allowed_workspaces is not None and ws not in session.allowed_workspaces:
            continue
        if session.find_table(ws, name, fresh=False) is not None:
            return None  # a table comes first in its schema (they share one namespace)
        found = lookup(db, session, ws, name)
        if found is not None:
            return found
    return None


def _stage(session: Session, ws: str, name: str, d: ViewDef | None) -> None:
    """Make ``d`` (None: dropped) what ``session`` sees of ``ws.name``; published at
    COMMIT, forgotten at ROLLBACK."""

    def publish() -> None:
        if d is None:
            session.db.catalog.delete_object(KIND, _key(ws, name))
        else:
            session.db.catalog.put_object(KIND, _key(ws, name), d.to_json())

    _staged.stage(session, ws, name, d, publish)


# -- CREATE VIEW -------------------------------------------------------------------------------

def _qualify(session: Session, query: pb.Node) -> list[tuple[str, str]]:
    """Name every table and view ``query`` reads with its schema (in place); what it reads."""
    from .scan import SYSTEM_SCHEMAS

    nodes = list(ast.walk(query))
    ctes = {c.common_table_expr.ctename for m in nodes
            if isinstance(m, pb.WithClause) for c in m.ctes}
    depends: list[tuple[str, str]] = []
    for m in nodes:
        if isinstance(m, pb.ParamRef):
            raise E.UndefinedObject(f"there is no parameter ${m.number}")
        if not isinstance(m, pb.RangeVar):
            continue
        schema = m.schemaname or None
        if schema is None and m.relname in ctes:
            continue
        if schema in SYSTEM_SCHEMAS or (schema is None and m.relname.startswith("pg_")
                                        and session.resolve_table(None, m.relname) is None
                                        and resolve(session, None, m.relname) is None):
            continue  # the system catalogs
        view = resolve(session, schema, m.relname)
        if view is not None:
            if view.temp:
                raise E.FeatureNotSupported(
                    "a view that reads a temporary view must be temporary itself "
                    "(CREATE TEMP VIEW)")
            m.schemaname = view.workspace
            depends.append((view.workspace, view.name))
            continue
        info = session.table_for(m)
        m.schemaname = info.workspace
        depends.append((info.workspace, info.name))
    return list(dict.fromkeys(depends))


def _deparse(query: pb.Node) -> str:
    tree = pb.ParseResult(version=180004)
    tree.stmts.add().stmt.CopyFrom(query)
    return str(postgast.deparse(tree))


def create(session: Session, node: Any, params: list[Any]) -> Result:
    """``CREATE [OR REPLACE] [TEMP] VIEW name [(columns)] AS query``."""
    from .result import Result

    rv = node.view
    temp = rv.relpersistence == "t"
    if node.with_check_option not in (0, pb.NO_CHECK_OPTION):
        raise E.FeatureNotSupported("WITH CHECK OPTION is not supported: tarndb views are "
                                    "read-only")
    invoker = barrier = False
    for opt in node.options:
        name = opt.def_elem.defname
        if name not in ("security_invoker", "security_barrier"):
            raise E.InvalidParameterValue(f'unrecognized parameter "{name}"')
        value = _bool_option(opt.def_elem)
        if name == "security_invoker":
            invoker = value
        else:
            barrier = value
    if temp and rv.schemaname and rv.schemaname != TEMP_SCHEMA:
        raise E.InvalidTableDefinition("cannot create temporary relation in non-temporary "
                                       "schema")
    ws = TEMP_SCHEMA if temp or rv.schemaname == TEMP_SCHEMA else \
        (rv.schemaname or session.workspace)
    name = rv.relname
    if not temp:
        session.check_workspace(ws)
        if session.find_table(ws, name) is not None or \
                _sequence(session, ws, name):
            if node.replace:
                raise E.WrongObjectType(f'"{name}" is not a view')
            raise E.DuplicateTable(f'relation "{name}" already exists', table=name)
    old = lookup(session.db, session, ws, name)
    if old is not None and not node.replace:
        raise E.DuplicateTable(f'relation "{name}" already exists', table=name)
    query = pb.Node()
    query.CopyFrom(node.query)
    depends = _qualify(session, query)
    if (ws, name) in depends:
        raise E.InvalidRecursion(f'infinite recursion detected in rules for relation "{name}"')
    sql = _deparse(query)
    columns = _describe(session, sql)
    aliases = [a.string.sval for a in node.aliases]
    if len(aliases) > len(columns):
        raise E.SyntaxError_("CREATE VIEW specifies more column names than columns")
    columns = [(aliases[i] if i < len(aliases) else n, t)
               for i, (n, t) in enumerate(columns)]
    seen: set[str] = set()
    for n, _ in columns:
        if n in seen:
            raise E.DuplicateColumn(f'column "{n}" specified more than once')
        seen.add(n)
    if old is not None:
        if len(columns) < len(old.columns):
            raise E.InvalidTableDefinition("cannot drop columns from view")
        for (n, t), (on, ot) in zip(columns, old.columns, strict=False):
            if n != on:
                raise E.InvalidTableDefinition(
                    f'cannot change name of view column "{on}" to "{n}"',
                    hint="Use ALTER VIEW ... RENAME COLUMN ... to change name of view column "
                         "instead.")
            if t.pg_name != ot.pg_name:
                raise E.InvalidTableDefinition(
                    f'cannot change data type of view column "{n}" from {ot.pg_name} to '
                    f'{t.pg_name}')
    oid = old.oid if old is not None else session.db.catalog._next_oid()  # noqa: SLF001
    d = ViewDef(ws, name, sql, columns, oid, depends, temp, invoker, barrier)
    if temp:
        mine = _temps.setdefault(session, {})
        mine[name] = d
        session.on_rollback(lambda: mine.pop(name, None) if mine.get(name) is d else None)
    else:
        session.db.catalog.ensure_workspace(ws)
        _stage(session, ws, name, d)
    return Result(command="CREATE VIEW")


def _bool_option(d: Any) -> bool:
    """A boolean reloption's value (``WITH (security_invoker)`` alone means true)."""
    if not d.HasField("arg"):
        return True
    arg = d.arg
    k = arg.WhichOneof("node")
    if k == "string":
        text = arg.string.sval
    elif k == "type_name":
        text = ast.names(arg.type_name.names)[-1]
    elif k == "integer":
        text = str(arg.integer.ival)
    elif k == "boolean":
        text = "true" if arg.boolean.boolval else "false"
    elif k == "a_const":
        c = arg.a_const
        which = c.WhichOneof("val")
        text = str(getattr(c, which).ListFields()[0][1]) if which else ""
        if which == "boolval":
            text = "true" if c.boolval.boolval else "false"
    else:
        text = ""
    low = text.strip().lower()
    if low in ("true", "on", "yes", "1", "t", "y"):
        return True
    if low in ("false", "off", "no", "0", "f", "n"):
        return False
    raise E.InvalidParameterValue(
        f'invalid value for boolean option "{d.defname}": {text}')


def _sequence(session: Session, ws: str, name: str) -> bool:
    from . import sequences

    return sequences.lookup(session.db, session, ws, name) is not None


def _describe(session: Session, sql: str) -> list[tuple[str, ColumnType]]:
    """The output columns of a view's query, from running it with no rows."""
    stmt = ast.parse(f"SELECT * FROM ({sql}) AS __view LIMIT 0").stmts[0].stmt
    result = session.run_select(stmt, [])
    return [(c.name, c.type) for c in result.columns]


# -- DROP VIEW ---------------------------------------------------------------------------------

def dependents(session: Session, ws: str, name: str,
               dropping: set[tuple[str, str]]) -> list[ViewDef]:
    """The views that read ``ws.name``, besides those being dropped with it."""
    return [v for v in all_views(session.db, session)
            if (ws, name) in v.depends and (v.workspace, v.name) not in dropping]


def check_dependents(session: Session, ws: str, name: str, what: str, cascade: bool,
                     dropping: set[tuple[str, str]]) -> None:
    """Before dropping the table or view ``ws.name``: the views that read it make it 2BP01,
    or with CASCADE they are dropped too (and the views that read them)."""
    deps = dependents(session, ws, name, dropping)
    if not deps:
        return
    if not cascade:
        raise E.DependentObjectsStillExist(
            f"cannot drop {what} {name} because other objects depend on it",
            detail="\n".join(f"view {v.name} depends on {what} {name}" for v in deps),
            hint="Use DROP ... CASCADE to drop the dependent objects too.")
    for v in deps:
        dropping.add((v.workspace, v.name))
    for v in deps:
        check_dependents(session, v.workspace, v.name, "view", True, dropping)
        session.notices.append(f"drop cascades to view {v.name}")
        _drop(session, v)


def _drop(session: Session, v: ViewDef) -> None:
    if v.temp:
        (_temps_of(session) or {}).pop(v.name, None)
    else:
        _stage(session, v.workspace, v.name, None)


def drop(session: Session, node: Any) -> Result:
    """``DROP VIEW [IF EXISTS] name [, ...] [CASCADE | RESTRICT]``."""
    from .result import Result

    cascade = node.behavior == pb.DROP_CASCADE
    found: list[ViewDef] = []
    for obj in node.objects:
        parts = ast.names(obj.list.items)
        schema = parts[-2] if len(parts) >= 2 else None
        name = parts[-1]
        v = resolve(session, schema, name)
        if v is None:
            if session.resolve_table(schema, name) is not None:
                raise E.WrongObjectType(f'"{name}" is not a view',
                                        hint="Use DROP TABLE to remove a table.")
            if node.missing_ok:
                session.notices.append(f'view "{name}" does not exist, skipping')
                continue
            raise E.UndefinedTable(f'view "{name}" does not exist', table=name)
        found.append(v)
    dropping = {(v.workspace, v.name) for v in found}
    for v in found:
        check_dependents(session, v.workspace, v.name, "view", cascade, dropping)
        _drop(session, v)
    return Result(command="DROP VIEW")


# -- renames -----------------------------------------------------------------------------------

def relation_renamed(session: Session, ws: str, old: str, new: str) -> None:
    """The table or view ``ws.old`` is now ``ws.new``: the views that read it follow (as
    PostgreSQL's, which name it by OID), keeping the old name as the alias their columns
    may be qualified with."""
    for v in dependents(session, ws, old, set()):
        query = ast.parse(v.sql).stmts[0].stmt
        for m in ast.walk(query):
            if isinstance(m, pb.RangeVar) and m.schemaname == ws and m.relname == old:
                m.relname = new
                if not m.HasField("alias") or not m.alias.aliasname:
                    m.alias.aliasname = old
        d = replace(v, sql=_deparse(query),
                    depends=[(ws, new) if dep == (ws, old) else dep for dep in v.depends])
        if v.temp:
            (_temps_of(session) or {})[v.name] = d
        else:
            _stage(session, v.workspace, v.name, d)


def rename(session: Session, node: Any) -> Result:
    """``ALTER VIEW name RENAME TO new`` (and ``ALTER TABLE view RENAME TO``)."""
    from .result import Result

    rv = node.relation
    v = resolve(session, rv.schemaname or None, rv.relname)
    if v is None:
        if node.missing_ok:
            session.notices.append(f'relation "{rv.relname}" does not exist, skipping')
            return Result(command="ALTER VIEW")
        raise E.UndefinedTable(f'relation "{rv.relname}" does not exist', table=rv.relname)
    new = node.newname
    if lookup(session.db, session, v.workspace, new) is not None or (
            not v.temp and session.find_table(v.workspace, new) is not None):
        raise E.DuplicateTable(f'relation "{new}" already exists', table=new)
    d = replace(v, name=new)
    if v.temp:
        temps = _temps.setdefault(session, {})
        temps.pop(v.name, None)
        temps[new] = d
    else:
        _stage(session, v.workspace, v.name, None)
        _stage(session, v.workspace, new, d)
    relation_renamed(session, v.workspace, v.name, new)
    return Result(command="ALTER VIEW")


def set_options(session: Session, rv: Any, cmd: Any, reset: bool) -> None:
    """``ALTER VIEW name SET (security_invoker [= bool], security_barrier ...)`` / ``RESET
    (...)``: the view is read with the reader's (or its owner's) privileges from then on."""
    v = resolve(session, rv.schemaname or None, rv.relname)
    if v is None:
        raise E.UndefinedTable(f'relation "{rv.relname}" does not exist', table=rv.relname)
    invoker, barrier = v.security_invoker, v.security_barrier
    for item in getattr(cmd, "def").list.items:
        d = item.def_elem
        if d.defname not in ("security_invoker", "security_barrier"):
            raise E.InvalidParameterValue(f'unrecognized parameter "{d.defname}"')
        if d.defname == "security_invoker":
            invoker = False if reset else _bool_option(d)
        else:
            barrier = False if reset else _bool_option(d)
    new = replace(v, security_invoker=invoker, security_barrier=barrier)
    if v.temp:
        (_temps_of(session) or {})[v.name] = new
    else:
        _stage(session, v.workspace, v.name, new)


def check_column_rename(session: Session, ws: str, table: str, column: str) -> None:
    """Views name columns by name: renaming one that a view reads is refused (0A000)."""
    import re

    for v in dependents(session, ws, table, set()):
        if "*" in v.sql or re.search(rf'(?<![\w"]){re.escape(column)}(?![\w"])|'
                                     rf'"{re.escape(column)}"', v.sql):
            raise E.FeatureNotSupported(
                f'cannot rename column "{column}" of "{table}": view {v.name} reads it',
                hint="Drop the view, rename the column, and create the view again.")


# -- reading views -----------------------------------------------------------------------------

def _body(d: ViewDef, alias: pb.Alias | None, fence: bool = False) -> pb.Node:
    """A RangeSubselect node over ``d``'s query, with exactly its columns; ``fence``: with
    ``OFFSET 0``, which keeps the reader's filters above the view's (see the module)."""
    cols = ", ".join(_qi(n) for n, _ in d.columns)
    text = f"SELECT {cols} FROM ({d.sql}) AS __view({cols})"
    if fence:
        text += " OFFSET 0"
    data = _parsed.get(text)
    if data is None:
        if len(_parsed) > 256:
            _parsed.clear()
        data = _parsed[text] = ast.parse(text).stmts[0].stmt.SerializeToString()
    sub = pb.Node()
    sub.range_subselect.subquery.ParseFromString(data)
    if alias is not None and alias.aliasname:
        sub.range_subselect.alias.CopyFrom(alias)
    else:
        sub.range_subselect.alias.aliasname = d.name
    return sub


def _qi(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


#: view SQL -> whether its query may leave rows of what it reads out
_hiding: dict[str, bool] = {}


def _hides_rows(sql: str) -> bool:
    """Whether a view's query may leave out rows of what it reads: anything but ``SELECT
    expressions FROM one_table`` (no WHERE, GROUP BY, HAVING, DISTINCT, LIMIT, WITH, set
    operation, window, join or subquery in FROM). Those views are read behind the fence."""
    known = _hiding.get(sql)
    if known is not None:
        return known
    sel = ast.parse(sql).stmts[0].stmt.select_stmt
    plain = (len(sel.from_clause) == 1 and ast.kind(sel.from_clause[0]) == "range_var"
             and not sel.HasField("where_clause") and not sel.group_clause
             and not sel.HasField("having_clause") and not sel.distinct_clause
             and not sel.HasField("limit_count") and not sel.HasField("limit_offset")
             and not sel.HasField("with_clause") and not sel.window_clause
             and sel.op == pb.SETOP_NONE and not sel.locking_clause
             and not any(isinstance(m, (pb.SubLink, pb.RangeSubselect, pb.RangeFunction))
                         for m in ast.walk(sel)))
    if len(_hiding) > 1024:
        _hiding.clear()
    _hiding[sql] = not plain
    return not plain


def expand(session: Session, stmt: pb.Node, known: set[str] | None = None) -> bool:
    """Replace every view a statement reads by its query; whether any was. Each view's query
    is checked as the session's own (``security_invoker`` views), or, for the others, for
    the session's workspaces only (their owner's table privileges: see the module). Names
    of the statement's CTEs and of what its scope registered (``known``, ``__...``) are
    left alone.

    Any other unqualified ``__...`` name is the statement's own: it must be a lake table
    (then qualified with its schema, so the scope never takes it for one of its own
    registrations) or a view, else 42P01. Otherwise a statement could name the scope's view
    of a table that a view read with its owner's rights registers while the statement is
    bound (``SELECT x.* FROM v, __t10 x``), and read the whole table."""
    if not any_views(session.db, session):
        return False
    return _expand_in(session, stmt, as_owner=False, depth=0, known=known)


def _expand_in(session: Session, node: pb.Node, as_owner: bool, depth: int,
               known: set[str] | None = None) -> bool:
    skip = {c.common_table_expr.ctename for m in ast.walk(node)
            if isinstance(m, pb.WithClause) for c in m.ctes}
    expanded = False
    for n in list(ast.walk_nodes(node)):
        if ast.kind(n) != "range_var":
            continue
        rv = n.range_var
        if not rv.schemaname and rv.relname in skip:
            continue
        if not rv.schemaname and rv.relname.startswith("__"):
            if known is None or rv.relname in known:
                continue
            info = session.resolve_table(None, rv.relname)
            if info is not None:
                rv.schemaname = info.workspace
                continue
            if resolve(session, None, rv.relname) is None:
                raise E.UndefinedTable(f'relation "{rv.relname}" does not exist',
                                       position=rv.location + 1 if rv.location >= 0 else None,
                                       table=rv.relname)
        d = resolve(session, rv.schemaname or None, rv.relname)
        if d is None:
            continue
        if depth >= _MAX_DEPTH:
            raise E.InvalidRecursion(
                f'infinite recursion detected in rules for relation "{d.name}"')
        owner = as_owner or not d.security_invoker
        # A role (table GRANTs) entering a view read with its owner's rights: fenced, unless
        # the view hides no row (then every value a pushed-down filter sees is shown anyway)
        fence = owner and not as_owner and getattr(session, "acl_role", None) is not None \
            and _hides_rows(d.sql)
        sub = _body(d, rv.alias if rv.HasField("alias") else None, fence)
        body = sub.range_subselect.subquery
        check = pb.Node()
        check.CopyFrom(body)
        session.check_view_query(check, as_owner=owner)
        if owner:
            from .scan import OWNER_READ

            # the view's own tables (named with their schema) are read whole, as its
            # owner reads them, whatever column grants the reader holds (engine/scan.py)
            for m in ast.walk(body):
                if isinstance(m, pb.RangeVar) and m.schemaname:
                    m.catalogname = OWNER_READ
        _expand_in(session, body, owner, depth + 1)
        n.CopyFrom(sub)
        expanded = True
    return expanded


def refuse_write(session: Session, rv: Any, verb: str) -> None:
    """The 42809 for an INSERT / UPDATE / DELETE / COPY FROM that names a view."""
    d = resolve(session, rv.schemaname or None, rv.relname)
    if d is not None:
        raise E.WrongObjectType(
            f'cannot {verb} view "{d.name}"',
            detail="tarndb views are read-only.",
            hint="Write to the tables the view reads.")


if TYPE_CHECKING:
    from .result import Result
