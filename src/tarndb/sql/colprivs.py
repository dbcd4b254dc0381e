"""Column privileges in the catalogs, as PostgreSQL shows them: ``pg_attribute.attacl``,
``information_schema.column_privileges``, ``has_column_privilege`` and
``has_any_column_privilege``. The grants themselves are kept and enforced by pgwire/acl.py;
this module only reads them (psql's ``\\dp`` "Column privileges" column and pg_dump's
``GRANT SELECT (col)`` lines come from ``attacl``).

A table privilege counts as that privilege on every column, as in PostgreSQL
(``column_privileges`` lists it per column; ``has_column_privilege`` answers true)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

#: the privileges PostgreSQL grants on columns, with their aclitem letters in its order
_LETTERS = {"INSERT": "a", "SELECT": "r", "UPDATE": "w", "REFERENCES": "x"}


def _column_grants(db: Any, workspace: str, name: str, oid: int) -> dict[str, dict[str, list[str]]]:
    try:
        from ..pgwire import acl

        return acl.column_privileges_of(db, workspace, name, oid)
    except Exception:  # noqa: BLE001 - no grant store (embedded use without roles)
        return {}


def _table_grants(db: Any, workspace: str, name: str, oid: int) -> dict[str, list[str]]:
    from . import pgcatalog

    return pgcatalog._grants_on(db, workspace, name, oid)  # noqa: SLF001


def attacl(db: Any, workspace: str, name: str, oid: int) -> dict[str, list[str]]:
    """column -> its ``attacl`` items (``dave=ar/postgres``); columns without a column
    grant are left out (NULL, as in PostgreSQL)."""
    from .pgcatalog import _acl_name

    out: dict[str, list[str]] = {}
    for grantee, cols in sorted(_column_grants(db, workspace, name, oid).items()):
        who = "" if grantee == "public" else _acl_name(grantee)
        for col, privs in cols.items():
            letters = "".join(v for p, v in _LETTERS.items() if p in privs)
            if letters:
                out.setdefault(col, []).append(f"{who}={letters}/postgres")
    return out


def column_privileges(db: Any, session: Any) -> pa.Table:
    """``information_schema.column_privileges``: the owner's privileges (to superusers)
    and, per column, the table grants and the column grants; to a role's session only
    those to it or to PUBLIC."""
    from .pgcatalog import _S, _rows, _tables, _views

    role = getattr(session, "acl_role", None)
    relations = [
        (i.workspace, i.name, int(i.oid or 0), [c.name for c in i.columns])
        for i in _tables(db, session)
    ]
    relations += [
        (v.workspace, v.name, v.oid, [n for n, _ in v.columns]) for v in _views(db, session)
    ]
    rows = []
    for ws, name, oid, columns in relations:
        table = _table_grants(db, ws, name, oid)
        by_col = _column_grants(db, ws, name, oid)
        grantees = set(table) | set(by_col) if role is None else {role, "public"}
        for col in columns:
            held: dict[str, set[str]] = {} if role is not None else {"postgres": set(_LETTERS)}
            for g in grantees:
                privs = (set(table.get(g, ())) | set(by_col.get(g, {}).get(col, ()))) & set(
                    _LETTERS
                )
                if privs:
                    held.setdefault(g, set()).update(privs)
            for g, privs in sorted(held.items()):
                for p in _LETTERS:
                    if p in privs:
                        rows.append(
                            (
                                "postgres",
                                "PUBLIC" if g == "public" else g,
                                "postgres",
                                ws,
                                name,
                                col,
                                p,
                                "YES" if g == "postgres" else "NO",
                            )
                        )
    return _rows(
        [
            ("grantor", _S),
            ("grantee", _S),
            ("table_catalog", _S),
            ("table_schema", _S),
            ("table_name", _S),
            ("column_name", _S),
            ("privilege_type", _S),
            ("is_grantable", _S),
        ],
        rows,
    )


def has_column_privilege(args: list[str], db: Any, session: Any, any_column: bool) -> str:
    """SQL of ``has_column_privilege([user,] relation, column, privilege)`` (the column by
    name or number) or, ``any_column``, ``has_any_column_privilege([user,] relation,
    privilege)``: true for superusers and the catalogs; for a role, whether it or PUBLIC
    holds the privilege on the table or on the column (on any column)."""
    from .pgcatalog import (
        SYSTEM_RELATION_OIDS,
        _lookup,
        _relation_oids,
        _sql_str,
        _table_oid,
        _tables,
        _views,
        privilege_subject,
    )

    # arguments when the user is named: 3 for any column, 4 with a column
    who = privilege_subject(args, 3 if any_column else 4, db, session)
    if who is None:
        return "true"
    user_sql, rest, users = who.user_sql, who.rest, who.users
    rel_sql, priv_sql = rest[0], rest[-1]
    relations = [
        (i.workspace, i.name, _table_oid(i), int(i.oid or 0), [c.name for c in i.columns])
        for i in _tables(db, session)
    ]
    relations += [
        (v.workspace, v.name, v.oid, v.oid, [n for n, _ in v.columns]) for v in _views(db, session)
    ]
    items: set[str] = set()
    for ws, name, oid, key_oid, columns in relations:
        table = _table_grants(db, ws, name, key_oid)
        by_col = _column_grants(db, ws, name, key_oid)
        for user in users:
            on_table = (set(table.get(user, ())) | set(table.get("public", ()))) & set(_LETTERS)
            for i, col in enumerate(columns):
                privs = (
                    on_table
                    | set(by_col.get(user, {}).get(col, ()))
                    | set(by_col.get("public", {}).get(col, ()))
                )
                for p in privs & set(_LETTERS):
                    if any_column:
                        items.add(f"{user}|{oid}|{p}")
                    else:
                        items.update({f"{user}|{oid}|{col}|{p}", f"{user}|{oid}|{i + 1}|{p}"})
    rels = _relation_oids(db, session)
    names = {**rels, **{str(o): o for o in set(rels.values())}}
    oid_sql = _lookup(names, f"CAST({rel_sql} AS text)")
    col_part = "" if any_column else f"CAST({rest[1]} AS text) || '|' || "
    system = sorted({o for o in SYSTEM_RELATION_OIDS.values() if o})
    held_sql = (
        "false"
        if not items
        else (
            f"({user_sql} || '|' || CAST({oid_sql} AS text) || '|' || {col_part}"
            f"upper(trim(CAST({priv_sql} AS text)))) IN "
            f"({', '.join(_sql_str(i) for i in sorted(items))})"
        )
    )
    return (
        f"CASE WHEN {user_sql} IN ({who.supers_sql}) THEN true "
        f"WHEN {oid_sql} IN ({', '.join(map(str, system))}) THEN true "
        f"ELSE coalesce({held_sql}, false) END"
    )
