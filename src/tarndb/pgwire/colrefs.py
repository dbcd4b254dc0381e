"""Which columns of which table a statement reads and writes, for column privileges (acl.py).

PostgreSQL decides column privileges from its parse analysis: every column a statement
names, wherever it names it (select list, WHERE, JOIN ... ON / USING, GROUP BY, ORDER BY,
subqueries, CTEs, RETURNING, the SET list and conflict target of a write), is marked on the
range table entry it resolves to; ``*`` and a whole-row reference (``SELECT t FROM t``,
``to_jsonb(t)``) mark every column. The executor then asks, per table, for the privilege on
each marked column, or, when none is marked (``count(*)``), on any column.

tarndb's statements run on DuckDB, whose binder is not PostgreSQL's, so this module makes
the same marks from libpg_query's parse tree with PostgreSQL's name resolution: a bare name
is a column of the innermost query level that has it (FROM items of that level, then outer
levels for correlated subqueries), else a whole row of the item so named; ``x.c`` is column
``c`` of item ``x``; ORDER BY / DISTINCT ON names may be output columns, GROUP BY ones only
when no input column has the name. Where the tree leaves a doubt (a name that several items
have, an item whose columns are not known here such as a catalog relation), every candidate
is marked: a doubt can refuse a statement that PostgreSQL would run, never run one that it
would refuse. DuckDB's ``COLUMNS(...)`` expands to columns by pattern and ``#n`` names one
by position: both are taken for ``*``. DuckDB matches names without regard to case, even
quoted ones (``"SALARY"`` is ``salary`` there), so names are compared here the same way.

:func:`analyze` returns ``None`` for statement kinds it does not take apart: the caller then
asks for table privileges on all they name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from postgast import pg_query_pb2 as pb

from ..sql import ast, colnames

#: (workspace, name, oid, "table" | "view") of a lake relation
RelKey = tuple[str, str, int, str]


@dataclass
class Need:
    """What a statement asks of one relation: privileges, and the columns each one covers
    (PostgreSQL's RTEPermissionInfo, merged over the relation's occurrences)."""

    privileges: set[str] = field(default_factory=set)
    select: set[str] = field(default_factory=set)
    insert: set[str] = field(default_factory=set)
    update: set[str] = field(default_factory=set)
    #: the relation's columns
    columns: list[str] = field(default_factory=list)


@dataclass
class Rel:
    key: RelKey
    columns: list[str]


@dataclass
class _Item:
    """One FROM item of a query level."""

    refname: str | None
    #: visible column names (None: not known here)
    columns: list[str] | None
    rel: Rel | None = None
    #: visible name -> the relation's own column (``FROM t AS x(p, q)`` renames)
    colmap: dict[str, str] = field(default_factory=dict)
    #: an aliased join: the items under it
    children: list[_Item] = field(default_factory=list)

    def leaves(self) -> list[_Item]:
        if self.children:
            return [leaf for c in self.children for leaf in c.leaves()]
        return [self]

    def has(self, name: str) -> bool:
        """Whether a column is so named (as DuckDB matches names: whatever the case)."""
        return self.columns is not None and name.lower() in {c.lower() for c in self.columns}

    def real(self, name: str) -> list[str]:
        """The relation's own columns that a visible name stands for."""
        return [r for v, r in self.colmap.items() if v.lower() == name.lower()]


@dataclass
class _Level:
    items: list[_Item]
    outer: _Level | None
    #: output column names of this level's SELECT (ORDER BY / GROUP BY may name them)
    outputs: set[str] = field(default_factory=set)

    def leaves(self) -> list[_Item]:
        return [leaf for i in self.items for leaf in i.leaves()]

    def named(self, refname: str) -> _Item | None:
        for i in self.items:
            if i.refname is not None and i.refname.lower() == refname.lower():
                return i
            if i.children and i.refname is None:  # an unaliased join shows its items
                found = _Level(i.children, None).named(refname)
                if found is not None:
                    return found
        return None


Lookup = Callable[[pb.RangeVar], Rel | None]


class _Analysis:
    def __init__(self, lookup: Lookup) -> None:
        self.lookup = lookup
        self.needs: dict[RelKey, Need] = {}
        #: (relname, location) of every RangeVar taken apart here
        self.seen: set[tuple[str, int]] = set()

    # -- marks ---------------------------------------------------------------------------

    def need(self, rel: Rel) -> Need:
        return self.needs.setdefault(rel.key, Need(columns=list(rel.columns)))

    def mark(self, item: _Item, name: str) -> None:
        if item.rel is None:
            return
        n = self.need(item.rel)
        n.privileges.add("SELECT")
        n.select.update(item.real(name) or [name])

    def whole(self, item: _Item) -> None:
        for leaf in item.leaves():
            if leaf.rel is not None:
                n = self.need(leaf.rel)
                n.privileges.add("SELECT")
                n.select.update(leaf.rel.columns)

    # -- names -----------------------------------------------------------------------------

    def column(self, name: str, level: _Level | None) -> None:
        """A bare name: a column of the innermost level that has one so named, else the
        whole row of an item so named.

        Only a table's or view's column settles it: the output names of a subquery, CTE or
        function are PostgreSQL's as worked out here, and should DuckDB name one otherwise,
        it would take the name for an outer table's column (or row), so those are marked
        too."""
        lvl = level
        while lvl is not None:
            leaves = lvl.leaves()
            known = [i for i in leaves if i.has(name)]
            for i in known:
                self.mark(i, name)
            if any(i.rel is not None for i in known) and not any(i.columns is None for i in leaves):
                return
            lvl = lvl.outer
        lvl = level
        while lvl is not None:
            item = lvl.named(name)
            if item is not None:
                self.whole(item)
                return
            lvl = lvl.outer

    def column_ref(self, ref: Any, level: _Level | None) -> None:
        parts = [ast.kind(f) == "a_star" and "*" or f.string.sval for f in ref.fields]
        if parts == ["*"]:
            self.star(level)
            return
        if len(parts) == 1:
            self.column(parts[0], level)
            return
        table, col = parts[-2], parts[-1]
        lvl = level
        while lvl is not None:
            item = lvl.named(table)
            if item is not None:
                if col == "*":
                    self.whole(item)
                else:
                    for leaf in item.leaves():
                        if leaf.columns is None or leaf.has(col):
                            self.mark(leaf, col)
                return
            lvl = lvl.outer
        # not an item: a field of a composite column (``(c).f`` written ``c.f``)
        self.column(table, level)

    def star(self, level: _Level | None) -> None:
        if level is not None:
            for i in level.items:
                self.whole(i)

    # -- expressions -------------------------------------------------------------------------

    def expr(self, node: Any, level: _Level | None, ctes: dict[str, list[str] | None]) -> None:
        """Every column an expression names (its subqueries with this level as outer)."""
        stack = [node]
        while stack:
            m = stack.pop()
            if isinstance(m, pb.ColumnRef):
                self.column_ref(m, level)
                continue
            if isinstance(m, pb.SubLink):
                if m.HasField("testexpr"):
                    stack.append(m.testexpr)
                self.statement(m.subselect, level, ctes)
                continue
            if isinstance(m, pb.FuncCall) and ast.func_name(m) in ("columns", "unpack"):
                self.star(level)  # DuckDB's COLUMNS(pattern): columns chosen by name
            if isinstance(m, pb.A_Expr) and not m.HasField("lexpr") and ast.op_name(m) == "#":
                self.star(level)  # DuckDB's ``#n``: the n-th column, by position
            if isinstance(m, pb.SelectStmt):
                self.select(m, level, ctes)
                continue
            stack.extend(ast.children(m))

    def exprs(
        self, nodes: Iterable[Any], level: _Level | None, ctes: dict[str, list[str] | None]
    ) -> None:
        for n in nodes:
            self.expr(n, level, ctes)

    # -- FROM --------------------------------------------------------------------------------

    def relation(self, rv: Any, ctes: dict[str, list[str] | None]) -> _Item:
        refname = rv.alias.aliasname if rv.HasField("alias") and rv.alias.aliasname else rv.relname
        aliases = [c.string.sval for c in rv.alias.colnames] if rv.HasField("alias") else []
        if not rv.schemaname and rv.relname in ctes:
            self.seen.add((rv.relname, rv.location))  # a CTE: no table to check
            cols = ctes[rv.relname]
            if cols is not None and aliases:
                cols = aliases + cols[len(aliases) :]
            return _Item(refname, cols)
        self.seen.add((rv.relname, rv.location))
        rel = self.lookup(rv)
        if rel is None:
            return _Item(refname, None)
        visible = aliases + rel.columns[len(aliases) :]
        return _Item(refname, visible, rel, dict(zip(visible, rel.columns, strict=True)))

    def from_item(self, node: Any, level: _Level, ctes: dict[str, list[str] | None]) -> _Item:
        k = ast.kind(node)
        if k == "range_var":
            item = self.relation(node.range_var, ctes)
            if item.rel is not None:
                self.need(item.rel).privileges.add("SELECT")
            return item
        if k == "range_subselect":
            rs = node.range_subselect
            # Seen from the items before it even when not LATERAL: DuckDB makes a subquery
            # that names them lateral by itself, where PostgreSQL would refuse it
            cols = self.statement(rs.subquery, level, ctes)
            alias = rs.alias.aliasname if rs.HasField("alias") else None
            names = [c.string.sval for c in rs.alias.colnames] if rs.HasField("alias") else []
            if cols is not None and names:
                cols = names + cols[len(names) :]
            return _Item(alias, cols)
        if k == "range_function":
            rf = node.range_function
            self.expr(rf, level, ctes)  # a function in FROM sees the items before it
            alias = rf.alias.aliasname if rf.HasField("alias") else None
            names = [c.string.sval for c in rf.alias.colnames] if rf.HasField("alias") else []
            return _Item(alias, None if not names else names)
        if k == "join_expr":
            j = node.join_expr
            left = self.from_item(j.larg, level, ctes)
            right = self.from_item(j.rarg, level, ctes)
            pair = _Level([left, right], level)  # (PostgreSQL: only outer levels)
            using = [u.string.sval for u in j.using_clause]
            if j.is_natural:
                lc = [c for i in left.leaves() for c in (i.columns or [])]
                rc = {c.lower() for i in right.leaves() for c in (i.columns or [])}
                using = [c for c in lc if c.lower() in rc]
                if any(i.columns is None for i in left.leaves() + right.leaves()):
                    self.whole(left)
                    self.whole(right)
            for name in using:  # both sides' columns are compared
                self.column(name, _Level([left], None))
                self.column(name, _Level([right], None))
            if j.HasField("quals"):
                self.expr(j.quals, pair, ctes)
            alias = j.alias.aliasname if j.HasField("alias") and j.alias.aliasname else None
            return _Item(alias, None, children=[left, right])
        # anything else in FROM (XMLTABLE, JSON_TABLE, TABLESAMPLE): its expressions
        self.expr(node, level, ctes)
        return _Item(None, None)

    # -- queries -----------------------------------------------------------------------------

    def with_clause(
        self, w: Any, level: _Level | None, ctes: dict[str, list[str] | None]
    ) -> dict[str, list[str] | None]:
        out = dict(ctes)
        for c in w.ctes:
            cte = c.common_table_expr
            if w.recursive:
                out[cte.ctename] = None
            cols = self.statement(cte.ctequery, level, out)
            names = [n.string.sval for n in cte.aliascolnames]
            if names:
                cols = names + (cols or [])[len(names) :]
            out[cte.ctename] = cols
        return out

    def statement(
        self, node: Any, level: _Level | None, ctes: dict[str, list[str] | None]
    ) -> list[str] | None:
        """A query or data-modifying statement nested in another: its output columns."""
        k = ast.kind(node)
        if k == "select_stmt":
            return self.select(node.select_stmt, level, ctes)
        if k == "insert_stmt":
            return self.insert(node.insert_stmt, level, ctes)
        if k == "update_stmt":
            return self.update(node.update_stmt, level, ctes)
        if k == "delete_stmt":
            return self.delete(node.delete_stmt, level, ctes)
        raise _Unknown(k)

    def select(
        self, sel: Any, outer: _Level | None, ctes: dict[str, list[str] | None]
    ) -> list[str] | None:
        if sel.HasField("with_clause"):
            ctes = self.with_clause(sel.with_clause, outer, ctes)
        if sel.op != pb.SETOP_NONE:
            cols = self.select(sel.larg, outer, ctes)
            self.select(sel.rarg, outer, ctes)
            # ORDER BY of a set operation names its output columns
            out = _Level([], outer, set(cols or []))
            for s in sel.sort_clause:
                self._sort_key(s.sort_by.node, out, ctes)
            self._limits(sel, _Level([], outer), ctes)
            return cols
        if sel.values_lists:
            for row in sel.values_lists:
                self.exprs(row.list.items, outer, ctes)
            return [f"column{i + 1}" for i in range(len(sel.values_lists[0].list.items))]
        level = _Level([], outer)
        for f in sel.from_clause:
            level.items.append(self.from_item(f, level, ctes))
        cols = self._targets(sel.target_list, level, ctes)
        level.outputs = {c.lower() for c in cols or []}
        for clause in ("where_clause", "having_clause"):
            if sel.HasField(clause):
                self.expr(getattr(sel, clause), level, ctes)
        for g in sel.group_clause:
            if (
                ast.kind(g) == "column_ref"
                and len(g.column_ref.fields) == 1
                and ast.kind(g.column_ref.fields[0]) == "string"
            ):
                name = g.column_ref.fields[0].string.sval
                if name.lower() in level.outputs and not any(
                    i.columns is None or i.has(name) for i in level.leaves()
                ):
                    continue  # GROUP BY an output column's name
            self.expr(g, level, ctes)
        for s in sel.sort_clause:
            self._sort_key(s.sort_by.node, level, ctes)
        for d in sel.distinct_clause:
            self._sort_key(d, level, ctes)
        self.exprs(sel.window_clause, level, ctes)
        self._limits(sel, level, ctes)
        self._locks(sel, level)
        return cols

    def _locks(self, sel: Any, level: _Level) -> None:
        """``FOR UPDATE / SHARE [OF ...]``: UPDATE on some column of each table it locks,
        as PostgreSQL asks."""
        for lc in sel.locking_clause:
            names = {r.range_var.relname.lower() for r in lc.locking_clause.locked_rels}
            for leaf in level.leaves():
                if leaf.rel is not None and (not names or (leaf.refname or "").lower() in names):
                    self.need(leaf.rel).privileges.add("UPDATE")

    def _sort_key(self, node: Any, level: _Level, ctes: dict[str, list[str] | None]) -> None:
        if ast.kind(node) == "a_const":
            return  # a position in the select list (marked there)
        if (
            ast.kind(node) == "column_ref"
            and len(node.column_ref.fields) == 1
            and ast.kind(node.column_ref.fields[0]) == "string"
            and node.column_ref.fields[0].string.sval.lower() in level.outputs
        ):
            return  # an output column's name
        self.expr(node, level, ctes)

    def _limits(self, sel: Any, level: _Level, ctes: dict[str, list[str] | None]) -> None:
        for clause in ("limit_count", "limit_offset"):
            if sel.HasField(clause):
                self.expr(getattr(sel, clause), level, ctes)

    def _targets(
        self, targets: Iterable[Any], level: _Level, ctes: dict[str, list[str] | None]
    ) -> list[str] | None:
        """Mark what a select (or RETURNING) list names; its output column names (None
        when a ``*`` covers columns not known here)."""
        names: list[str] | None = []
        for t in targets:
            rt = t.res_target
            self.expr(rt.val, level, ctes)
            if names is None:
                continue
            if rt.name:
                names.append(rt.name)
                continue
            if ast.kind(rt.val) == "column_ref":
                parts = ast.names(rt.val.column_ref.fields)
                if parts and parts[-1] == "*":
                    items = [level.named(parts[-2])] if len(parts) > 1 else level.items
                    cols = [
                        c
                        for i in items
                        if i is not None
                        for leaf in i.leaves()
                        for c in (leaf.columns if leaf.columns is not None else ["\0"])
                    ]
                    names = None if "\0" in cols or None in items else names + cols
                    continue
                names.append(parts[-1] if parts else "?column?")
            else:
                names.append(colnames.figure(rt.val))
        return names

    def _returning(
        self, node: Any, target: _Item, level: _Level, ctes: dict[str, list[str] | None]
    ) -> list[str] | None:
        """RETURNING: the target's columns, also as ``old`` / ``new`` (or the names its
        ``WITH (OLD AS o)`` gives them) of PostgreSQL 18."""
        rc = node.returning_clause
        names = {"old", "new"} | {o.returning_option.value for o in rc.options}
        rows = [_Item(n, target.columns, target.rel, target.colmap) for n in sorted(names)]
        return self._targets(rc.exprs, _Level([*level.items, *rows], level.outer), ctes)

    def _target(self, rv: Any, ctes: dict[str, list[str] | None]) -> tuple[_Item, Need | None]:
        # the table of that name even where a CTE has it: a write's target is no CTE
        item = self.relation(rv, {})
        return item, self.need(item.rel) if item.rel is not None else None

    def insert(
        self, node: Any, outer: _Level | None, ctes: dict[str, list[str] | None]
    ) -> list[str] | None:
        if node.HasField("with_clause"):
            ctes = self.with_clause(node.with_clause, outer, ctes)
        item, need = self._target(node.relation, ctes)
        cols = [c.res_target.name for c in node.cols]
        if node.HasField("select_stmt"):
            src = node.select_stmt.select_stmt
            given = self.select(src, outer, ctes)
            rel = item.rel
            if not cols and rel is not None:
                # no column list: the first columns, as many as each row gives
                if src.values_lists:
                    n = len(src.values_lists[0].list.items)
                else:
                    n = len(given) if given is not None else len(rel.columns)
                cols = rel.columns[:n]
        if need is not None:
            need.privileges.add("INSERT")
            need.insert.update(cols)
        own = _Level([item], outer)
        if node.HasField("on_conflict_clause"):
            oc = node.on_conflict_clause
            excluded = _Item("excluded", item.columns)  # the row offered: no privilege
            both = _Level([item, excluded], outer)
            if oc.HasField("infer"):
                self.expr(oc.infer, own, ctes)
                for e in oc.infer.index_elems:
                    if e.index_elem.name:
                        self.column(e.index_elem.name, own)
            for t in oc.target_list:
                if need is not None:
                    need.privileges.add("UPDATE")
                    need.update.add(t.res_target.name)
                self.expr(t.res_target.val, both, ctes)
            if oc.HasField("where_clause"):
                self.expr(oc.where_clause, both, ctes)
        return self._returning(node, item, own, ctes)

    def update(
        self, node: Any, outer: _Level | None, ctes: dict[str, list[str] | None]
    ) -> list[str] | None:
        if node.HasField("with_clause"):
            ctes = self.with_clause(node.with_clause, outer, ctes)
        item, need = self._target(node.relation, ctes)
        level = _Level([item], outer)
        for f in node.from_clause:
            level.items.append(self.from_item(f, level, ctes))
        for t in node.target_list:
            if need is not None:
                need.privileges.add("UPDATE")
                need.update.add(t.res_target.name)
            self.expr(t.res_target.val, level, ctes)
        if node.HasField("where_clause"):
            self.expr(node.where_clause, level, ctes)
        return self._returning(node, item, level, ctes)

    def delete(
        self, node: Any, outer: _Level | None, ctes: dict[str, list[str] | None]
    ) -> list[str] | None:
        if node.HasField("with_clause"):
            ctes = self.with_clause(node.with_clause, outer, ctes)
        item, need = self._target(node.relation, ctes)
        if need is not None:
            need.privileges.add("DELETE")
        level = _Level([item], outer)
        for f in node.using_clause:
            level.items.append(self.from_item(f, level, ctes))
        if node.HasField("where_clause"):
            self.expr(node.where_clause, level, ctes)
        return self._returning(node, item, level, ctes)

    def merge(self, node: Any, ctes: dict[str, list[str] | None]) -> list[str] | None:
        """PostgreSQL's transformMergeStmt: the privilege of each action on the target
        (UPDATE on the columns of each SET list, INSERT on the columns each INSERT fills,
        DELETE on the table, SELECT on some column for DO NOTHING), and SELECT on every
        column of the source and the target that the join condition, a WHEN condition, a
        value or RETURNING names. A WHEN NOT MATCHED clause sees the source's columns and
        a WHEN NOT MATCHED BY SOURCE one the target's (PostgreSQL refuses a name of the
        other side there); that side is kept as an outer level, so a name it has is
        marked should DuckDB find it there."""
        if node.HasField("with_clause"):
            ctes = self.with_clause(node.with_clause, None, ctes)
        item, need = self._target(node.relation, ctes)
        # the source cannot see the target (PostgreSQL's 42P01), but should DuckDB take a
        # name there for the target's, it is marked
        source = self.from_item(node.source_relation, _Level([item], None), ctes)
        both = _Level([item, source], None)
        self.expr(node.join_condition, both, ctes)
        by_target = _Level([source], _Level([item], None))
        by_source = _Level([item], _Level([source], None))
        for w in node.merge_when_clauses:
            wc = w.merge_when_clause
            level = (
                both
                if wc.match_kind == pb.MERGE_WHEN_MATCHED
                else by_source
                if wc.match_kind == pb.MERGE_WHEN_NOT_MATCHED_BY_SOURCE
                else by_target
            )
            if wc.HasField("condition"):
                self.expr(wc.condition, level, ctes)
            for t in wc.target_list:
                self.expr(t.res_target.val, level, ctes)
                self.exprs(t.res_target.indirection, level, ctes)
            self.exprs(wc.values, level, ctes)
            if need is None or item.rel is None:
                continue
            if wc.command_type == pb.CMD_UPDATE:
                need.privileges.add("UPDATE")
                need.update.update(t.res_target.name for t in wc.target_list)
            elif wc.command_type == pb.CMD_INSERT:
                need.privileges.add("INSERT")
                # no column list: the first columns, as many as the values fill (none for
                # DEFAULT VALUES: then INSERT on any column will do)
                need.insert.update(
                    [t.res_target.name for t in wc.target_list]
                    or item.rel.columns[: len(wc.values)]
                )
            elif wc.command_type == pb.CMD_DELETE:
                need.privileges.add("DELETE")
            else:  # DO NOTHING: the rows are read (PostgreSQL 15.7's fix, 4989ce72644b)
                need.privileges.add("SELECT")
        if node.HasField("returning_clause"):
            return self._returning(node, item, both, ctes)
        return None

    def copy(self, node: Any) -> None:
        if node.HasField("query"):
            self.statement(node.query, None, {})
            return
        item, need = self._target(node.relation, {})
        if need is None or item.rel is None:
            return
        cols = [a.string.sval for a in node.attlist] or item.rel.columns
        if node.is_from:
            need.privileges.add("INSERT")
            need.insert.update(cols)
        else:
            need.privileges.add("SELECT")
            need.select.update(cols)
        if node.HasField("where_clause"):
            self.expr(node.where_clause, _Level([item], None), {})


class _Unknown(Exception):
    """A statement kind this module does not take apart."""


def analyze(
    kind: str | None, stmt: Any, lookup: Lookup
) -> tuple[dict[RelKey, Need], set[tuple[str, int]]] | None:
    """The needs of a statement per lake relation, and the (relname, location) of every
    RangeVar they cover; None for a kind not taken apart here (the caller checks table
    privileges on every relation it names)."""
    a = _Analysis(lookup)
    node = ast.inner(stmt)
    try:
        while kind in ("explain_stmt", "declare_cursor_stmt"):
            stmt = node.query
            kind = ast.kind(stmt)
            node = ast.inner(stmt)
        if kind == "copy_stmt":
            a.copy(node)
        elif kind in ("select_stmt", "insert_stmt", "update_stmt", "delete_stmt"):
            a.statement(stmt, None, {})
        elif kind == "merge_stmt":
            a.merge(node, {})
        else:
            return None
    except _Unknown:
        return None
    return a.needs, a.seen
