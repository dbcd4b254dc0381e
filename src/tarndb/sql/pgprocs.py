"""The functions tarndb shows in ``pg_proc``, and what tools ask about them.

psql's ``\\df+`` / ``\\sf`` and pgcli's ``\\sf`` look a function up with
``'name'::regproc::oid`` (``'name(argtypes)'::regprocedure::oid``), then ask for
``pg_get_functiondef(oid)``, ``pg_get_function_arguments(oid)`` and
``pg_get_function_result(oid)``. Those answers come from one table here: the catalog
functions tarndb answers itself (language ``internal``, in ``pg_catalog``), pg_deeplake's
``deeplake_hybrid_record`` and, once ``CREATE EXTENSION vector`` has run, pgvector's functions
(language ``c``, in ``public``, with their ``halfvec`` / ``sparsevec`` overloads, so that
``'l2_distance'::regproc`` is ambiguous as it is in PostgreSQL with pgvector 0.8).

Errors are PostgreSQL's: ``function "x" does not exist`` (42883), ``more than one function
named "x"`` (42725), ``"count" is an aggregate function`` (42809) from pg_get_functiondef.
"""

from __future__ import annotations

import functools
import re
import zlib
from dataclasses import dataclass

from ..engine.types import (
    ARRAY_OIDS,
    BY_OID,
    HALFVEC_OID,
    SPARSEVEC_OID,
    VECTOR_BY_OID,
    VECTOR_OID,
    ColumnType,
)

PG_CATALOG_OID = 11
PUBLIC_OID = 2200
LANGUAGES = {12: "internal", 13: "c", 14: "sql"}

#: pseudo-types the functions take or return (not column types): typname, format_type's name
_PSEUDO = {2249: ("record", "record"), 2276: ('"any"', '"any"'), 2277: ("anyarray", "anyarray"),
           2283: ("anyelement", "anyelement")}
#: spellings a regprocedure may use besides the two names
_OTHER_SPELLINGS = {23: ("int",), 701: ("float",), 1021: ("float4[]",), 2276: ("any",)}


@functools.cache
def _type_names(oid: int) -> tuple[str, str]:
    """(pg_type.typname, the name format_type gives) of a type OID, from the engine's types
    (pgvector's vector, halfvec, sparsevec included) or the pseudo-types above."""
    if oid in _PSEUDO:
        return _PSEUDO[oid]
    if oid in VECTOR_BY_OID:
        t = ColumnType("float4", 1, VECTOR_BY_OID[oid])
        return t.vector_name, t.pg_name
    if oid in ARRAY_OIDS:
        return "_" + ARRAY_OIDS[oid].name, ColumnType(ARRAY_OIDS[oid].name, 1).pg_name
    return BY_OID[oid].name, ColumnType(BY_OID[oid].name).pg_name


@dataclass(frozen=True)
class Proc:
    name: str
    args: tuple[int, ...]
    result: int
    namespace: int = PG_CATALOG_OID
    kind: str = "f"  # f function, a aggregate
    language: int = 12
    source: str = ""
    volatile: str = "i"  # i immutable, s stable, v volatile
    pgvector: bool = False

    @property
    def oid(self) -> int:
        # PostgreSQL's built-ins sit below 16384; these stay clear of tables (from 16384)
        # and of pgcatalog.stable_oid (above 2**30)
        key = f"{self.name}({','.join(map(str, self.args))})"
        return (1 << 29) + zlib.crc32(key.encode()) % (1 << 29)

    @property
    def schema(self) -> str:
        return "pg_catalog" if self.namespace == PG_CATALOG_OID else "public"

    @property
    def arguments(self) -> str:
        """pg_get_function_arguments."""
        return ", ".join(_type_names(a)[1] for a in self.args)

    @property
    def result_type(self) -> str:
        """pg_get_function_result."""
        return _type_names(self.result)[1]

    @property
    def signature(self) -> str:
        """How ``oid::regprocedure`` shows it."""
        return f"{self.name}({','.join(_type_names(a)[1] for a in self.args)})"

    @property
    def definition(self) -> str:
        """pg_get_functiondef (a function, not an aggregate)."""
        volatility = {"i": "IMMUTABLE", "s": "STABLE", "v": "VOLATILE"}[self.volatile]
        src = self.source or self.name
        body = f"AS '$libdir/vector', $function${src}$function$" if self.pgvector else \
            f"AS $function${src}$function$"
        return (f"CREATE OR REPLACE FUNCTION {self.schema}.{self.name}({self.arguments})\n"
                f" RETURNS {self.result_type}\n"
                f" LANGUAGE {LANGUAGES[self.language]}\n"
                f" {volatility} PARALLEL SAFE STRICT\n"
                f"{body}\n")


def _vec(name: str, args: tuple[int, ...], result: int, source: str | None = None) -> Proc:
    return Proc(name, args, result, PUBLIC_OID, "f", 13, source or name, "i", True)


_V, _H, _S = VECTOR_OID, HALFVEC_OID, SPARSEVEC_OID

PROCS: list[Proc] = [
    Proc("version", (), 25, source="pgsql_version", volatile="s"),
    Proc("current_schema", (), 19, volatile="s"),
    Proc("current_database", (), 19, volatile="s"),
    Proc("format_type", (26, 23), 25, volatile="s"),
    Proc("pg_get_expr", (25, 26), 25, source="pg_get_expr", volatile="s"),
    Proc("pg_table_is_visible", (26,), 16, volatile="s"),
    Proc("pg_get_userbyid", (26,), 19, volatile="s"),
    Proc("array_to_string", (2277, 25), 25, volatile="s"),
    Proc("now", (), 1184, source="now", volatile="s"),
    Proc("lower", (25,), 25),
    Proc("upper", (25,), 25),
    Proc("length", (25,), 23, source="textlen"),
    Proc("coalesce", (2276,), 2283),
    *(Proc(n, (2276,), r, kind="a", source="aggregate_dummy")
      for n, r in (("count", 20), ("sum", 701), ("avg", 701), ("min", 2283), ("max", 2283))),
    Proc("deeplake_hybrid_record", (1021, 25, 701, 701), 2249, PUBLIC_OID, language=13,
         source="deeplake_hybrid_record"),
]

PGVECTOR_PROCS: list[Proc] = [
    *(_vec(n, (t, t), 701, f"{p}{n}")
      for n in ("l2_distance", "cosine_distance", "inner_product", "l1_distance")
      for t, p in ((_V, ""), (_H, "halfvec_"), (_S, "sparsevec_"))),
    *(_vec("vector_dims", (t,), 23, f"{p}vector_dims") for t, p in ((_V, ""), (_H, "halfvec_"))),
    _vec("vector_norm", (_V,), 701),
    _vec("l2_norm", (_S,), 701, "sparsevec_l2_norm"),
    *(_vec("l2_normalize", (t,), t, f"{p}l2_normalize")
      for t, p in ((_V, ""), (_H, "halfvec_"), (_S, "sparsevec_"))),
    *(_vec("binary_quantize", (t,), 1560, f"{p}binary_quantize")
      for t, p in ((_V, ""), (_H, "halfvec_"))),
    *(_vec("subvector", (t, 23, 23), t, f"{p}subvector") for t, p in ((_V, ""), (_H, "halfvec_"))),
]


def visible(with_pgvector: bool) -> list[Proc]:
    return PROCS + (PGVECTOR_PROCS if with_pgvector else [])


def _norm_type(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower()).removeprefix("pg_catalog.") \
        .removeprefix("public.")


def spellings(oid: int) -> set[str]:
    return {*_type_names(oid), *_OTHER_SPELLINGS.get(oid, ())}


def _split_name(text: str) -> tuple[str | None, str]:
    text = text.strip()
    schema, dot, name = text.rpartition(".")
    if not dot:
        schema = ""
    def unq(s: str) -> str:
        return s[1:-1].replace('""', '"') if s.startswith('"') and s.endswith('"') \
            else s.lower()

    return (unq(schema) if schema else None), unq(name)


def lookup(text: str, with_args: bool, procs: list[Proc], path: list[str]) -> Proc | None:
    """The function ``'text'::regproc`` (``with_args``: ``::regprocedure``) names; None when
    none does; :class:`Ambiguous` when several do (regproc)."""
    args: list[str] | None = None
    name_part = text
    if with_args:
        m = re.fullmatch(r"\s*(.+?)\s*\((.*)\)\s*", text, re.S)
        if m is None:
            raise ValueError("expected a parenthesis")
        name_part = m.group(1)
        args = [_norm_type(a) for a in m.group(2).split(",")] if m.group(2).strip() else []
    schema, name = _split_name(name_part)
    schemas = [schema] if schema else ["pg_catalog", *path]
    for ws in schemas:
        found = [p for p in procs if p.name == name and p.schema == ws]
        if args is not None:
            found = [p for p in found if len(p.args) == len(args) and all(
                a in spellings(t) for a, t in zip(args, p.args, strict=True))]
        if len(found) > 1:
            raise Ambiguous(name)
        if found:
            return found[0]
    return None


class Ambiguous(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name
