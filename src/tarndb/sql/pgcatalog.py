"""The PostgreSQL system catalogs that real clients query, built from tarndb's catalog.

psql (``\\dt``, ``\\d t``, ``\\dn``, ``\\l``), SQLAlchemy (dialect initialisation, ``has_table``,
reflection), pandas, psycopg and asyncpg (type introspection) send catalog queries at connect
and introspection time. The engine answers them with DuckDB over Arrow tables built here:

- :func:`relation` builds ``pg_catalog.*`` and ``information_schema.*`` relations for one
  session (``None`` for names this module does not know);
- :func:`install_functions` defines, once per DuckDB database, the Postgres functions and type
  names those queries use (``format_type``, ``pg_get_expr``, ``regclass`` ...), shadowing
  DuckDB's own ``pg_catalog`` macros whose answers differ;
- :func:`session_function` gives SQL for the functions whose answer depends on the session or
  on the current catalog (``current_schema()``, ``pg_table_is_visible(oid)``,
  ``pg_get_constraintdef(oid)``, ``'t'::regclass`` ...). DuckDB macros are shared by every
  session of a Database, so the engine substitutes these per statement.

OIDs: built-in types and system relations keep PostgreSQL's OIDs (from
:mod:`tarndb.engine.types`), the superuser is 10, tables use ``TableInfo.oid``; schemas,
indexes, constraints and sequences get stable OIDs derived from their names.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from ..engine.types import (
    HALFVEC_ARRAY_OID,
    HALFVEC_OID,
    SCALARS,
    SPARSEVEC_ARRAY_OID,
    SPARSEVEC_OID,
    VECTOR_ARRAY_OID,
    VECTOR_OID,
    ColumnType,
)
from . import pgcatalog15

PG_CATALOG_OID = 11
PUBLIC_OID = 2200
INFORMATION_SCHEMA_OID = 13000
PG_TOAST_OID = 99
SUPERUSER_OID = 10
DATABASE_OID = 5
HEAP_AM = 2
BTREE_AM = 403
DEEPLAKE_AM = 16000
DEEPLAKE_INDEX_AM = 16001
HNSW_AM = 8110
IVFFLAT_AM = 8111
#: Index access methods by name (PostgreSQL's OIDs for its own; pgvector's get ours).
INDEX_AMS = {"btree": BTREE_AM, "hash": 405, "gist": 783, "gin": 2742, "spgist": 4000,
             "brin": 3580, "hnsw": HNSW_AM, "ivfflat": IVFFLAT_AM,
             "deeplake_index": DEEPLAKE_INDEX_AM}
DEFAULT_COLLATION = 100
SERVER_VERSION = "15.8"
VERSION_STRING = (f"PostgreSQL {SERVER_VERSION} (tarndb) on x86_64-pc-linux-gnu, "
                  "compiled by tarndb, 64-bit")

#: PostgreSQL's OIDs of the system relations clients name in ``'pg_catalog.x'::regclass``.
SYSTEM_RELATION_OIDS = {
    "pg_type": 1247, "pg_attribute": 1249, "pg_proc": 1255, "pg_class": 1259,
    "pg_authid": 1260, "pg_database": 1262, "pg_constraint": 2606, "pg_namespace": 2615,
    "pg_description": 2609, "pg_index": 2610, "pg_attrdef": 2604, "pg_am": 2601,
    "pg_inherits": 2611, "pg_trigger": 2620, "pg_collation": 3456, "pg_sequence": 2224,
    "pg_tablespace": 1213, "pg_extension": 3079, "pg_settings": 0, "pg_roles": 0,
}
for _name, _oid in pgcatalog15.OIDS.items():  # every other catalog, for 'pg_cast'::regclass
    SYSTEM_RELATION_OIDS.setdefault(_name, _oid)

# Extra types clients look up by OID besides the ones tarndb stores.
_EXTRA_TYPES = [
    # oid, typname, typlen, typcategory, array oid
    (22, "int2vector", -1, "A", 1006),
    (24, "regproc", 4, "N", 1008),
    (28, "xid", 4, "U", 1011),
    (30, "oidvector", -1, "A", 1013),
    (2205, "regclass", 4, "N", 2210),
    (2206, "regtype", 4, "N", 2211),
    (4089, "regnamespace", 4, "N", 4090),
    (2249, "record", -1, "P", 2287),
    (2275, "cstring", -2, "P", 1263),
    (2276, "any", 4, "P", 0),
    (2277, "anyarray", -1, "P", 0),
    (2278, "void", 4, "P", 0),
    (2283, "anyelement", 4, "P", 0),
    (3614, "tsvector", -1, "U", 3643),
    # pgvector's (drivers look it up by name: pgvector-python's register_vector)
    (VECTOR_OID, "vector", -1, "U", VECTOR_ARRAY_OID),
    (HALFVEC_OID, "halfvec", -1, "U", HALFVEC_ARRAY_OID),
    (SPARSEVEC_OID, "sparsevec", -1, "U", SPARSEVEC_ARRAY_OID),
]
#: types CREATE EXTENSION vector puts in public
_PGVECTOR_OIDS = {VECTOR_OID, VECTOR_ARRAY_OID, HALFVEC_OID, HALFVEC_ARRAY_OID, SPARSEVEC_OID,
                  SPARSEVEC_ARRAY_OID}

_NICE = {
    "int8": "bigint", "int4": "integer", "int2": "smallint", "float4": "real",
    "float8": "double precision", "bool": "boolean", "varchar": "character varying",
    "timestamp": "timestamp without time zone", "timestamptz": "timestamp with time zone",
    "bpchar": "character", "time": "time without time zone", "char": '"char"',
}


def stable_oid(kind: str, *parts: str) -> int:
    """A stable OID for objects the catalog does not number (schemas, indexes, constraints).

    Kept above 2**30 so it never meets ``TableInfo.oid`` (a counter from 16384)."""
    return (1 << 30) + zlib.crc32("\x1f".join((kind, *parts)).encode()) % (1 << 30)


def namespace_oid(name: str) -> int:
    if name == "pg_catalog":
        return PG_CATALOG_OID
    if name == "public":
        return PUBLIC_OID
    if name == "information_schema":
        return INFORMATION_SCHEMA_OID
    return stable_oid("namespace", name)


# ---------------------------------------------------------------------------------------------
# what the catalog holds, flattened


def _allowed(session: Any) -> set[str] | None:
    allowed: set[str] | None = getattr(session, "allowed_workspaces", None)
    return allowed


def _tables(db: Any, session: Any) -> list[Any]:
    """The tables this session may see: a token scoped to some workspaces does not learn
    the names of the tables (or, below, of the schemas) in the others."""
    allowed = _allowed(session)
    # a session's own uncommitted DDL included, as PostgreSQL's catalogs show it
    all_tables = getattr(session, "all_tables", None)
    found = list(all_tables() if callable(all_tables) else db.catalog.all_tables())
    return found if allowed is None else [t for t in found if t.workspace in allowed]


def _views(db: Any, session: Any) -> list[Any]:
    """The views this session may see (engine/views.py), its temporary ones aside."""
    if not hasattr(db, "catalog"):
        return []
    from ..engine import views

    return [v for v in views.all_views(db, session) if not v.temp]


def _workspaces(db: Any, session: Any) -> list[str]:
    names = list(db.catalog.workspaces())
    if "public" not in names:
        names.insert(0, "public")
    allowed = _allowed(session)
    return names if allowed is None else [n for n in names if n in allowed]


def _table_oid(info: Any) -> int:
    return int(getattr(info, "oid", 0) or stable_oid("table", info.workspace, info.name))


def _pk_name(info: Any) -> str:
    return f"{info.name}_pkey"


def _seq_name(info: Any, col: Any) -> str:
    return f"{info.name}_{col.name}_seq"


def _standalone(db: Any, session: Any) -> list[Any]:
    """Standalone sequences (``CREATE SEQUENCE``) this session may see."""
    if not hasattr(db, "catalog"):
        return []
    from ..engine import sequences

    allowed = _allowed(session)
    return [d for d in sequences.all_defs(db, session)
            if allowed is None or d.workspace in allowed]


def _standalone_oid(d: Any) -> int:
    return int(d.oid or stable_oid("sequence", d.workspace, d.name))


_SEQ_TYPE_OIDS = {"int2": 21, "int4": 23, "int8": 20}


def _attnum(info: Any, name: str) -> int:
    for i, c in enumerate(info.columns):
        if c.name == name:
            return i + 1
    return 0


#: The WITH options of pgvector's indexes (hnsw; ivfflat), kept for pg_dump and pg_class, in
#: this order (the catalog does not keep the order they were given in).
_PGVECTOR_RELOPTIONS = ("m", "ef_construction", "lists")


def _indexes(info: Any) -> list[dict[str, Any]]:
    """Primary key and deeplake indexes of a table, as pg_index/pg_class rows need them."""
    out: list[dict[str, Any]] = []
    if info.primary_key:
        out.append({"name": _pk_name(info), "columns": list(info.primary_key), "primary": True,
                    "unique": True, "am": BTREE_AM, "method": "btree", "index_type": None})
    for ix in info.indexes:
        method = ix.options.get("method") or (
            ix.index_type if ix.index_type in INDEX_AMS else "deeplake_index")
        out.append({"name": ix.name, "columns": list(ix.options.get("columns") or [ix.column]),
                    "expression": ix.options.get("expression"),
                    "primary": False, "unique": ix.index_type == "unique",
                    "am": INDEX_AMS.get(method, DEEPLAKE_INDEX_AM),
                    "method": method, "index_type": ix.index_type,
                    "opclass": ix.options.get("opclass"),
                    "reloptions": [f"{k}={ix.options[k]}" for k in _PGVECTOR_RELOPTIONS
                                   if method in ("hnsw", "ivfflat") and k in ix.options]
                    or None})
    for con in getattr(info, "constraints", None) or []:
        if con.get("type") == "unique":  # a UNIQUE constraint's index, as PostgreSQL has
            out.append({"name": con["name"], "columns": list(con["columns"]), "primary": False,
                        "unique": True, "am": BTREE_AM, "method": "btree",
                        "index_type": None, "constraint": True})
    for d in out:
        d["oid"] = stable_oid("index", info.workspace, info.name, d["name"])
    return out


def _qi(name: str) -> str:
    if name.isidentifier() and name.lower() == name and name.isascii():
        return name
    return '"' + name.replace('"', '""') + '"'


def _index_def(info: Any, ix: dict[str, Any]) -> str:
    cols = ", ".join(_qi(c) for c in ix["columns"])
    if ix.get("expression"):
        cols = f"({ix['expression']})"
    if ix.get("opclass"):
        cols += " " + ix["opclass"]
    unique = "UNIQUE " if ix["unique"] else ""
    with_ = ""
    if ix["index_type"] and ix["index_type"] != "unique" and ix["method"] == "deeplake_index":
        with_ = f" WITH (index_type='{ix['index_type']}')"
    elif ix.get("reloptions"):  # as PostgreSQL prints them: WITH (m='16', ef_construction='64')
        with_ = " WITH (" + ", ".join(
            "{}='{}'".format(*o.split("=", 1)) for o in ix["reloptions"]) + ")"
    return (f"CREATE {unique}INDEX {_qi(ix['name'])} ON {_qi(info.workspace)}.{_qi(info.name)} "
            f"USING {ix['method']} ({cols}){with_}")


def _format_type(t: ColumnType) -> str:
    return t.pg_name if not t.domain or t.is_vector else t.domain.lower()


#: Types whose typmod is a length: the name format_type gives and what the typmod adds to n.
_LENGTH_TYPMODS = {"varchar": ("character varying", 4), "bpchar": ("character", 4),
                   "bit": ("bit", 0), "varbit": ("bit varying", 0)}


def _typmod(t: ColumnType) -> int:
    if t.dim is not None:
        return t.dim  # pgvector's typmod is the dimension
    if t.base == "numeric" and t.typmods:
        p = t.typmods[0]
        s = t.typmods[1] if len(t.typmods) > 1 else 0
        return ((p << 16) | s) + 4
    if t.base in _LENGTH_TYPMODS and t.typmods:
        return t.typmods[0] + _LENGTH_TYPMODS[t.base][1]  # bit(n): n; varchar(n): n + 4
    return -1


def _default_expr(info: Any, col: Any, path: list[str] | None = None) -> str | None:
    if getattr(col, "identity", ""):
        return None  # an identity column has no default, as in PostgreSQL (attidentity)
    if col.serial:
        # qualified unless the search path finds it, as PostgreSQL prints it (pg_dump's
        # search path is empty: it gets the schema)
        seq = _seq_name(info, col) if path is None or info.workspace in path else \
            f"{_qi(info.workspace)}.{_seq_name(info, col)}"
        return f"nextval('{seq}'::regclass)"
    return str(col.default_sql) if col.default_sql else None


def _table(columns: dict[str, tuple[pa.DataType, list[Any]]]) -> pa.Table:
    return pa.table({k: pa.array(v, type=t) for k, (t, v) in columns.items()})


_I64 = pa.int64()
_I32 = pa.int32()
_I16 = pa.int16()
_S = pa.string()
_B = pa.bool_()
_F32 = pa.float32()


def _rows(schema: list[tuple[str, pa.DataType]], rows: list[tuple[Any, ...]]) -> pa.Table:
    cols: list[Any] = list(zip(*rows, strict=True)) if rows else [[] for _ in schema]
    return pa.table({name: pa.array(list(vals), type=t) for (name, t), vals in zip(schema, cols,
                                                                                  strict=True)})


# ---------------------------------------------------------------------------------------------
# pg_catalog relations


def _nspacl(db: Any, workspace: str) -> list[str] | None:
    """``nspacl``: NULL (the owner's defaults) until a USAGE is granted on the schema, then
    the owner's item and one per grantee, as PostgreSQL writes them (so that pg_dump writes
    the GRANTs back). ``public`` always has one: its USAGE for PUBLIC, PostgreSQL 15's
    default, is what pg_dump expects there (it writes a REVOKE when it is missing)."""
    from ..pgwire import acl

    grants = acl.schema_privileges_of(db, workspace)
    items = [f"{'' if grantee == 'public' else _acl_name(grantee)}=U/postgres"
             for grantee, privs in sorted(grants.items()) if "USAGE" in privs]
    return [_OWNER_NSPACL, *items] if items or workspace == "public" else None


def _pg_namespace(db: Any, session: Any) -> pa.Table:
    rows: list[tuple[int, str, int, list[str] | None]] = [
            (PG_CATALOG_OID, "pg_catalog", SUPERUSER_OID, None),
            (INFORMATION_SCHEMA_OID, "information_schema", SUPERUSER_OID, None),
            (PG_TOAST_OID, "pg_toast", SUPERUSER_OID, None)]
    for ws in _workspaces(db, session):
        rows.append((namespace_oid(ws), ws, SUPERUSER_OID, _nspacl(db, ws)))
    return _rows([("oid", _I64), ("nspname", _S), ("nspowner", _I64), ("nspacl", pa.list_(_S))],
                 rows)


def _type_rows() -> list[dict[str, Any]]:
    rows = []
    for st in SCALARS.values():
        rows.append({"oid": st.oid, "typname": st.name, "typlen": st.size,
                     "typcategory": st.category, "typelem": 0, "typarray": st.array_oid,
                     "typtype": "b" if st.name != "unknown" else "p", "typdelim": ","})
        if st.array_oid:
            rows.append({"oid": st.array_oid, "typname": "_" + st.name, "typlen": -1,
                         "typcategory": "A", "typelem": st.oid, "typarray": 0, "typtype": "b",
                         "typdelim": ","})
    for oid, name, size, cat, arr in _EXTRA_TYPES:
        rows.append({"oid": oid, "typname": name, "typlen": size, "typcategory": cat,
                     "typelem": 0, "typarray": arr, "typtype": "p" if cat == "P" else "b",
                     "typdelim": ","})
        if arr:
            rows.append({"oid": arr, "typname": "_" + name, "typlen": -1, "typcategory": "A",
                         "typelem": oid, "typarray": 0, "typtype": "b", "typdelim": ","})
    return rows


def _pg_type(db: Any, session: Any) -> pa.Table:
    rows = _type_rows()
    collatable = {"text", "varchar", "bpchar", "name", "char"}
    # pgvector's types are in public once CREATE EXTENSION vector ran (as pg_dump expects of
    # an extension's members); before, they are built-in types.
    vector_ns = PUBLIC_OID if _has_pgvector(db) else PG_CATALOG_OID
    out: dict[str, list[Any]] = {k: [] for k in (
        "oid", "typname", "typnamespace", "typowner", "typlen", "typbyval", "typtype",
        "typcategory", "typispreferred", "typisdefined", "typdelim", "typrelid", "typsubscript",
        "typelem", "typarray", "typinput", "typoutput", "typreceive", "typsend", "typmodin",
        "typmodout", "typanalyze", "typalign", "typstorage", "typnotnull", "typbasetype",
        "typtypmod", "typndims", "typcollation", "typdefaultbin", "typdefault", "typacl")}
    for r in rows:
        name = r["typname"]
        base = name[1:] if r["typelem"] else name
        out["oid"].append(r["oid"])
        out["typname"].append(name)
        # pgvector's types live where CREATE EXTENSION put them (public), as asyncpg's
        # set_type_codec('vector', schema='public') looks them up.
        out["typnamespace"].append(vector_ns if r["oid"] in _PGVECTOR_OIDS
                                   else PG_CATALOG_OID)
        out["typowner"].append(SUPERUSER_OID)
        out["typlen"].append(r["typlen"])
        out["typbyval"].append(r["typlen"] in (1, 2, 4, 8))
        out["typtype"].append(r["typtype"])
        out["typcategory"].append(r["typcategory"])
        out["typispreferred"].append(name in ("text", "float8", "bool", "timestamptz", "oid"))
        out["typisdefined"].append(True)
        out["typdelim"].append(r["typdelim"])
        out["typrelid"].append(0)
        out["typsubscript"].append("array_subscript_handler" if r["typelem"] else "-")
        out["typelem"].append(r["typelem"])
        out["typarray"].append(r["typarray"])
        io = "array" if r["typelem"] else base
        out["typinput"].append(f"{io}_in")
        out["typoutput"].append(f"{io}_out")
        out["typreceive"].append(f"{io}_recv")
        out["typsend"].append(f"{io}_send")
        out["typmodin"].append("-")
        out["typmodout"].append("-")
        out["typanalyze"].append("-")
        out["typalign"].append("d" if r["typlen"] == 8 else "i")
        out["typstorage"].append("x" if r["typlen"] == -1 else "p")
        out["typnotnull"].append(False)
        out["typbasetype"].append(0)
        out["typtypmod"].append(-1)
        out["typndims"].append(0)
        out["typcollation"].append(DEFAULT_COLLATION if base in collatable else 0)
        out["typdefaultbin"].append(None)
        out["typdefault"].append(None)
        out["typacl"].append(None)
    types = {"oid": _I64, "typnamespace": _I64, "typowner": _I64, "typlen": _I16,
             "typbyval": _B, "typispreferred": _B, "typisdefined": _B, "typrelid": _I64,
             "typelem": _I64, "typarray": _I64, "typnotnull": _B, "typbasetype": _I64,
             "typtypmod": _I32, "typndims": _I32, "typcollation": _I64, "typacl": pa.list_(_S)}
    table = pa.table({k: pa.array(v, type=types.get(k, _S)) for k, v in out.items()})
    # typtype is PostgreSQL's one-byte "char" (asyncpg's set_type_codec compares it with
    # b'b'): a dictionary column, which the statement's view casts to pg_char (engine/scan).
    i = table.schema.get_field_index("typtype")
    return table.set_column(i, "typtype", table.column(i).dictionary_encode())


_CLASS_SCHEMA = [
    ("oid", _I64), ("relname", _S), ("relnamespace", _I64), ("reltype", _I64),
    ("reloftype", _I64), ("relowner", _I64), ("relam", _I64), ("relfilenode", _I64),
    ("reltablespace", _I64), ("relpages", _I32), ("reltuples", _F32), ("relallvisible", _I32),
    ("reltoastrelid", _I64), ("relhasindex", _B), ("relisshared", _B), ("relpersistence", _S),
    ("relkind", _S), ("relnatts", _I16), ("relchecks", _I16), ("relhasrules", _B),
    ("relhastriggers", _B), ("relhassubclass", _B), ("relrowsecurity", _B),
    ("relforcerowsecurity", _B), ("relispopulated", _B), ("relreplident", _S),
    ("relispartition", _B), ("relrewrite", _I64), ("relfrozenxid", _I64), ("relminmxid", _I64),
    ("relacl", pa.list_(_S)), ("reloptions", pa.list_(_S)), ("relpartbound", _S),
]


def _class_row(oid: int, name: str, ns: int, kind: str, natts: int, am: int,
               hasindex: bool = False) -> tuple[Any, ...]:
    return (oid, name, ns, 0, 0, SUPERUSER_OID, am, oid, 0, 0, -1.0, 0, 0, hasindex, False,
            "p", kind, natts, 0, False, False, False, False, False, True, "d", False, 0, 0, 0,
            None, None, None)


#: PostgreSQL's letters of the table privileges in an aclitem (``relacl``)
_ACL_LETTERS = {"SELECT": "r", "INSERT": "a", "UPDATE": "w", "DELETE": "d", "TRUNCATE": "D",
                "REFERENCES": "x", "TRIGGER": "t"}
_OWNER_ACL = "postgres=arwdDxt/postgres"
_OWNER_NSPACL = "postgres=UC/postgres"  # a schema's owner: USAGE and CREATE


def _grants_on(db: Any, workspace: str, name: str, oid: int) -> dict[str, list[str]]:
    """GRANTs on a table or view (pgwire/acl.py keeps them): grantee -> privileges."""
    try:
        from ..pgwire import acl

        grants = acl.privileges_of(db, workspace, name, oid)
    except Exception:  # noqa: BLE001 - no grant store (embedded use without roles)
        return {}
    return {g: p for g, p in grants.items() if p}


def _relacl(db: Any, workspace: str, name: str, oid: int) -> list[str] | None:
    """``relacl``: NULL (the owner's defaults) until something is granted, then the owner's
    item and one per grantee (``=r/postgres`` for PUBLIC), as PostgreSQL writes them."""
    grants = _grants_on(db, workspace, name, oid)
    if not grants:
        return None
    items = [_OWNER_ACL]
    for grantee, privs in sorted(grants.items()):
        letters = "".join(_ACL_LETTERS[p] for p in _ACL_LETTERS if p in privs)
        if letters:
            items.append(f"{'' if grantee == 'public' else _acl_name(grantee)}={letters}"
                         "/postgres")
    return items


def _acl_name(role: str) -> str:
    return role if re.fullmatch(r"[a-z_][a-z0-9_$]*", role) else \
        '"' + role.replace('"', '""') + '"'


def _with_acl(row: tuple[Any, ...], acl: list[str] | None,
              options: list[str] | None = None) -> tuple[Any, ...]:
    return row[:-3] + (acl, options) + row[-1:]


def _pg_class(db: Any, session: Any) -> pa.Table:
    rows = []
    tables = _tables(db, session)
    # PostgreSQL enforces a foreign key with triggers on both tables; pg_dump looks for
    # foreign keys only on tables that say they have triggers.
    with_fk = set()
    for info, _, parent in _foreign_keys(tables):
        with_fk |= {_table_oid(info), _table_oid(parent)}
    triggers = [c[0] for c in _CLASS_SCHEMA].index("relhastriggers")
    checks_at = [c[0] for c in _CLASS_SCHEMA].index("relchecks")
    for info in tables:
        ns = namespace_oid(info.workspace)
        ixs = _indexes(info)
        row = _class_row(_table_oid(info), info.name, ns, "r", len(info.columns), HEAP_AM,
                         bool(ixs))
        if _table_oid(info) in with_fk:
            row = row[:triggers] + (True,) + row[triggers + 1:]
        checks = sum(1 for c in getattr(info, "constraints", None) or []
                     if c.get("type") == "check")
        if checks:  # relchecks: pg_dump and psql read CHECK constraints when it is not 0
            row = row[:checks_at] + (checks,) + row[checks_at + 1:]
        rows.append(_with_acl(row, _relacl(db, info.workspace, info.name, info.oid)))
        for ix in ixs:
            rows.append(_with_acl(_class_row(ix["oid"], ix["name"], ns, "i",
                                             len(ix["columns"]), ix["am"]),
                                  None, ix.get("reloptions")))
        for col in info.columns:
            if col.serial:
                rows.append(_class_row(stable_oid("sequence", info.workspace, info.name,
                                                  col.name),
                                       _seq_name(info, col), ns, "S", 3, 0))
    for d in _standalone(db, session):
        rows.append(_class_row(_standalone_oid(d), d.name, namespace_oid(d.workspace), "S", 3,
                               0))
    for v in _views(db, session):
        rows.append(_with_acl(_class_row(v.oid, v.name, namespace_oid(v.workspace), "v",
                                         len(v.columns), 0),
                              _relacl(db, v.workspace, v.name, v.oid), v.reloptions))
    return _rows(_CLASS_SCHEMA, rows)


_ATTR_SCHEMA = [
    ("attrelid", _I64), ("attname", _S), ("atttypid", _I64), ("attstattarget", _I16),
    ("attlen", _I16), ("attnum", _I16), ("attndims", _I16), ("attcacheoff", _I32),
    ("atttypmod", _I32), ("attbyval", _B), ("attalign", _S), ("attstorage", _S),
    ("attcompression", _S), ("attnotnull", _B), ("atthasdef", _B), ("atthasmissing", _B),
    ("attidentity", _S), ("attgenerated", _S), ("attisdropped", _B), ("attislocal", _B),
    ("attinhcount", _I16), ("attcollation", _I64), ("attacl", pa.list_(_S)),
    ("attoptions", pa.list_(_S)), ("attfdwoptions", pa.list_(_S)),
]


def _attlen(t: ColumnType) -> int:
    """A column's ``attlen``, its type's ``typlen``: pg_dump writes ``ALTER COLUMN ... SET
    STORAGE`` where ``attstorage`` (from it) differs from the type's ``typstorage``."""
    return -1 if t.ndim or t.is_vector else t.scalar.size  # sparsevec: a struct, ndim 0


def _align(size: int) -> str:
    """``attalign`` as pg_type's ``typalign`` has it."""
    return "d" if size == 8 else "i"


def _pg_attribute(db: Any, session: Any) -> pa.Table:
    rows = []
    collatable = {"text", "varchar", "bpchar", "name"}
    from .colprivs import attacl

    for info in _tables(db, session):
        toid = _table_oid(info)
        acls = attacl(db, info.workspace, info.name, int(info.oid or 0))
        for i, col in enumerate(info.columns):
            t: ColumnType = col.type
            size = _attlen(t)
            not_null = bool(col.not_null or col.name in info.primary_key)
            rows.append((toid, col.name, t.oid, -1, size, i + 1, 0 if t.is_vector else t.ndim,
                         -1, _typmod(t),
                         size in (1, 2, 4, 8), _align(size), "x" if size == -1 else "p", "",
                         not_null,
                         _default_expr(info, col) is not None, False,
                         getattr(col, "identity", ""), "", False, True, 0,
                         DEFAULT_COLLATION if t.base in collatable and not t.ndim else 0,
                         acls.get(col.name), None, None))
        for ix in _indexes(info):
            for j, cname in enumerate(ix["columns"]):
                col = info.column(cname) if hasattr(info, "column") else None
                if col is None:
                    continue
                t = col.type
                rows.append((ix["oid"], cname, t.oid, -1, -1, j + 1, t.ndim, -1, -1, False, "i",
                             "x", "", False, False, False, "", "", False, True, 0, 0, None, None,
                             None))
    for v in _views(db, session):
        vacls = attacl(db, v.workspace, v.name, v.oid)
        for i, (cname, t) in enumerate(v.columns):
            size = _attlen(t)
            rows.append((v.oid, cname, t.oid, -1, size, i + 1, 0 if t.is_vector else t.ndim,
                         -1, _typmod(t), size in (1, 2, 4, 8), _align(size),
                         "x" if size == -1 else "p", "", False, False, False, "", "", False,
                         True, 0, DEFAULT_COLLATION if t.base in collatable and not t.ndim
                         else 0, vacls.get(cname), None, None))
    return _rows(_ATTR_SCHEMA, rows)


def _pg_attrdef(db: Any, session: Any) -> pa.Table:
    rows = []
    for info in _tables(db, session):
        for i, col in enumerate(info.columns):
            expr = _default_expr(info, col, _search_path(session))
            if expr is not None:
                rows.append((stable_oid("attrdef", info.workspace, info.name, col.name),
                             _table_oid(info), i + 1, expr))
    return _rows([("oid", _I64), ("adrelid", _I64), ("adnum", _I16), ("adbin", _S)], rows)


def _pg_index(db: Any, session: Any) -> pa.Table:
    rows = []
    for info in _tables(db, session):
        toid = _table_oid(info)
        for ix in _indexes(info):
            keys = [_attnum(info, c) for c in ix["columns"]]
            n = len(keys)
            # int2vector / oidvector columns: arrays (clients unnest and subscript them),
            # sent as "0 0" text when selected whole (_vector_columns_as_text)
            rows.append((ix["oid"], toid, n, n, ix["unique"], False, ix["primary"], False, True,
                         False, True, False, True, True, False, keys, [0] * n, [0] * n,
                         [0] * n, None, None))
    return _rows([
        ("indexrelid", _I64), ("indrelid", _I64), ("indnatts", _I16), ("indnkeyatts", _I16),
        ("indisunique", _B), ("indnullsnotdistinct", _B), ("indisprimary", _B),
        ("indisexclusion", _B), ("indimmediate", _B), ("indisclustered", _B),
        ("indisvalid", _B), ("indcheckxmin", _B), ("indisready", _B), ("indislive", _B),
        ("indisreplident", _B), ("indkey", pa.list_(_I16)), ("indcollation", pa.list_(_I64)),
        ("indclass", pa.list_(_I64)), ("indoption", pa.list_(_I16)), ("indexprs", _S),
        ("indpred", _S)], rows)


def _constraint_oid(info: Any) -> int:
    return stable_oid("constraint", info.workspace, info.name, _pk_name(info))


def _foreign_keys(tables: list[Any]) -> list[tuple[Any, dict[str, Any], Any]]:
    """(table, foreign key spec, referenced table) of every foreign key among ``tables``."""
    by_name = {(t.workspace, t.name): t for t in tables}
    out = []
    for info in tables:
        for fk in getattr(info, "constraints", None) or []:
            if fk.get("type") == "foreign":
                parent = by_name.get((fk["ref_workspace"], fk["ref_table"]))
                if parent is not None:
                    out.append((info, fk, parent))
    return out


def _fk_oid(info: Any, fk: dict[str, Any]) -> int:
    return stable_oid("constraint", info.workspace, info.name, fk["name"])


def _named_constraint_oid(info: Any, name: str) -> int:
    return stable_oid("constraint", info.workspace, info.name, name)


def _constraint_def(con: dict[str, Any]) -> str:
    """pg_get_constraintdef of a UNIQUE or CHECK constraint."""
    if con["type"] == "unique":
        return "UNIQUE (" + ", ".join(_qi(c) for c in con["columns"]) + ")"
    return f"CHECK (({con['expr']}))"


def _fk_def(fk: dict[str, Any], parent: Any, path: list[str] | None = None) -> str:
    actions = {"r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
    # qualified unless the search path finds it (pg_dump restores with another path)
    name = _qi(parent.name) if path is None or parent.workspace in path else \
        f"{_qi(parent.workspace)}.{_qi(parent.name)}"
    out = (f"FOREIGN KEY ({', '.join(_qi(c) for c in fk['columns'])}) REFERENCES "
           f"{name}({', '.join(_qi(c) for c in fk['ref_columns'])})")
    if fk.get("on_update") in actions:
        out += f" ON UPDATE {actions[fk['on_update']]}"
    if fk.get("on_delete") in actions:
        out += f" ON DELETE {actions[fk['on_delete']]}"
    return out


def _pg_constraint(db: Any, session: Any) -> pa.Table:
    rows: list[tuple[Any, ...]] = []
    tables = _tables(db, session)
    for info, fk, parent in _foreign_keys(tables):
        # conindid: the referenced table's unique index the key uses (pgjdbc joins on it)
        refix = next((ix["oid"] for ix in _indexes(parent) if ix["unique"]
                      and list(ix["columns"]) == list(fk["ref_columns"])), 0)
        rows.append((_fk_oid(info, fk), fk["name"], namespace_oid(info.workspace), "f",
                     False, False, True, _table_oid(info), 0, refix, 0, _table_oid(parent),
                     fk.get("on_update", "a"), fk.get("on_delete", "a"), "s", True, 0, True,
                     [_attnum(info, c) for c in fk["columns"]],
                     [_attnum(parent, c) for c in fk["ref_columns"]], None))
    for info in tables:
        for con in getattr(info, "constraints", None) or []:
            if con.get("type") not in ("unique", "check"):
                continue
            unique = con["type"] == "unique"
            rows.append((_named_constraint_oid(info, con["name"]), con["name"],
                         namespace_oid(info.workspace), "u" if unique else "c", False, False,
                         True, _table_oid(info), 0,
                         stable_oid("index", info.workspace, info.name, con["name"])
                         if unique else 0, 0, 0, " ", " ", " ", True, 0, False,
                         [_attnum(info, c) for c in con["columns"]] or None, None, None))
        if not info.primary_key:
            continue
        keys = [_attnum(info, c) for c in info.primary_key]
        ixoid = stable_oid("index", info.workspace, info.name, _pk_name(info))
        rows.append((_constraint_oid(info), _pk_name(info), namespace_oid(info.workspace), "p",
                     False, False, True, _table_oid(info), 0, ixoid, 0, 0, " ", " ", " ", True,
                     0, True, keys, None, None))
    return _rows([
        ("oid", _I64), ("conname", _S), ("connamespace", _I64), ("contype", _S),
        ("condeferrable", _B), ("condeferred", _B), ("convalidated", _B), ("conrelid", _I64),
        ("contypid", _I64), ("conindid", _I64), ("conparentid", _I64), ("confrelid", _I64),
        ("confupdtype", _S), ("confdeltype", _S), ("confmatchtype", _S), ("conislocal", _B),
        ("coninhcount", _I16), ("connoinherit", _B), ("conkey", pa.list_(_I16)),
        ("confkey", pa.list_(_I16)), ("conbin", _S)], rows)


def _has_pgvector(db: Any) -> bool:
    try:
        return db.catalog.get_object("extension", "vector") is not None
    except Exception:  # noqa: BLE001 - a catalog without objects (tests' stand-ins)
        return False


def _pg_depend(db: Any, session: Any) -> pa.Table:
    """What pg_dump reads to leave out what CREATE EXTENSION makes (pgvector's types,
    deptype 'e') and to tie a serial column's sequence to its column (deptype 'a')."""
    rows: list[tuple[Any, ...]] = []
    if _has_pgvector(db):
        ext = stable_oid("extension", "vector")
        for oid in sorted(_PGVECTOR_OIDS):
            rows.append((1247, oid, 0, 3079, ext, 0, "e"))
    # The functions in public are pgvector's or pg_deeplake's: a whole-database dump
    # leaves them to their extensions rather than writing CREATE FUNCTION for each.
    for p in _procs(db):
        if p.namespace != PG_CATALOG_OID:
            ext_oid = stable_oid("extension", "vector") if p.pgvector else _PG_DEEPLAKE_EXT
            rows.append((1255, p.oid, 0, 3079, ext_oid, 0, "e"))
    for info in _tables(db, session):
        for col in info.columns:
            if col.serial:
                seq = stable_oid("sequence", info.workspace, info.name, col.name)
                identity = bool(getattr(col, "identity", ""))
                # an identity column's sequence is internal to it ('i': pg_dump writes
                # ALTER COLUMN ... ADD GENERATED ... AS IDENTITY), a serial's is owned ('a')
                rows.append((1259, seq, 0, 1259, _table_oid(info), _attnum(info, col.name),
                             "i" if identity else "a"))
                if not identity:
                    # the column's default uses the sequence: pg_dump sets it after
                    # creating it
                    rows.append((2604, stable_oid("attrdef", info.workspace, info.name,
                                                  col.name), 0, 1259, seq, 0, "n"))
    seqs = _standalone(db, session)
    if seqs:
        from ..engine import sequences

        by_name = {(d.workspace, d.name): d for d in seqs}
        tables = {(i.workspace, i.name): i for i in _tables(db, session)}
        for d in seqs:
            owner = tables.get((d.workspace, d.owned_by[0])) if d.owned_by else None
            if owner is not None and d.owned_by:  # OWNED BY t.c
                rows.append((1259, _standalone_oid(d), 0, 1259, _table_oid(owner),
                             _attnum(owner, d.owned_by[1]), "a"))
        for info in tables.values():
            for col in info.columns:
                named = sequences.default_names(col)
                if named is None:
                    continue
                parts = sequences.split_name(named)
                d = by_name.get((parts[-2] if len(parts) > 1 else "public", parts[-1]))
                if d is not None:  # DEFAULT nextval('s'): pg_dump creates s first
                    rows.append((2604, stable_oid("attrdef", info.workspace, info.name,
                                                  col.name), 0, 1259, _standalone_oid(d), 0,
                                 "n"))
    views = _views(db, session)
    if views:  # a view after what it reads (pg_dump orders its output by these)
        oids = {(i.workspace, i.name): _table_oid(i) for i in _tables(db, session)}
        oids.update({(v.workspace, v.name): v.oid for v in views})
        for v in views:
            for dep in v.depends:
                if dep in oids:
                    rows.append((1259, v.oid, 0, 1259, oids[dep], 0, "n"))
    return _rows([("classid", _I64), ("objid", _I64), ("objsubid", _I32),
                  ("refclassid", _I64), ("refobjid", _I64), ("refobjsubid", _I32),
                  ("deptype", _S)], rows)


def _pg_sequence(db: Any, session: Any) -> pa.Table:
    rows = []
    for info in _tables(db, session):
        for col in info.columns:
            if col.serial:
                big = col.type.base == "int8"
                rows.append((stable_oid("sequence", info.workspace, info.name, col.name),
                             col.type.oid, 1, 1, 2**63 - 1 if big else 2**31 - 1, 1, 1, False))
    for d in _standalone(db, session):
        rows.append((_standalone_oid(d), _SEQ_TYPE_OIDS[d.type], d.start, d.increment, d.max,
                     d.min, d.cache, d.cycle))
    return _rows([("seqrelid", _I64), ("seqtypid", _I64), ("seqstart", _I64),
                  ("seqincrement", _I64), ("seqmax", _I64), ("seqmin", _I64),
                  ("seqcache", _I64), ("seqcycle", _B)], rows)


def _pg_sequences(db: Any, session: Any) -> pa.Table:
    """The pg_sequences view: standalone sequences with their last value (NULL before
    the first nextval, as in PostgreSQL)."""
    from ..engine import sequences

    rows = []
    for d in _standalone(db, session):
        last, called = sequences.shown_state(db, d)
        rows.append((d.workspace, d.name, "postgres", _SEQ_TYPE_OIDS[d.type], d.start, d.min,
                     d.max, d.increment, d.cycle, d.cache, last if called else None))
    return _rows([("schemaname", _S), ("sequencename", _S), ("sequenceowner", _S),
                  ("data_type", _I64), ("start_value", _I64), ("min_value", _I64),
                  ("max_value", _I64), ("increment_by", _I64), ("cycle", _B),
                  ("cache_size", _I64), ("last_value", _I64)], rows)


def _is_sequences(db: Any, session: Any) -> pa.Table:
    from ..engine import sequences

    rows = []
    for d in _standalone(db, session):
        bits = {"int2": 16, "int4": 32, "int8": 64}[d.type]
        rows.append(("postgres", d.workspace, d.name, sequences.TYPES[d.type][2], bits, 2, 0,
                     str(d.start), str(d.min), str(d.max), str(d.increment),
                     "YES" if d.cycle else "NO"))
    return _rows([("sequence_catalog", _S), ("sequence_schema", _S), ("sequence_name", _S),
                  ("data_type", _S), ("numeric_precision", _I32),
                  ("numeric_precision_radix", _I32), ("numeric_scale", _I32),
                  ("start_value", _S), ("minimum_value", _S), ("maximum_value", _S),
                  ("increment", _S), ("cycle_option", _S)], rows)


def _pg_database(db: Any, session: Any) -> pa.Table:
    return _rows([
        ("oid", _I64), ("datname", _S), ("datdba", _I64), ("encoding", _I32),
        ("datlocprovider", _S), ("datistemplate", _B), ("datallowconn", _B),
        ("datconnlimit", _I32), ("datfrozenxid", _I64), ("datminmxid", _I64),
        ("dattablespace", _I64), ("datcollate", _S), ("datctype", _S), ("daticulocale", _S),
        ("daticurules", _S), ("datcollversion", _S), ("datacl", pa.list_(_S))],
        [(DATABASE_OID, "postgres", SUPERUSER_OID, 6, "c", False, True, -1, 0, 0, 1663,
          "C.UTF-8", "C.UTF-8", None, None, None, None)])


def _role_rows(db: Any, session: Any = None) -> list[tuple[Any, ...]]:
    """pg_roles rows. A session of a non-superuser sees only its own role (and so neither
    the other roles' names nor their SUPERUSER/CREATEROLE flags)."""
    try:
        from ..pgwire import roles as roles_mod

        roles = roles_mod.list_roles(db)
        oid_of: Callable[[str], int] = roles_mod.role_oid
        user = getattr(session, "user", None) if session is not None else None
        if user is not None and not roles_mod.is_superuser(db, user):
            own = roles.get(user) or {"superuser": False, "login": True}
            roles = {user: own}
    except Exception:  # noqa: BLE001 - no role store yet: report the superuser only
        roles, oid_of = {}, (lambda n: SUPERUSER_OID)
    if not roles:
        roles["postgres"] = {"superuser": True, "login": True}
    rows = []
    for name, r in sorted(roles.items()):
        sup = bool(r.get("superuser"))
        cr = sup or bool(r.get("createrole"))
        rows.append((int(r.get("oid") or oid_of(name)), name, sup, True, cr, sup,
                     bool(r.get("login", True)), False, -1, "********", None, sup, None))
    return rows


_ROLE_SCHEMA = [("oid", _I64), ("rolname", _S), ("rolsuper", _B), ("rolinherit", _B),
                ("rolcreaterole", _B), ("rolcreatedb", _B), ("rolcanlogin", _B),
                ("rolreplication", _B), ("rolconnlimit", _I32), ("rolpassword", _S),
                ("rolvaliduntil", pa.timestamp("us", tz="UTC")), ("rolbypassrls", _B),
                ("rolconfig", pa.list_(_S))]


def _pg_roles(db: Any, session: Any) -> pa.Table:
    return _rows(_ROLE_SCHEMA, _role_rows(db, session))


def _pg_authid(db: Any, session: Any) -> pa.Table:
    """pg_authid holds password hashes: superusers only, as in PostgreSQL."""
    from ..pgwire import roles as roles_mod

    if not roles_mod.is_superuser(db, getattr(session, "user", None)):
        from ..errors import InsufficientPrivilege

        raise InsufficientPrivilege("permission denied for table pg_authid")
    return _rows(_ROLE_SCHEMA, _role_rows(db, session))


def _pg_user(db: Any, session: Any) -> pa.Table:
    rows = [(r[1], r[0], r[5], r[2], r[7], r[11], "********", None, None)
            for r in _role_rows(db, session) if r[6]]
    return _rows([("usename", _S), ("usesysid", _I64), ("usecreatedb", _B), ("usesuper", _B),
                  ("userepl", _B), ("usebypassrls", _B), ("passwd", _S),
                  ("valuntil", pa.timestamp("us", tz="UTC")), ("useconfig", pa.list_(_S))],
                 rows)


def _pg_settings(db: Any, session: Any) -> pa.Table:
    settings = dict(getattr(session, "settings", {}) or {})
    settings.setdefault("default_table_access_method", "heap")
    settings.setdefault("max_identifier_length", "63")
    settings.setdefault("max_index_keys", "32")  # pgjdbc getImportedKeys reads it
    rows = [(k, str(v), None, "Client Connection Defaults", "", None, "user", "string",
             "default", None, None, None, str(v), str(v), None, None, False)
            for k, v in sorted(settings.items())]
    return _rows([("name", _S), ("setting", _S), ("unit", _S), ("category", _S),
                  ("short_desc", _S), ("extra_desc", _S), ("context", _S), ("vartype", _S),
                  ("source", _S), ("min_val", _S), ("max_val", _S), ("enumvals", pa.list_(_S)),
                  ("boot_val", _S), ("reset_val", _S), ("sourcefile", _S), ("sourceline", _I32),
                  ("pending_restart", _B)], rows)


_PROCS = ["version", "current_schema", "current_database", "format_type", "pg_get_expr",
          "pg_table_is_visible", "pg_get_userbyid", "array_to_string", "now", "count", "sum",
          "avg", "min", "max", "lower", "upper", "length", "coalesce", "deeplake_hybrid_record"]


def _procs(db: Any) -> list[Any]:
    from . import pgprocs

    return pgprocs.visible(_has_pgvector(db))


def _pg_proc(db: Any, session: Any) -> pa.Table:
    rows: list[tuple[Any, ...]] = [
        (p.oid, p.name, p.namespace, SUPERUSER_OID, p.language, p.kind, False, True,
         p.result, list(p.args), len(p.args), p.source or p.name, p.volatile, "s", False)
        for p in _procs(db)]
    return _rows([("oid", _I64), ("proname", _S), ("pronamespace", _I64), ("proowner", _I64),
                  ("prolang", _I64), ("prokind", _S), ("proretset", _B), ("proisstrict", _B),
                  ("prorettype", _I64), ("proargtypes", pa.list_(_I64)), ("pronargs", _I16),
                  ("prosrc", _S), ("provolatile", _S), ("proparallel", _S),
                  ("prosecdef", _B)], rows)


def _pg_am(db: Any, session: Any) -> pa.Table:
    return _rows([("oid", _I64), ("amname", _S), ("amhandler", _S), ("amtype", _S)],
                 [(HEAP_AM, "heap", "heap_tableam_handler", "t"),
                  (BTREE_AM, "btree", "bthandler", "i"),
                  (405, "hash", "hashhandler", "i"),
                  (783, "gist", "gisthandler", "i"),
                  (2742, "gin", "ginhandler", "i"),
                  (4000, "spgist", "spghandler", "i"),
                  (3580, "brin", "brinhandler", "i"),
                  (DEEPLAKE_AM, "deeplake", "deeplake_tableam_handler", "t"),
                  (DEEPLAKE_INDEX_AM, "deeplake_index", "deeplake_index_handler", "i"),
                  (HNSW_AM, "hnsw", "hnswhandler", "i"),
                  (IVFFLAT_AM, "ivfflat", "ivfflathandler", "i")])


def _pg_collation(db: Any, session: Any) -> pa.Table:
    return _rows([("oid", _I64), ("collname", _S), ("collnamespace", _I64),
                  ("collowner", _I64), ("collprovider", _S), ("collisdeterministic", _B),
                  ("collencoding", _I32), ("collcollate", _S), ("collctype", _S)],
                 [(DEFAULT_COLLATION, "default", PG_CATALOG_OID, SUPERUSER_OID, "d", True, -1,
                   None, None),
                  (950, "C", PG_CATALOG_OID, SUPERUSER_OID, "c", True, -1, "C", "C")])


def _pg_tablespace(db: Any, session: Any) -> pa.Table:
    return _rows([("oid", _I64), ("spcname", _S), ("spcowner", _I64), ("spcacl", pa.list_(_S)),
                  ("spcoptions", pa.list_(_S))],
                 [(1663, "pg_default", SUPERUSER_OID, None, None),
                  (1664, "pg_global", SUPERUSER_OID, None, None)])


#: pg_deeplake, the extension tarndb stands in for (below 16384: pg_dump takes it as built in)
_PG_DEEPLAKE_EXT = 16002


def _pg_extension(db: Any, session: Any) -> pa.Table:
    return _rows([("oid", _I64), ("extname", _S), ("extowner", _I64), ("extnamespace", _I64),
                  ("extrelocatable", _B), ("extversion", _S)],
                 [(13500, "plpgsql", SUPERUSER_OID, PG_CATALOG_OID, False, "1.0"),
                  (_PG_DEEPLAKE_EXT, "pg_deeplake", SUPERUSER_OID, PUBLIC_OID, False, "1.0")]
                 + [(stable_oid("extension", name), name, SUPERUSER_OID, PUBLIC_OID, False,
                     spec.get("version", "1.0"))
                    for name, spec in sorted(db.catalog.list_objects("extension").items())])


def _pg_description(db: Any, session: Any) -> pa.Table:
    return _rows([("objoid", _I64), ("classoid", _I64), ("objsubid", _I32),
                  ("description", _S)], [])


def _empty(schema: list[tuple[str, pa.DataType]]) -> Callable[[Any, Any], pa.Table]:
    return lambda db, session: _rows(schema, [])


def _pg_tables(db: Any, session: Any) -> pa.Table:
    rows = [(info.workspace, info.name, "postgres", None, bool(_indexes(info)), False, False,
             False) for info in _tables(db, session)]
    return _rows([("schemaname", _S), ("tablename", _S), ("tableowner", _S),
                  ("tablespace", _S), ("hasindexes", _B), ("hasrules", _B),
                  ("hastriggers", _B), ("rowsecurity", _B)], rows)


def _pg_indexes(db: Any, session: Any) -> pa.Table:
    rows = [(info.workspace, info.name, ix["name"], None, _index_def(info, ix))
            for info in _tables(db, session) for ix in _indexes(info)]
    return _rows([("schemaname", _S), ("tablename", _S), ("indexname", _S), ("tablespace", _S),
                  ("indexdef", _S)], rows)


def _pg_stat_activity(db: Any, session: Any) -> pa.Table:
    user = getattr(session, "user", "postgres")
    return _rows([("datid", _I64), ("datname", _S), ("pid", _I32), ("usesysid", _I64),
                  ("usename", _S), ("application_name", _S), ("state", _S), ("query", _S)],
                 [(DATABASE_OID, "postgres", 0, SUPERUSER_OID, user,
                   str(getattr(session, "settings", {}).get("application_name", "")), "active",
                   "")])


_RELATIONS: dict[str, Callable[[Any, Any], pa.Table]] = {
    "pg_namespace": _pg_namespace,
    "pg_type": _pg_type,
    "pg_class": _pg_class,
    "pg_attribute": _pg_attribute,
    "pg_attrdef": _pg_attrdef,
    "pg_index": _pg_index,
    "pg_constraint": _pg_constraint,
    "pg_sequence": _pg_sequence,
    "pg_sequences": _pg_sequences,
    "pg_database": _pg_database,
    "pg_roles": _pg_roles,
    "pg_authid": _pg_authid,
    "pg_user": _pg_user,
    "pg_settings": _pg_settings,
    "pg_proc": _pg_proc,
    "pg_am": _pg_am,
    "pg_collation": _pg_collation,
    "pg_tablespace": _pg_tablespace,
    "pg_extension": _pg_extension,
    "pg_description": _pg_description,
    "pg_shdescription": _pg_description,
    "pg_tables": _pg_tables,
    "pg_indexes": _pg_indexes,
    "pg_stat_activity": _pg_stat_activity,
    "pg_inherits": _empty([("inhrelid", _I64), ("inhparent", _I64), ("inhseqno", _I32),
                           ("inhdetachpending", _B)]),
    "pg_auth_members": _empty([("oid", _I64), ("roleid", _I64), ("member", _I64),
                               ("grantor", _I64), ("admin_option", _B), ("inherit_option", _B),
                               ("set_option", _B)]),
    "pg_range": _empty([("rngtypid", _I64), ("rngsubtype", _I64), ("rngmultitypid", _I64),
                        ("rngcollation", _I64)]),
    "pg_enum": _empty([("oid", _I64), ("enumtypid", _I64), ("enumsortorder", _F32),
                       ("enumlabel", _S)]),
    "pg_trigger": _empty([("oid", _I64), ("tgrelid", _I64), ("tgname", _S), ("tgfoid", _I64),
                          ("tgtype", _I16), ("tgenabled", _S), ("tgisinternal", _B),
                          ("tgconstraint", _I64), ("tgparentid", _I64)]),
    "pg_rewrite": _empty([("oid", _I64), ("rulename", _S), ("ev_class", _I64),
                          ("ev_type", _S)]),
    "pg_policy": _empty([("oid", _I64), ("polname", _S), ("polrelid", _I64), ("polcmd", _S),
                         ("polpermissive", _B), ("polroles", pa.list_(_I64)), ("polqual", _S),
                         ("polwithcheck", _S)]),
    "pg_statistic_ext": _empty([("oid", _I64), ("stxrelid", _I64), ("stxname", _S),
                                ("stxnamespace", _I64), ("stxowner", _I64),
                                ("stxstattarget", _I32), ("stxkeys", pa.list_(_I16)),
                                ("stxkind", pa.list_(_S))]),
    "pg_publication": _empty([("oid", _I64), ("pubname", _S), ("pubowner", _I64),
                              ("puballtables", _B), ("pubinsert", _B), ("pubupdate", _B),
                              ("pubdelete", _B), ("pubtruncate", _B), ("pubviaroot", _B)]),
    "pg_publication_namespace": _empty([("oid", _I64), ("pnpubid", _I64), ("pnnspid", _I64)]),
    "pg_publication_rel": _empty([("oid", _I64), ("prpubid", _I64), ("prrelid", _I64),
                                  ("prqual", _S), ("prattrs", pa.list_(_I16))]),
    "pg_foreign_table": _empty([("ftrelid", _I64), ("ftserver", _I64),
                                ("ftoptions", pa.list_(_S))]),
    "pg_partitioned_table": _empty([("partrelid", _I64), ("partstrat", _S),
                                    ("partnatts", _I16)]),
    "pg_matviews": _empty([("schemaname", _S), ("matviewname", _S), ("matviewowner", _S),
                           ("definition", _S)]),
    "pg_views": lambda db, session: _rows(
        [("schemaname", _S), ("viewname", _S), ("viewowner", _S), ("definition", _S)],
        [(v.workspace, v.name, "postgres", v.definition) for v in _views(db, session)]),
    "pg_depend": _pg_depend,
    "pg_event_trigger": _empty([("oid", _I64), ("evtname", _S), ("evtevent", _S)]),
    "pg_cast": _empty([("oid", _I64), ("castsource", _I64), ("casttarget", _I64),
                       ("castfunc", _I64), ("castcontext", _S), ("castmethod", _S)]),
    "pg_operator": _empty([("oid", _I64), ("oprname", _S), ("oprnamespace", _I64),
                           ("oprleft", _I64), ("oprright", _I64), ("oprresult", _I64)]),
    "pg_language": lambda db, session: _rows(
        [("oid", _I64), ("lanname", _S), ("lanowner", _I64), ("lanispl", _B),
         ("lanpltrusted", _B)],
        [(12, "internal", SUPERUSER_OID, False, False), (13, "c", SUPERUSER_OID, False, False),
         (14, "sql", SUPERUSER_OID, False, True)]),
    "pg_opclass": _empty([("oid", _I64), ("opcname", _S), ("opcmethod", _I64),
                          ("opcnamespace", _I64), ("opcdefault", _B)]),
    "pg_aggregate": _empty([("aggfnoid", _I64), ("aggkind", _S)]),
    "pg_locks": _empty([("locktype", _S), ("relation", _I64), ("pid", _I32), ("mode", _S),
                        ("granted", _B)]),
}


# ---------------------------------------------------------------------------------------------
# information_schema


def _is_tables(db: Any, session: Any) -> pa.Table:
    rows = [("postgres", info.workspace, info.name, "BASE TABLE", None, None, None, None, None,
             "YES", "NO", None) for info in _tables(db, session)]
    rows += [("postgres", v.workspace, v.name, "VIEW", None, None, None, None, None, "NO", "NO",
              None) for v in _views(db, session)]
    return _rows([("table_catalog", _S), ("table_schema", _S), ("table_name", _S),
                  ("table_type", _S), ("self_referencing_column_name", _S),
                  ("reference_generation", _S), ("user_defined_type_catalog", _S),
                  ("user_defined_type_schema", _S), ("user_defined_type_name", _S),
                  ("is_insertable_into", _S), ("is_typed", _S), ("commit_action", _S)], rows)


_IS_DATA_TYPE = {
    "int8": "bigint", "int4": "integer", "int2": "smallint", "float4": "real",
    "float8": "double precision", "bool": "boolean", "varchar": "character varying",
    "bpchar": "character", "timestamp": "timestamp without time zone",
    "timestamptz": "timestamp with time zone", "time": "time without time zone",
}


def _is_columns(db: Any, session: Any) -> pa.Table:
    rows = []
    for info in _tables(db, session):
        for i, col in enumerate(info.columns):
            t: ColumnType = col.type
            data_type = "ARRAY" if t.ndim else _IS_DATA_TYPE.get(t.base, t.base)
            prec = scale = None
            if t.base == "numeric" and t.typmods:
                prec = t.typmods[0]
                scale = t.typmods[1] if len(t.typmods) > 1 else 0
            elif not t.ndim and t.base in ("int2", "int4", "int8"):
                prec, scale = {"int2": 16, "int4": 32, "int8": 64}[t.base], 0
            elif not t.ndim and t.base in ("float4", "float8"):
                prec = 24 if t.base == "float4" else 53
            not_null = bool(col.not_null or col.name in info.primary_key)
            rows.append(("postgres", info.workspace, info.name, col.name, i + 1,
                         _default_expr(info, col), "NO" if not_null else "YES", data_type,
                         t.typmods[0] if t.base in ("varchar", "bpchar") and t.typmods
                         and not t.ndim else None,
                         prec, 2 if prec is not None and t.base != "numeric" else
                         (10 if prec is not None else None), scale, "postgres", "pg_catalog",
                         t.typname, "YES" if getattr(col, "identity", "") else "NO", "NO",
                         "NEVER", "YES" if not info.read_only else "NO",
                         str(i + 1)))
    for v in _views(db, session):
        for i, (cname, t) in enumerate(v.columns):
            data_type = "ARRAY" if t.ndim else _IS_DATA_TYPE.get(t.base, t.base)
            rows.append(("postgres", v.workspace, v.name, cname, i + 1, None, "YES",
                         data_type, None, None, None, None, "postgres", "pg_catalog",
                         t.typname, "NO", "NO", "NEVER", "NO", str(i + 1)))
    return _rows([("table_catalog", _S), ("table_schema", _S), ("table_name", _S),
                  ("column_name", _S), ("ordinal_position", _I32), ("column_default", _S),
                  ("is_nullable", _S), ("data_type", _S), ("character_maximum_length", _I32),
                  ("numeric_precision", _I32), ("numeric_precision_radix", _I32),
                  ("numeric_scale", _I32), ("udt_catalog", _S), ("udt_schema", _S),
                  ("udt_name", _S), ("is_identity", _S), ("is_self_referencing", _S),
                  ("is_generated", _S), ("is_updatable", _S), ("dtd_identifier", _S)], rows)


def _is_schemata(db: Any, session: Any) -> pa.Table:
    names = ["pg_catalog", "information_schema", *_workspaces(db, session)]
    rows = [("postgres", n, "postgres", None, None, None, None) for n in names]
    return _rows([("catalog_name", _S), ("schema_name", _S), ("schema_owner", _S),
                  ("default_character_set_catalog", _S), ("default_character_set_schema", _S),
                  ("default_character_set_name", _S), ("sql_path", _S)], rows)


def _is_table_constraints(db: Any, session: Any) -> pa.Table:
    rows = [("postgres", info.workspace, _pk_name(info), "postgres", info.workspace, info.name,
             "PRIMARY KEY", "NO", "NO", "YES")
            for info in _tables(db, session) if info.primary_key]
    return _rows([("constraint_catalog", _S), ("constraint_schema", _S),
                  ("constraint_name", _S), ("table_catalog", _S), ("table_schema", _S),
                  ("table_name", _S), ("constraint_type", _S), ("is_deferrable", _S),
                  ("initially_deferred", _S), ("enforced", _S)], rows)


def _is_key_column_usage(db: Any, session: Any) -> pa.Table:
    rows = [("postgres", info.workspace, _pk_name(info), "postgres", info.workspace, info.name,
             c, i + 1, None)
            for info in _tables(db, session) for i, c in enumerate(info.primary_key)]
    return _rows([("constraint_catalog", _S), ("constraint_schema", _S),
                  ("constraint_name", _S), ("table_catalog", _S), ("table_schema", _S),
                  ("table_name", _S), ("column_name", _S), ("ordinal_position", _I32),
                  ("position_in_unique_constraint", _I32)], rows)


def _is_table_privileges(db: Any, session: Any) -> pa.Table:
    """The owner's privileges (shown to superusers) and the GRANTs: to a role's session only
    those to it or to PUBLIC, as PostgreSQL shows them."""
    role = getattr(session, "acl_role", None)
    relations = [(info.workspace, info.name, info.oid) for info in _tables(db, session)]
    relations += [(v.workspace, v.name, v.oid) for v in _views(db, session)]
    rows = []
    for ws, name, oid in relations:
        grants: dict[str, list[str]] = {} if role is not None else \
            {"postgres": list(_ACL_LETTERS)}
        for grantee, privs in _grants_on(db, ws, name, int(oid or 0)).items():
            if role is None or grantee in (role, "public"):
                grants.setdefault(grantee, [])
                grants[grantee] = sorted(set(grants[grantee]) | set(privs))
        for grantee, privs in sorted(grants.items()):
            for p in _ACL_LETTERS:
                if p in privs:
                    rows.append(("postgres", "PUBLIC" if grantee == "public" else grantee,
                                 "postgres", ws, name, p,
                                 "YES" if grantee == "postgres" else "NO",
                                 "YES" if p == "SELECT" else "NO"))
    return _rows([("grantor", _S), ("grantee", _S), ("table_catalog", _S),
                  ("table_schema", _S), ("table_name", _S), ("privilege_type", _S),
                  ("is_grantable", _S), ("with_hierarchy", _S)], rows)


def _is_column_privileges(db: Any, session: Any) -> pa.Table:
    from . import colprivs

    return colprivs.column_privileges(db, session)


_INFORMATION_SCHEMA: dict[str, Callable[[Any, Any], pa.Table]] = {
    "table_privileges": _is_table_privileges,
    "column_privileges": _is_column_privileges,
    "tables": _is_tables,
    "columns": _is_columns,
    "schemata": _is_schemata,
    "table_constraints": _is_table_constraints,
    "key_column_usage": _is_key_column_usage,
    "views": lambda db, session: _rows(
        [("table_catalog", _S), ("table_schema", _S), ("table_name", _S),
         ("view_definition", _S), ("check_option", _S), ("is_updatable", _S),
         ("is_insertable_into", _S), ("is_trigger_updatable", _S),
         ("is_trigger_deletable", _S), ("is_trigger_insertable_into", _S)],
        [("postgres", v.workspace, v.name, v.definition, "NONE", "NO", "NO", "NO", "NO", "NO")
         for v in _views(db, session)]),
    "routines": _empty([("routine_catalog", _S), ("routine_schema", _S),
                        ("routine_name", _S), ("routine_type", _S)]),
    "sequences": _is_sequences,
}


def relation(schema: str | None, name: str, db: Any, session: Any) -> pa.Table | None:
    """A system relation as an Arrow table, or None when ``schema.name`` is not one.

    ``schema`` None means an unqualified ``pg_*`` name (Postgres searches pg_catalog first).
    """
    s = (schema or "pg_catalog").lower()
    n = name.lower()
    if s == "pg_catalog":
        build = _RELATIONS.get(n)
    elif s == "information_schema":
        build = _INFORMATION_SCHEMA.get(n)
    else:
        return None
    full = pgcatalog15.COLUMNS.get(n) if s == "pg_catalog" else None
    if build is None and full is None:
        return None
    table = build(db, session) if build is not None else pa.table({})
    if full is not None:
        # PostgreSQL 15's other columns (and catalogs) as NULLs of their types: tools select
        # them, tarndb has nothing in them.
        for item in full.split("; "):
            col, typ = item.split(" ", 1)
            if col not in table.column_names:
                # 0 is PostgreSQL's "none" for an OID (conparentid = 0), false and 0 what
                # its catalogs hold for flags and counts; NULL for the rest
                t = _pg15_arrow(typ)
                fill = 0 if pa.types.is_integer(t) else (False if pa.types.is_boolean(t)
                                                         else None)
                table = table.append_column(col, pa.array([fill] * table.num_rows, t))
        # Every PostgreSQL row has the system column tableoid (pg_dump selects it).
        if "tableoid" not in table.column_names:
            table = table.append_column("tableoid", pa.array(
                [pgcatalog15.OIDS.get(n, 0)] * table.num_rows, pa.int64()))
    return table


def _pg15_arrow(typ: str) -> pa.DataType:
    """Arrow type of a PostgreSQL catalog column type (``oid``, ``aclitem[]``, ``int2vector``)."""
    if typ.endswith("[]"):
        return pa.list_(_pg15_arrow(typ[:-2]))
    vectors = {"oidvector": pa.list_(pa.int64()), "int2vector": pa.list_(pa.int16())}
    if typ in vectors:
        return vectors[typ]
    return {"oid": pa.int64(), "bigint": pa.int64(), "xid": pa.int64(), "regtype": pa.int64(),
            "integer": pa.int32(), "smallint": pa.int16(), "boolean": pa.bool_(),
            "real": pa.float32(), "double precision": pa.float64(), "numeric": pa.float64(),
            "timestamp with time zone": pa.timestamp("us", tz="UTC")}.get(typ, pa.string())


# ---------------------------------------------------------------------------------------------
# functions


def _format_type_sql() -> str:
    """``format_type(oid, typmod)`` as one CASE over every type tarndb knows."""
    whens = []
    for st in SCALARS.values():
        nice = _NICE.get(st.name, st.name)
        if st.name == "numeric":
            expr = ("CASE WHEN typmod IS NOT NULL AND typmod >= 4 THEN 'numeric(' || "
                    "((typmod - 4) >> 16) || ',' || ((typmod - 4) & 65535) || ')' "
                    "ELSE 'numeric' END")
            whens.append(f"WHEN {st.oid} THEN {expr}")
            whens.append(f"WHEN {st.array_oid} THEN ({expr}) || '[]'")
            continue
        if st.name in _LENGTH_TYPMODS:
            # name(n), with n stored in the typmod as PostgreSQL stores it (plus VARHDRSZ for
            # the character types)
            word, header = _LENGTH_TYPMODS[st.name]
            expr = (f"CASE WHEN typmod IS NOT NULL AND typmod > {header} THEN '{word}(' || "
                    f"(typmod - {header}) || ')' ELSE '{word}' END")
            whens.append(f"WHEN {st.oid} THEN {expr}")
            whens.append(f"WHEN {st.array_oid} THEN ({expr}) || '[]'")
            continue
        whens.append(f"WHEN {st.oid} THEN '{nice}'")
        if st.array_oid:
            whens.append(f"WHEN {st.array_oid} THEN '{nice}[]'")
    for oid, tname, _size, _cat, arr in _EXTRA_TYPES:
        if oid in (VECTOR_OID, HALFVEC_OID, SPARSEVEC_OID):
            whens.append(f"WHEN {oid} THEN CASE WHEN typmod IS NOT NULL AND typmod > 0 THEN "
                         f"'{tname}(' || typmod || ')' ELSE '{tname}' END")
            continue
        whens.append(f"WHEN {oid} THEN '{tname}'")
        if arr:
            whens.append(f"WHEN {arr} THEN '{tname}[]'")
    return (f"CASE WHEN type_oid IS NULL THEN NULL ELSE CASE CAST(type_oid AS BIGINT) "
            f"{' '.join(whens)} ELSE '???' END END")


def _to_regtype_sql() -> str:
    pairs = []
    for st in SCALARS.values():
        names = {st.name, _NICE.get(st.name, st.name)}
        for n in names:
            pairs.append(f"WHEN '{n}' THEN {st.oid}")
            if st.array_oid:
                pairs.append(f"WHEN '{n}[]' THEN {st.array_oid}")
                pairs.append(f"WHEN '_{st.name}' THEN {st.array_oid}")
    for oid, tname, _size, _cat, arr in _EXTRA_TYPES:
        pairs.append(f"WHEN '{tname}' THEN {oid}")
        if arr:
            pairs.append(f"WHEN '_{tname}' THEN {arr}")
            pairs.append(f"WHEN '{tname}[]' THEN {arr}")
    for alias, canon in (("int", "int4"), ("integer", "int4"), ("bigint", "int8"),
                         ("smallint", "int2"), ("real", "float4"), ("float", "float8"),
                         ("decimal", "numeric"), ("character varying", "varchar")):
        st = SCALARS[canon]
        pairs.append(f"WHEN '{alias}' THEN {st.oid}")
    seen: set[str] = set()
    uniq = []
    for p in pairs:
        key = p.split(" THEN ")[0]
        if key not in seen:
            seen.add(key)
            uniq.append(p)
    return ("CASE lower(regexp_replace(CAST(type_name AS VARCHAR), '^pg_catalog\\.', '')) "
            + " ".join(uniq) + " ELSE NULL END")


def _to_regclass_static_sql() -> str:
    whens = " ".join(f"WHEN '{n}' THEN {o} WHEN 'pg_catalog.{n}' THEN {o}"
                     for n, o in SYSTEM_RELATION_OIDS.items() if o)
    return f"CASE CAST(rel_name AS VARCHAR) {whens} ELSE NULL END"


def _macros() -> list[str]:
    """CREATE MACRO statements for the session-independent Postgres functions."""
    t = "true"
    m = [
        f"version() AS '{VERSION_STRING}'",
        "current_database() AS 'postgres'",
        "current_catalog() AS 'postgres'",
        f"format_type(type_oid, typmod) AS {_format_type_sql()}",
        "pg_get_expr(expr, relid) AS expr, (expr, relid, pretty) AS expr",
        "pg_get_userbyid(role_oid) AS CASE WHEN role_oid IS NULL THEN NULL "
        "ELSE 'postgres' END",
        "pg_encoding_to_char(enc) AS 'UTF8'",
        "pg_char_to_encoding(enc) AS 6",
        "obj_description(obj) AS CAST(NULL AS VARCHAR), "
        "(obj, catalog) AS CAST(NULL AS VARCHAR)",
        "col_description(rel, col) AS CAST(NULL AS VARCHAR)",
        "shobj_description(obj, catalog) AS CAST(NULL AS VARCHAR)",
        f"has_table_privilege(a, b) AS {t}, (a, b, c) AS {t}",
        f"has_schema_privilege(a, b) AS {t}, (a, b, c) AS {t}",
        f"has_database_privilege(a, b) AS {t}, (a, b, c) AS {t}",
        f"has_column_privilege(a, b, c) AS {t}, (a, b, c, d) AS {t}",
        f"has_any_column_privilege(a, b) AS {t}, (a, b, c) AS {t}",
        f"has_function_privilege(a, b) AS {t}, (a, b, c) AS {t}",
        f"has_sequence_privilege(a, b) AS {t}, (a, b, c) AS {t}",
        f"pg_has_role(a, b) AS {t}, (a, b, c) AS {t}",
        # Exact answers come from session_function(); these are what an engine that does not
        # substitute them sees: everything visible, the default schema.
        f"pg_table_is_visible(rel) AS {t}",
        f"pg_type_is_visible(typ) AS {t}",
        f"pg_function_is_visible(fn) AS {t}",
        f"pg_collation_is_visible(coll) AS {t}",
        "pg_relation_is_publishable(rel) AS false",
        "pg_get_constraintdef(con) AS CAST(NULL AS VARCHAR), "
        "(con, pretty) AS CAST(NULL AS VARCHAR)",
        "pg_get_indexdef(idx) AS CAST(NULL AS VARCHAR), "
        "(idx, col, pretty) AS CAST(NULL AS VARCHAR)",
        "pg_get_serial_sequence(tbl, col) AS CAST(NULL AS VARCHAR)",
        "pg_get_statisticsobjdef_columns(stat) AS CAST(NULL AS VARCHAR)",
        "pg_get_partkeydef(rel) AS CAST(NULL AS VARCHAR)",
        "pg_get_viewdef(rel) AS CAST(NULL AS VARCHAR), (rel, pretty) AS CAST(NULL AS VARCHAR)",
        "pg_get_function_identity_arguments(fn) AS ''",
        "pg_get_function_result(fn) AS CAST(NULL AS VARCHAR)",
        "pg_tablespace_location(ts) AS ''",
        "pg_total_relation_size(rel) AS CAST(0 AS BIGINT)",
        "pg_relation_size(rel) AS CAST(0 AS BIGINT), (rel, fork) AS CAST(0 AS BIGINT)",
        "pg_table_size(rel) AS CAST(0 AS BIGINT)",
        "pg_indexes_size(rel) AS CAST(0 AS BIGINT)",
        "pg_database_size(d) AS CAST(0 AS BIGINT)",
        "pg_is_in_recovery() AS false",
        "pg_backend_pid() AS CAST(0 AS INTEGER)",
        "txid_current() AS CAST(1 AS BIGINT)",
        "pg_current_xact_id() AS CAST(1 AS BIGINT)",
        "set_config(setting_name, new_value, is_local) AS new_value",
        # DuckDB's own current_setting() reads DuckDB options; Postgres clients ask for these.
        "current_setting(setting_name) AS CASE lower(CAST(setting_name AS VARCHAR)) "
        "WHEN 'jit' THEN 'off' WHEN 'default_table_access_method' THEN 'heap' "
        f"WHEN 'server_version_num' THEN '150008' WHEN 'server_version' THEN '{SERVER_VERSION}' "
        "WHEN 'default_transaction_read_only' THEN 'off' WHEN 'transaction_read_only' THEN 'off' "
        "WHEN 'standard_conforming_strings' THEN 'on' WHEN 'search_path' THEN '\"$user\", public' "
        "WHEN 'timezone' THEN 'UTC' WHEN 'datestyle' THEN 'ISO, MDY' "
        "WHEN 'max_identifier_length' THEN '63' WHEN 'server_encoding' THEN 'UTF8' "
        "WHEN 'client_encoding' THEN 'UTF8' WHEN 'lc_collate' THEN 'C.UTF-8' "
        "ELSE CAST(NULL AS VARCHAR) END, "
        "(setting_name, missing_ok) AS current_setting(setting_name)",
        f"to_regtype(type_name) AS {_to_regtype_sql()}",
        f"to_regclass(rel_name) AS {_to_regclass_static_sql()}",
        "quote_ident(ident) AS CASE WHEN regexp_full_match(CAST(ident AS VARCHAR), "
        "'[a-z_][a-z0-9_$]*') THEN CAST(ident AS VARCHAR) ELSE '\"' || "
        "replace(CAST(ident AS VARCHAR), '\"', '\"\"') || '\"' END",
        # pg_advisory_* are real locks: engine/advisory.py
        # pg_dump's: a table's or view's owner holds every privilege (relacl lists what
        # was granted besides); other objects have no privileges beyond their defaults
        f"acldefault(kind, owner) AS CASE WHEN CAST(kind AS VARCHAR) = 'r' THEN "
        f"['{_OWNER_ACL}'] WHEN CAST(kind AS VARCHAR) = 'n' THEN ['{_OWNER_NSPACL}'] "
        "ELSE CAST(NULL AS VARCHAR[]) END",
        # objects tarndb has none of (triggers, rules, statistics, partitions)
        "pg_get_triggerdef(t) AS CAST(NULL AS VARCHAR), (t, pretty) AS CAST(NULL AS VARCHAR)",
        "pg_get_ruledef(r) AS CAST(NULL AS VARCHAR), (r, pretty) AS CAST(NULL AS VARCHAR)",
        "pg_get_statisticsobjdef(s) AS CAST(NULL AS VARCHAR)",
        "pg_get_partition_constraintdef(r) AS CAST(NULL AS VARCHAR)",
        "pg_get_function_arguments(fn) AS ''",
        "btrim(s) AS trim(s), (s, chars) AS trim(s, chars)",
        # information_schema._pg_expandarray(arr): (x, n) per element (pgjdbc's metadata)
        "_pg_expandarray(arr) AS unnest(list_transform(range(len(arr)), "
        "lambda i: struct_pack(x := arr[i + 1], n := CAST(i + 1 AS INTEGER))))",
        # no table is partitioned: a relation's only ancestor is itself (psql's \d)
        "pg_partition_ancestors(rel) AS CAST(rel AS BIGINT)",
        "pg_get_function_sqlbody(fn) AS CAST(NULL AS VARCHAR)",
        "quote_literal(x) AS CASE WHEN x IS NULL THEN NULL ELSE "
        "'''' || replace(CAST(x AS VARCHAR), '''', '''''') || '''' END",
        "array_remove(arr, x) AS list_filter(arr, lambda e: e IS DISTINCT FROM x)",
        "array_upper(arr, dim) AS CASE WHEN len(arr) = 0 THEN NULL ELSE len(arr) END",
        "array_lower(arr, dim) AS CASE WHEN len(arr) = 0 THEN NULL ELSE 1 END",
    ]
    # json_build_object is variadic in Postgres; DuckDB macros are not, so one overload per
    # arity clients use (SQLAlchemy's reflection passes up to 14 arguments).
    overloads = []
    for n in range(2, 21, 2):
        params = ", ".join(f"a{i}" for i in range(n))
        args = ", ".join(f"CAST(a{i} AS VARCHAR)" if i % 2 == 0 else f"a{i}" for i in range(n))
        overloads.append(f"({params}) AS json_object({args})")
    m.append("json_build_object" + ", ".join(overloads))
    out = [f"CREATE OR REPLACE MACRO main.{body}" for body in m]
    # pg_dump reads options ('k=v' text[]) through this table function
    out.append("CREATE OR REPLACE MACRO main.pg_options_to_table(opts) AS TABLE "
               "SELECT split_part(o, '=', 1) AS option_name, "
               "substr(o, strpos(o, '=') + 1) AS option_value FROM unnest(opts) AS t(o)")
    out.append("CREATE OR REPLACE MACRO main.pg_partition_ancestors(rel) AS TABLE "
               "SELECT CAST(rel AS BIGINT) AS relid, 1 AS depth")
    return out


#: Type names Postgres catalog queries cast to; DuckDB has ``oid`` and ``"char"`` already.
_TYPES = [("regclass", "BIGINT"), ("regtype", "BIGINT"), ("regproc", "VARCHAR"),
          ("regprocedure", "BIGINT"), ("regnamespace", "BIGINT"), ("regrole", "BIGINT"),
          ("regoper", "BIGINT"), ("xid", "BIGINT"), ("name", "VARCHAR"),
          ("int2vector", "SMALLINT[]"), ("oidvector", "BIGINT[]"),
          # PostgreSQL's one-byte "char" of catalog columns (dictionary columns of the
          # relations below are cast to it; results report it as "char")
          ("pg_char", "ENUM (" + ", ".join(f"'{c}'" for c in
                                           "abcdefghijklmnopqrstuvwxyz") + ")")]

_MARKER = "__tarndb_pgcatalog_v4"


def install_functions(con: Any) -> None:
    """Define the Postgres catalog functions and type names in a DuckDB database.

    Macros live in the ``main`` schema of the DuckDB database, which every cursor of it
    shares, so this does the work once; later calls only check a marker.

    It also makes arithmetic PostgreSQL's: a division by zero (integer or float) is an error
    (22012) and sqrt/ln of out-of-range arguments are errors, not Infinity or NaN.
    """
    con.execute("SET GLOBAL ieee_floating_point_ops = false")
    try:
        con.execute(f"SELECT {_MARKER}()").fetchall()
        return
    except Exception:  # noqa: BLE001 - the marker is missing: first install on this database
        pass
    import threading

    with _INSTALL_LOCK.setdefault("lock", threading.Lock()):
        for name, duck in _TYPES:
            try:
                con.execute(f"CREATE TYPE {name} AS {duck}")
            except Exception:  # noqa: BLE001 - already there (another cursor made it)
                pass
        for stmt in _macros():
            con.execute(stmt)
        con.execute(f"CREATE OR REPLACE MACRO main.{_MARKER}() AS 1")


_INSTALL_LOCK: dict[str, Any] = {}


# ---------------------------------------------------------------------------------------------
# functions whose answer depends on the session or on the catalog


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _visible_oids(db: Any, session: Any) -> list[int]:
    path = _search_path(session)
    seen: set[str] = set()
    out = []
    # The session's own uncommitted tables too (_tables), as pg_class shows them.
    by_ws: dict[str, list[Any]] = {}
    for t in _tables(db, session):
        by_ws.setdefault(str(t.workspace), []).append(t)
    # A table is visible when it is the first of its name along the search path.
    for ws in path:
        for info in by_ws.get(ws, []) if ws in _workspaces(db, session) else []:
            if info.name not in seen:
                seen.add(info.name)
                out.append(_table_oid(info))
                out.extend(ix["oid"] for ix in _indexes(info))
                out.extend(stable_oid("sequence", info.workspace, info.name, c.name)
                           for c in info.columns if c.serial)
        for d in _standalone(db, session):
            if d.workspace == ws and d.name not in seen:
                seen.add(d.name)
                out.append(_standalone_oid(d))
        for v in _views(db, session):
            if v.workspace == ws and v.name not in seen:
                seen.add(v.name)
                out.append(v.oid)
    return out


def _search_path(session: Any) -> list[str]:
    sp = getattr(session, "search_path", None)
    if callable(sp):
        return list(sp())
    return [getattr(session, "workspace", "public")]


def _case(pairs: dict[Any, Any], key_sql: str, default: str = "NULL") -> str:
    """``CASE key WHEN k THEN v ... END``: SQL both the Postgres parser and DuckDB take."""
    if not pairs:
        return default
    whens = " ".join(f"WHEN {_lit(k)} THEN {_lit(v)}" for k, v in pairs.items())
    return f"CASE {key_sql} {whens} ELSE {default} END"


def _lookup(pairs: dict[str, int], key_sql: str) -> str:
    """``pairs[key]`` (NULL when absent) as an array lookup. Where ``key_sql`` is itself a big
    expression (a ``'t'::regclass`` argument is a CASE over every relation name), a
    :func:`_case` on it is quadratic: DuckDB copies the key into every WHEN (a
    ``has_table_privilege('r', 't'::regclass, ...)`` took 9 s at six tables)."""
    if not pairs:
        return "CAST(NULL AS bigint)"
    keys = ", ".join(_sql_str(k) for k in pairs)
    values = ", ".join(str(int(v)) for v in pairs.values())
    return f"(ARRAY[{values}])[array_position(ARRAY[{keys}], {key_sql})]"


def _lit(v: Any) -> str:
    return str(int(v)) if isinstance(v, int) and not isinstance(v, bool) else _sql_str(str(v))


def _relation_oids(db: Any, session: Any) -> dict[str, int]:
    """Names a ``'...'::regclass`` may use, visible first: ``t``, ``ws.t``, ``"ws"."t"``."""
    out: dict[str, int] = {}
    for n, o in SYSTEM_RELATION_OIDS.items():
        if o:
            out[n] = o
            out[f"pg_catalog.{n}"] = o
    path = _search_path(session)
    for info in _tables(db, session):
        oid = _table_oid(info)
        out[f"{info.workspace}.{info.name}"] = oid
        out[f'"{info.workspace}"."{info.name}"'] = oid
        out[f'{info.workspace}."{info.name}"'] = oid
        out[f'"{info.workspace}".{info.name}'] = oid
        for ix in _indexes(info):
            out.setdefault(ix["name"], ix["oid"])
    seqs = _standalone(db, session)
    for d in seqs:
        oid = _standalone_oid(d)
        out[f"{d.workspace}.{d.name}"] = oid
        out[f'"{d.workspace}"."{d.name}"'] = oid
        out[f'{d.workspace}."{d.name}"'] = oid
        out[f'"{d.workspace}".{d.name}'] = oid
    views = _views(db, session)
    for v in views:
        out[f"{v.workspace}.{v.name}"] = v.oid
        out[f'"{v.workspace}"."{v.name}"'] = v.oid
        out[f'{v.workspace}."{v.name}"'] = v.oid
        out[f'"{v.workspace}".{v.name}'] = v.oid
    for ws in reversed(path):
        for v in views:
            if v.workspace == ws:
                out[v.name] = out[f'"{v.name}"'] = v.oid
        for d in seqs:
            if d.workspace == ws:
                out[d.name] = out[f'"{d.name}"'] = _standalone_oid(d)
        for info in _tables(db, session):
            if info.workspace == ws:
                out[info.name] = _table_oid(info)
                out[f'"{info.name}"'] = _table_oid(info)
    return out


def session_function(name: str, args: list[str], db: Any, session: Any) -> str | None:
    """SQL replacing a call of ``name(args...)`` for this session, or None to keep the call.

    ``args`` are the SQL texts of the arguments. The result parses with the Postgres grammar
    and runs on DuckDB. :func:`rewrite` applies it to the functions of
    :data:`SESSION_FUNCTIONS` and to casts of strings to ``regclass`` (as ``regclass``).
    """
    n = name.lower()
    if n == "current_schema" and not args:
        # The first schema of the search path that exists ("$user" usually does not).
        existing = set(_workspaces(db, session))
        path = [p for p in _search_path(session) if p in existing]
        return _sql_str(path[0]) if path else "NULL"
    if n == "current_schemas":
        existing = set(_workspaces(db, session))
        path = [p for p in _search_path(session) if p in existing]
        items = ", ".join(_sql_str(p) for p in path)
        if args:
            return (f"CASE WHEN {args[0]} THEN ARRAY['pg_catalog', {items}] "
                    f"ELSE ARRAY[{items}] END")
        return f"ARRAY[{items}]"
    if n in ("current_user", "session_user", "user", "current_role") and not args:
        return _sql_str(str(getattr(session, "user", "postgres")))
    if n == "current_setting" and args:
        settings = {str(k).lower(): str(v) for k, v in
                    (getattr(session, "settings", {}) or {}).items()}
        settings.setdefault("default_table_access_method", "heap")
        settings.setdefault("server_version_num", "150008")
        settings.setdefault("jit", "off")
        return _case(settings, f"lower(CAST({args[0]} AS text))")
    if n == "pg_table_is_visible" and args:
        oids = _visible_oids(db, session)
        if not oids:
            return "false"
        return f"CAST({args[0]} AS bigint) IN ({', '.join(map(str, oids))})"
    if n == "pg_get_userbyid" and args:
        pairs = {r[0]: r[1] for r in _role_rows(db)}
        return f"coalesce({_case(pairs, f'CAST({args[0]} AS bigint)')}, 'unknown (OID=' || " \
               f"CAST({args[0]} AS text) || ')')"
    if n == "pg_get_constraintdef" and args:
        tables = _tables(db, session)
        defs = {_constraint_oid(info): "PRIMARY KEY (" + ", ".join(
            _qi(c) for c in info.primary_key) + ")"
            for info in tables if info.primary_key}
        defs.update({_fk_oid(info, fk): _fk_def(fk, parent, _search_path(session))
                     for info, fk, parent in _foreign_keys(tables)})
        defs.update({_named_constraint_oid(info, con["name"]): _constraint_def(con)
                     for info in tables for con in getattr(info, "constraints", None) or []
                     if con.get("type") in ("unique", "check")})
        return _case(defs, f"CAST({args[0]} AS bigint)")
    if n == "pg_get_indexdef" and args:
        defs = {ix["oid"]: _index_def(info, ix)
                for info in _tables(db, session) for ix in _indexes(info)}
        whole = _case(defs, f"CAST({args[0]} AS bigint)")
        if len(args) >= 2:
            cols = {ix["oid"]: ix["columns"][0] for info in _tables(db, session)
                    for ix in _indexes(info)}
            return (f"CASE WHEN CAST({args[1]} AS integer) = 0 THEN {whole} "
                    f"ELSE {_case(cols, f'CAST({args[0]} AS bigint)')} END")
        return whole
    if n == "has_table_privilege" and len(args) >= 2:
        return _has_table_privilege(args, db, session)
    if n == "has_schema_privilege" and len(args) >= 2:
        return _has_schema_privilege(args, db, session)
    if n in ("has_column_privilege", "has_any_column_privilege") and len(args) >= 2:
        from . import colprivs

        return colprivs.has_column_privilege(args, db, session,
                                             n == "has_any_column_privilege")
    if n == "pg_get_viewdef" and args:
        defs = {v.oid: v.definition for v in _views(db, session)}
        return _case(defs, f"CAST({args[0]} AS bigint)")
    if n in _PROC_FUNCTIONS and args:
        return _proc_function(n, args[0], db, session)
    if n == "pg_get_serial_sequence" and len(args) >= 2:
        seqs: dict[str, str] = {}
        by_oid = {_table_oid(i): i for i in _tables(db, session)}
        for rel, oid in _relation_oids(db, session).items():
            info = by_oid.get(oid)
            if info is None:
                continue
            for c in info.columns:
                if c.serial:
                    seqs[f"{rel}|{c.name}"] = f"{info.workspace}.{_seq_name(info, c)}"
        return _case(seqs, f"CAST({args[0]} AS text) || '|' || CAST({args[1]} AS text)")
    if n in ("to_regclass", "regclass") and args:
        rels: dict[str, int] = dict(_relation_oids(db, session))
        if n == "regclass":
            # A cast of a number names that OID; a name must exist (an error otherwise).
            rels.update({str(o): o for o in set(rels.values())})
            missing = f"error('relation \"' || CAST({args[0]} AS text) || '\" does not exist')"
            return _case(rels, f"CAST({args[0]} AS text)", missing)
        return _case(rels, f"CAST({args[0]} AS text)")
    return None


@dataclass
class PrivilegeSubject:
    """Who a ``has_*_privilege`` call asks about, as SQL, and the roles its answer lists."""

    #: the role's name (a name or a role OID in the call), as SQL
    user_sql: str
    #: the call's arguments after the user
    rest: list[str]
    #: roles whose grants the answer must cover (not the superusers: they hold everything)
    users: list[str]
    #: the superusers, as SQL literals
    supers_sql: str


def privilege_subject(args: list[str], with_user: int, db: Any, session: Any
                      ) -> PrivilegeSubject | None:
    """The subject of ``has_*_privilege([user,] ...)``, the user named when the call has
    ``with_user`` arguments, else the session's role. None when every answer is true: no
    role store (embedded use), or a session not checked by role (a superuser, an API token,
    which its workspaces limit instead)."""
    try:
        from ..pgwire import roles as roles_mod
    except Exception:  # noqa: BLE001 - no role store
        return None
    names = list(roles_mod.list_roles(db))
    supers = [r for r in names if roles_mod.is_superuser(db, r)] or ["postgres"]
    supers_sql = ", ".join(_sql_str(r) for r in supers)
    if len(args) >= with_user:
        by_oid = {str(roles_mod.role_oid(r)): r for r in names}
        user_sql = f"coalesce({_case(by_oid, f'CAST({args[0]} AS text)')}, " \
                   f"CAST({args[0]} AS text))"
        return PrivilegeSubject(user_sql, args[1:], [r for r in names if r not in supers],
                                supers_sql)
    role = getattr(session, "acl_role", None)
    if role is None:
        return None
    return PrivilegeSubject(_sql_str(role), list(args), [role], supers_sql)


def _has_table_privilege(args: list[str], db: Any, session: Any) -> str:
    """``has_table_privilege([user,] relation, privilege)`` from the GRANTs (pgwire/acl.py):
    true for superusers, owners of everything, and for the catalogs; for a role, whether it
    or PUBLIC holds the privilege on the table or view (named, or by OID). Sessions checked
    by an API token instead (its workspaces) see true for what they may see, as before."""
    who = privilege_subject(args, 3, db, session)
    if who is None:
        return "true"
    user_sql, (rel_sql, priv_sql), users = who.user_sql, who.rest[:2], who.users
    relations = [(info.workspace, info.name, _table_oid(info), int(info.oid or 0))
                 for info in _tables(db, session)]
    relations += [(v.workspace, v.name, v.oid, v.oid) for v in _views(db, session)]
    items = []
    for ws, name, oid, key_oid in relations:
        grants = _grants_on(db, ws, name, key_oid)
        for user in users:
            held = set(grants.get(user, ())) | set(grants.get("public", ()))
            items += [f"{user}|{oid}|{p}" for p in sorted(held)]
    rels = _relation_oids(db, session)
    names = {**rels, **{str(o): o for o in set(rels.values())}}
    oid_sql = _lookup(names, f"CAST({rel_sql} AS text)")
    system = sorted({o for o in SYSTEM_RELATION_OIDS.values() if o})
    held_sql = "false" if not items else (
        f"({user_sql} || '|' || CAST({oid_sql} AS text) || '|' || "
        f"upper(trim(CAST({priv_sql} AS text)))) IN ({', '.join(_sql_str(i) for i in items)})")
    return (f"CASE WHEN {user_sql} IN ({who.supers_sql}) THEN true "
            f"WHEN {oid_sql} IN ({', '.join(map(str, system))}) THEN true "
            f"ELSE coalesce({held_sql}, false) END")


def _has_schema_privilege(args: list[str], db: Any, session: Any) -> str:
    """``has_schema_privilege([user,] schema, privilege)`` from the schema GRANTs
    (pgwire/acl.py): true for superusers and for USAGE on the system schemas; for a role,
    whether it or PUBLIC holds USAGE (``public`` has it for PUBLIC by default). ``CREATE`` is
    never held by a role (only superusers create). The schema by name or OID."""
    who = privilege_subject(args, 3, db, session)
    if who is None:
        return "true"
    from ..pgwire import acl

    user_sql, (schema_sql, priv_sql), users = who.user_sql, who.rest[:2], who.users
    names = set(db.catalog.workspaces()) | {"public"}
    items = [f"{user}|{ws}|USAGE" for user in users
             for ws in sorted(acl.usable_schemas(db, user) & names)]
    by_name = {ws: ws for ws in names} | {str(namespace_oid(ws)): ws for ws in names}
    system = {"pg_catalog": "pg_catalog", "information_schema": "information_schema",
              str(PG_CATALOG_OID): "pg_catalog",
              str(INFORMATION_SCHEMA_OID): "information_schema"}
    missing = f"error('schema \"' || CAST({schema_sql} AS text) || '\" does not exist')"
    ws_sql = _case(by_name | system, f"CAST({schema_sql} AS text)", missing)
    priv = f"upper(trim(CAST({priv_sql} AS text)))"
    held_sql = "false" if not items else (
        f"({user_sql} || '|' || {ws_sql} || '|' || {priv}) "
        f"IN ({', '.join(_sql_str(i) for i in items)})")
    return (f"CASE WHEN {user_sql} IN ({who.supers_sql}) THEN true "
            f"WHEN {ws_sql} IN ('pg_catalog', 'information_schema') THEN {priv} = 'USAGE' "
            f"ELSE coalesce({held_sql}, false) END")


#: Functions the engine should pass to :func:`session_function`.
SESSION_FUNCTIONS = frozenset({
    "has_table_privilege", "has_schema_privilege", "has_column_privilege",
    "has_any_column_privilege",
    "current_schema", "current_schemas", "current_user", "session_user", "user",
    "current_role", "current_setting", "pg_table_is_visible", "pg_get_userbyid",
    "pg_get_constraintdef", "pg_get_indexdef", "pg_get_serial_sequence", "to_regclass",
    "pg_get_viewdef", "pg_get_functiondef", "pg_get_function_arguments",
    "pg_get_function_identity_arguments", "pg_get_function_result", "to_regproc",
    "to_regprocedure",
})

_PROC_FUNCTIONS = frozenset({
    "pg_get_functiondef", "pg_get_function_arguments", "pg_get_function_identity_arguments",
    "pg_get_function_result", "to_regproc", "to_regprocedure", "regproc", "regprocedure",
    "regproc_oid", "regprocedure_oid", "to_regproc_oid", "to_regprocedure_oid"})


def _error_sql(message_sql: str) -> str:
    return f"error({message_sql})"


def _proc_function(n: str, arg: str, db: Any, session: Any) -> str:
    """SQL for the functions and casts that look functions up (sql/pgprocs.py), of an
    argument known only when the statement runs (an OID column, a bound parameter)."""
    procs = _procs(db)
    by_oid = f"CAST({arg} AS bigint)"
    if n == "pg_get_functiondef":
        whens = " ".join(
            f"WHEN {p.oid} THEN " + (_error_sql(_sql_str(f'"{p.name}" is an aggregate '
                                                         "function"))
                                     if p.kind == "a" else _sql_str(p.definition))
            for p in procs)
        return f"CASE {by_oid} {whens} ELSE NULL END"
    if n in ("pg_get_function_arguments", "pg_get_function_identity_arguments"):
        return _case({p.oid: p.arguments for p in procs}, by_oid)
    if n == "pg_get_function_result":
        return _case({p.oid: p.result_type for p in procs}, by_oid)
    # a name -> the function: regproc(name), regprocedure(name(args)) and to_... (NULL)
    with_args = "procedure" in n
    soft = n.startswith("to_")
    as_oid = n.endswith("_oid")
    key = f"replace(lower(CAST({arg} AS text)), ' ', '')"
    names: dict[str, list[Any]] = {}
    path = _search_path(session)
    for p in procs:
        sig = p.signature if with_args else p.name
        for spelled in _proc_spellings(p, with_args):
            names.setdefault(f"{p.schema}.{spelled}", []).append((p, sig))
            if p.schema == "pg_catalog" or p.schema in path:
                names.setdefault(spelled, []).append((p, sig))
    cases: list[str] = []
    for spelled, found in names.items():
        oids = {p.oid for p, _ in found}
        if len(oids) > 1:
            value = "NULL" if soft else _error_sql(
                _sql_str(f'more than one function named "{found[0][0].name}"'))
        else:
            p, sig = found[0]
            value = str(p.oid) if as_oid else _sql_str(sig)
        cases.append(f"WHEN {_sql_str(spelled)} THEN {value}")
    missing = "NULL" if soft else _error_sql(
        f"'function \"' || CAST({arg} AS text) || '\" does not exist'")
    return f"CASE {key} {' '.join(cases)} ELSE {missing} END"


def _proc_spellings(p: Any, with_args: bool) -> list[str]:
    """How a regproc / regprocedure input may name ``p``, lower case without spaces."""
    import itertools

    from . import pgprocs

    if not with_args:
        return [p.name]
    per_arg = [sorted(s.replace(" ", "") for s in pgprocs.spellings(a)) for a in p.args]
    return [f"{p.name}({','.join(combo)})" for combo in itertools.product(*per_arg)]


__all__ = ["relation", "install_functions", "session_function", "SESSION_FUNCTIONS",
           "namespace_oid", "stable_oid", "VERSION_STRING", "SERVER_VERSION"]


# ---------------------------------------------------------------------------------------------
# the statement rewrite the engine applies before binding


_SVF_NAMES = {"SVFOP_CURRENT_USER": "current_user", "SVFOP_SESSION_USER": "session_user",
              "SVFOP_USER": "user", "SVFOP_CURRENT_ROLE": "current_role",
              "SVFOP_CURRENT_SCHEMA": "current_schema", "SVFOP_CURRENT_CATALOG": None}
_REG_TYPES = {"regclass", "regtype", "regproc", "regprocedure", "regnamespace", "regrole",
              "regoper", "oid", "name", "text", "char", "int2vector", "oidvector", "xid"}
_CATALOG_SCHEMAS = ("pg_catalog", "information_schema")


def _expr(sql: str, args: list[Any]) -> Any:
    """Parse ``sql`` (an expression; ``__pgargN`` column refs stand for ``args[N]``)."""
    from postgast import pg_query_pb2 as pb

    from . import ast

    node = ast.parse(f"SELECT {sql}").stmts[0].stmt.select_stmt.target_list[0].res_target.val
    for n in list(ast.walk_nodes(node)):
        if n.WhichOneof("node") == "column_ref":
            parts = ast.names(n.column_ref.fields)
            if len(parts) == 1 and parts[0].startswith("__pgarg"):
                n.CopyFrom(args[int(parts[0][len("__pgarg"):])])
    assert isinstance(node, pb.Node)
    return node


def _call(name: str, args: list[Any], db: Any, session: Any) -> Any | None:
    sql = session_function(name, [f"__pgarg{i}" for i in range(len(args))], db, session)
    return _expr(sql, args) if sql is not None else None


#: PostgreSQL's int2vector / oidvector catalog columns, whose text form is "1 2" (pg_dump
#: parses it so), unlike an array's "{1,2}"
_VECTOR_COLUMNS = {"indkey", "indcollation", "indclass", "indoption", "partattrs",
                   "partclass", "partcollation", "proargtypes", "prattrs", "stxkeys", "tgattr"}


def _vector_columns_as_text(stmt: Any, nodes: list[Any]) -> bool:
    """A select-list entry that is one of :data:`_VECTOR_COLUMNS` of a catalog relation is
    sent as PostgreSQL sends it: its elements separated by spaces (the statement's other
    uses of the column, ``indkey[1]`` or ``unnest(indkey)``, stay arrays)."""
    from . import ast

    if ast.kind(stmt) != "select_stmt":
        return False
    if not any(n.WhichOneof("node") == "range_var" and n.range_var.relname.startswith("pg_")
               for n in nodes):
        return False
    changed = False
    for t in stmt.select_stmt.target_list:
        rt = t.res_target
        if ast.kind(rt.val) != "column_ref":
            continue
        parts = ast.names(rt.val.column_ref.fields)
        if not parts or parts[-1] not in _VECTOR_COLUMNS:
            continue
        if not rt.name:
            rt.name = parts[-1]
        val = ast.func_call("array_to_string", [rt.val, ast.string_const(" ")])
        rt.val.CopyFrom(val)
        changed = True
    return changed


def _regclass_names(db: Any, session: Any) -> dict[int, str]:
    """A relation's OID -> its name as regclass output shows it (schema-qualified when the
    search path does not find it)."""
    path = _search_path(session)
    tables = _tables(db, session)
    shown: dict[int, str] = {}
    for info in tables:
        visible = next((ws for ws in path if any(
            i.workspace == ws and i.name == info.name for i in tables)),
            None) == info.workspace
        prefix = "" if visible else f"{_qi(info.workspace)}."
        shown[_table_oid(info)] = prefix + _qi(info.name)
        for ix in _indexes(info):
            shown.setdefault(ix["oid"], prefix + _qi(ix["name"]))
    for v in _views(db, session):
        first = next((ws for ws in path if any(
            i.workspace == ws and i.name == v.name for i in tables)
            or ws == v.workspace), None)
        shown[v.oid] = ("" if first == v.workspace else f"{_qi(v.workspace)}.") + _qi(v.name)
    for n, o in SYSTEM_RELATION_OIDS.items():
        if o:
            shown.setdefault(o, n)
    return shown


_AS_TEXT = {"text", "varchar", "name"}


_NAMED_REGS = ("regclass", "regtype", "regnamespace", "regrole")


def _reg_cast(node: Any) -> tuple[str, Any] | None:
    """(``regclass`` | ``regtype`` | ``regnamespace`` | ``regrole``, the cast's argument) of
    ``x::regclass`` and the like."""
    from . import ast

    if ast.kind(node) != "type_cast" or node.type_cast.type_name.array_bounds:
        return None
    names = [n.lower() for n in ast.names(node.type_cast.type_name.names)]
    if not names or names[-1] not in _NAMED_REGS:
        return None
    return names[-1], node.type_cast.arg


def _reg_names(reg: str, db: Any, session: Any) -> dict[int, str]:
    """OID -> name as a regnamespace / regrole shows it."""
    if reg == "regnamespace":
        ns = _pg_namespace(db, session)
        return {int(o): _qi(str(n)) for o, n in zip(ns.column("oid").to_pylist(),
                                                   ns.column("nspname").to_pylist(),
                                                   strict=True)}
    return {int(r[0]): _qi(str(r[1])) for r in _role_rows(db, session)}


def reg_oid(reg: str, name: str, db: Any, session: Any) -> int:
    """``'public'::regnamespace`` / ``'postgres'::regrole``: the OID (3F000 / 42704 for an
    unknown name, as PostgreSQL)."""
    from ..errors import InvalidSchemaName, UndefinedObject

    plain = name[1:-1].replace('""', '"') if name.startswith('"') and name.endswith('"') \
        else name.lower()
    for o, n in _reg_names(reg, db, session).items():
        if n == _qi(plain):
            return o
    if reg == "regnamespace":
        raise InvalidSchemaName(f'schema "{plain}" does not exist')
    raise UndefinedObject(f'role "{plain}" does not exist')


def _regclass_output(stmt: Any, db: Any, session: Any) -> bool:
    """``SELECT conrelid::regclass, atttypid::regtype, relnamespace::regnamespace,
    relowner::regrole``: such a cast in the select list is shown as PostgreSQL shows it, the
    relation's name (schema-qualified when the search path does not find it), the type's
    (``format_type``), the schema's or the role's; elsewhere (comparisons, joins) it stays
    the OID, unless cast to text (``c.oid::regclass::text = 't'``,
    ``atttypid::regtype::text``), which is the name anywhere."""
    from . import ast

    if db is None:
        return False
    shown: dict[int, str] | None = None

    def as_name(node: Any, reg: str, arg: Any) -> None:
        nonlocal shown
        if reg == "regtype":
            node.CopyFrom(_expr("format_type(CAST(__pgarg0 AS bigint), NULL)", [arg]))
            return
        if reg == "regclass":
            if shown is None:
                shown = _regclass_names(db, session)
            names = shown
        else:
            names = _reg_names(reg, db, session)
        node.CopyFrom(_expr(
            _case(names, "CAST(__pgarg0 AS bigint)", "CAST(__pgarg0 AS text)"), [arg]))

    changed = False
    if ast.kind(stmt) == "select_stmt":
        for t in stmt.select_stmt.target_list:
            val = t.res_target.val
            hit = _reg_cast(val)
            if hit is None:
                inner = val
                while ast.kind(inner) == "type_cast":  # oid::regclass::text is named "oid"
                    inner = inner.type_cast.arg
                if not t.res_target.name and inner is not val \
                        and ast.kind(inner) == "column_ref" and any(
                            _reg_cast(m) for m in ast.walk_nodes(val)):
                    t.res_target.name = ast.names(inner.column_ref.fields)[-1]
                continue
            reg, arg = hit
            if ast.kind(arg) == "param_ref" or (
                    ast.kind(arg) == "a_const" and arg.a_const.WhichOneof("val") == "sval"):
                continue
            if not t.res_target.name and ast.kind(arg) == "column_ref":
                t.res_target.name = ast.names(arg.column_ref.fields)[-1]
            as_name(val, reg, arg)
            changed = True
    for n in list(ast.walk_nodes(stmt)):
        if ast.kind(n) != "type_cast" or n.type_cast.type_name.array_bounds:
            continue
        names = [x.lower() for x in ast.names(n.type_cast.type_name.names)]
        hit = _reg_cast(n.type_cast.arg)
        if names[-1:] and names[-1] in _AS_TEXT and hit is not None:
            # the inner cast stays: '$1'::regclass / 't'::regclass become the OID later
            as_name(n, hit[0], n.type_cast.arg)
            changed = True
    return changed


def _sequences_as_rows(nodes: list[Any], db: Any, session: Any) -> bool:
    """``SELECT last_value, is_called FROM s`` (pg_dump reads a sequence so): a standalone
    sequence as one row of its state (engine/sequences.py ``shown_state``); a serial
    column's sequence as one row, its last value no lower than the column's largest value
    (the next value handed out is always above it)."""
    from . import ast

    found = False
    for n in nodes:
        if n.WhichOneof("node") != "range_var":
            continue
        rv = n.range_var
        if hasattr(db, "catalog") and not rv.relname.startswith("pg_"):
            from ..engine import sequences

            allowed = _allowed(session)
            where = [rv.schemaname] if rv.schemaname else _search_path(session)
            # a dictionary look-up per schema: this runs for every statement's tables
            d = next((x for ws in where if (allowed is None or ws in allowed)
                      and (x := sequences.lookup(db, session, ws, rv.relname)) is not None),
                     None)
            if d is not None:
                last, called = sequences.shown_state(db, d)
                alias = rv.alias.aliasname if rv.HasField("alias") else rv.relname
                sub = ast.parse(
                    f"SELECT {int(last)}::bigint AS last_value, 0::bigint AS log_cnt, "
                    f"{'true' if called else 'false'} AS is_called").stmts[0].stmt
                new = ast.parse(f"SELECT * FROM (SELECT 1) AS {_qi(alias)}").stmts[0].stmt
                item = new.select_stmt.from_clause[0]
                item.range_subselect.subquery.CopyFrom(sub)
                n.CopyFrom(item)
                found = True
                continue
        if not rv.relname.endswith("_seq"):
            continue
        path = [rv.schemaname] if rv.schemaname else _search_path(session)
        hit = next(((info, c) for ws in path for info in _tables(db, session)
                    if info.workspace == ws for c in info.columns
                    if c.serial and _seq_name(info, c) == rv.relname), None)
        if hit is None or any(info.name == rv.relname and info.workspace in path
                              for info in _tables(db, session)):
            continue
        info, col = hit
        alias = rv.alias.aliasname if rv.HasField("alias") else rv.relname
        sub = ast.parse(
            f"SELECT coalesce(max({_qi(col.name)}), 1)::bigint AS last_value, "
            f"0::bigint AS log_cnt, max({_qi(col.name)}) IS NOT NULL AS is_called "
            f"FROM {_qi(info.workspace)}.{_qi(info.name)}").stmts[0].stmt
        new = ast.parse(f"SELECT * FROM (SELECT 1) AS {_qi(alias)}").stmts[0].stmt
        item = new.select_stmt.from_clause[0]
        item.range_subselect.subquery.CopyFrom(sub)
        n.CopyFrom(item)
        found = True
    return found


_OID_TYPES = {"oid", "int4", "int8", "integer", "bigint", "regproc", "regprocedure"}


def _regproc(arg: Any, with_args: bool, as_oid: bool, db: Any, session: Any,
             soft: bool = False) -> Any:
    """``arg::regproc`` (``::regprocedure``; ``to_regproc(arg)`` when ``soft``): the
    function's name (signature), or with ``as_oid`` its OID. A literal is looked up now,
    with PostgreSQL's errors; a parameter when the statement runs."""
    from ..errors import AmbiguousFunction, UndefinedFunction
    from . import ast, pgprocs

    if arg.WhichOneof("node") == "a_const" and arg.a_const.WhichOneof("val") == "sval":
        text = arg.a_const.sval.sval
        try:
            p = pgprocs.lookup(text, with_args, _procs(db), _search_path(session))
        except pgprocs.Ambiguous as e:
            if soft:
                return ast.null_const()
            raise AmbiguousFunction(f'more than one function named "{e.name}"') from None
        except ValueError:
            if soft:
                return ast.null_const()
            raise UndefinedFunction(f'function "{text}" does not exist') from None
        if p is None:
            if soft:
                return ast.null_const()
            raise UndefinedFunction(f'function "{text}" does not exist')
        if as_oid:
            return _expr(f"CAST({p.oid} AS bigint)", [])
        return ast.string_const(p.signature if with_args else p.name)
    name = ("to_" if soft else "") + ("regprocedure" if with_args else "regproc") + \
        ("_oid" if as_oid else "")
    return _expr(_proc_function(name, "__pgarg0", db, session), [arg])


def _regproc_oids(nodes: list[Any], db: Any, session: Any) -> bool:
    """``'f'::regproc::oid``, ``to_regproc('f')::oid`` (psql's ``\\sf``, pgcli's): the
    function's OID (a regproc alone shows its name, see :func:`rewrite`)."""
    from . import ast

    found = False
    if db is None or not hasattr(db, "catalog"):
        return False
    for n in nodes:
        if n.WhichOneof("node") != "type_cast":
            continue
        tnames = [t.lower() for t in ast.names(n.type_cast.type_name.names)]
        if not tnames or tnames[-1] not in _OID_TYPES or n.type_cast.type_name.array_bounds:
            continue
        inner = n.type_cast.arg
        k = inner.WhichOneof("node")
        if k == "type_cast":
            inames = [t.lower() for t in ast.names(inner.type_cast.type_name.names)]
            arg = inner.type_cast.arg
            if inames[-1:] not in (["regproc"], ["regprocedure"]) or \
                    arg.WhichOneof("node") not in ("a_const", "param_ref"):
                continue
            repl = _regproc(arg, inames[-1] == "regprocedure", tnames[-1] not in
                            ("regproc", "regprocedure"), db, session)
        elif k == "func_call" and ast.func_name(inner.func_call) in ("to_regproc",
                                                                     "to_regprocedure") \
                and len(inner.func_call.args) == 1:
            repl = _regproc(inner.func_call.args[0],
                            ast.func_name(inner.func_call) == "to_regprocedure",
                            tnames[-1] not in ("regproc", "regprocedure"), db, session,
                            soft=True)
        else:
            continue
        n.CopyFrom(repl)
        found = True
    return found


def rewrite(stmt: Any, db: Any, session: Any) -> None:
    """Make a parsed statement's Postgres catalog idioms runnable on DuckDB, in place.

    - ``pg_catalog.f(...)`` -> ``f(...)`` (DuckDB reads ``x.f()`` as ``f(x)``); and the
      functions of :data:`SESSION_FUNCTIONS` (and ``current_user`` & co.) -> this session's
      answer (:func:`session_function`);
    - ``'t'::regclass`` -> the table's OID (42P01 when there is none), ``'int4'::regtype`` ->
      its OID; ``x::pg_catalog.regclass`` -> ``x::regclass`` (a BIGINT type in DuckDB);
    - ``OPERATOR(pg_catalog.~)`` -> ``~``; ``COLLATE pg_catalog.default`` dropped;
    - ``pg_catalog.pg_class.relname`` -> ``pg_class.relname`` (the relation keeps its name as
      alias when the engine binds it).
    """
    from .. import errors
    from . import ast

    if db is not None and hasattr(db, "_duck"):
        from ..engine import sequences

        sequences.rewrite_calls(stmt, db, session, _search_path(session))
    nodes = list(ast.walk_nodes(stmt))
    if _vector_columns_as_text(stmt, nodes) | _sequences_as_rows(nodes, db, session) | \
            _regclass_output(stmt, db, session) | _regproc_oids(nodes, db, session):
        nodes = list(ast.walk_nodes(stmt))  # replaced nodes: walk the new ones
    # Children before parents: a replaced node's arguments are already rewritten.
    for n in reversed(nodes):
        k = n.WhichOneof("node")
        if k == "func_call":
            fc = n.func_call
            parts = ast.names(fc.funcname)
            if len(parts) == 2 and parts[0].lower() in _CATALOG_SCHEMAS:
                del fc.funcname[0]
            name = parts[-1].lower()
            if name in SESSION_FUNCTIONS and not fc.agg_star:
                repl = _call(name, list(fc.args), db, session)
                if repl is not None:
                    n.CopyFrom(repl)
        elif k == "sqlvalue_function":
            from postgast import pg_query_pb2 as pb

            op = pb.SQLValueFunctionOp.Name(n.sqlvalue_function.op)
            if op == "SVFOP_CURRENT_CATALOG":
                n.CopyFrom(_expr("'postgres'", []))
            elif op in _SVF_NAMES:
                repl = _call(str(_SVF_NAMES[op]), [], db, session)
                if repl is not None:
                    n.CopyFrom(repl)
        elif k == "a_expr":
            names = n.a_expr.name
            if len(names) == 2 and ast.names(names)[0].lower() == "pg_catalog":
                del names[0]
        elif k == "collate_clause":
            coll = [c.lower() for c in ast.names(n.collate_clause.collname)]
            if coll[-1:] == ["default"] or coll == ["pg_catalog", "c"]:
                n.CopyFrom(n.collate_clause.arg)
        elif k == "column_ref":
            fields = n.column_ref.fields
            if len(fields) == 3 and ast.names(fields)[0].lower() in _CATALOG_SCHEMAS:
                del fields[0]
        elif k == "type_cast":
            tc = n.type_cast
            tnames = ast.names(tc.type_name.names)
            if len(tnames) == 2 and tnames[0].lower() == "pg_catalog" \
                    and tnames[1].lower() in _REG_TYPES:
                del tc.type_name.names[0]
                tnames = tnames[1:]
            target = tnames[-1].lower() if tnames else ""
            is_text = tc.arg.WhichOneof("node") == "a_const" and \
                tc.arg.a_const.WhichOneof("val") == "sval"
            # ``$1::regclass``: the bound name (or OID) is looked up like a literal one.
            is_param = tc.arg.WhichOneof("node") == "param_ref"
            if target == "regclass" and (is_text or is_param) \
                    and not tc.type_name.array_bounds:
                repl = _call("regclass", [tc.arg], db, session)
                if repl is not None:
                    n.CopyFrom(repl)
            elif target in ("regproc", "regprocedure") and is_text \
                    and not tc.type_name.array_bounds and db is not None:
                # the name as PostgreSQL shows it; a name tarndb does not list stays as
                # written (pgjdbc compares pg_type.typinput with 'array_in'::regproc)
                try:
                    n.CopyFrom(_regproc(tc.arg, target == "regprocedure", False, db,
                                        session))
                except errors.UndefinedFunction:
                    pass
            elif target == "regtype" and is_text and not tc.type_name.array_bounds:
                n.CopyFrom(_expr("to_regtype(__pgarg0)", [tc.arg]))
            elif target in ("regnamespace", "regrole") and is_text and db is not None \
                    and not tc.type_name.array_bounds:
                oid = reg_oid(target, tc.arg.a_const.sval.sval, db, session)
                n.CopyFrom(_expr(f"CAST({oid} AS bigint)", []))
