"""Postgres column types as tarndb stores them.

A column's type is a :class:`ColumnType`: a base scalar type, a number of array dimensions and
an optional domain name (``EMBEDDING`` is ``float4[]`` that remembers it is an embedding). The
catalog keeps the Postgres spelling, Lance keeps the Arrow type, DuckDB computes with the DuckDB
type, and the wire protocol reports the OID: this module is the one place that maps them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from ..errors import UndefinedObject


@dataclass(frozen=True)
class ScalarType:
    name: str  # canonical Postgres name (pg_type.typname)
    oid: int
    array_oid: int
    arrow: pa.DataType
    duckdb: str
    #: typlen as pg_type reports it (-1 = variable length)
    size: int = -1
    category: str = "U"


_SCALARS = [
    ScalarType("bool", 16, 1000, pa.bool_(), "BOOLEAN", 1, "B"),
    ScalarType("bytea", 17, 1001, pa.binary(), "BLOB", -1, "U"),
    ScalarType("char", 18, 1002, pa.string(), "VARCHAR", 1, "S"),
    ScalarType("name", 19, 1003, pa.string(), "VARCHAR", 64, "S"),
    ScalarType("int8", 20, 1016, pa.int64(), "BIGINT", 8, "N"),
    ScalarType("int2", 21, 1005, pa.int16(), "SMALLINT", 2, "N"),
    ScalarType("int4", 23, 1007, pa.int32(), "INTEGER", 4, "N"),
    ScalarType("text", 25, 1009, pa.string(), "VARCHAR", -1, "S"),
    ScalarType("oid", 26, 1028, pa.int64(), "BIGINT", 4, "N"),
    ScalarType("json", 114, 199, pa.string(), "JSON", -1, "U"),
    ScalarType("float4", 700, 1021, pa.float32(), "FLOAT", 4, "N"),
    ScalarType("float8", 701, 1022, pa.float64(), "DOUBLE", 8, "N"),
    ScalarType("unknown", 705, 0, pa.string(), "VARCHAR", -2, "X"),
    ScalarType("bpchar", 1042, 1014, pa.string(), "VARCHAR", -1, "S"),
    ScalarType("varchar", 1043, 1015, pa.string(), "VARCHAR", -1, "S"),
    ScalarType("date", 1082, 1182, pa.date32(), "DATE", 4, "D"),
    ScalarType("time", 1083, 1183, pa.time64("us"), "TIME", 8, "D"),
    ScalarType("timestamp", 1114, 1115, pa.timestamp("us"), "TIMESTAMP", 8, "D"),
    ScalarType("timestamptz", 1184, 1185, pa.timestamp("us", tz="UTC"), "TIMESTAMPTZ", 8, "D"),
    ScalarType("interval", 1186, 1187, pa.month_day_nano_interval(), "INTERVAL", 16, "T"),
    ScalarType("numeric", 1700, 1231, pa.decimal128(38, 10), "DECIMAL(38,10)", -1, "N"),
    ScalarType("uuid", 2950, 2951, pa.string(), "UUID", 16, "U"),
    ScalarType("jsonb", 3802, 3807, pa.string(), "JSON", -1, "U"),
    # bit(n) / bit varying(n): stored as the text of their bits ('0101'); pgvector's
    # <~> (Hamming) and <%> (Jaccard) compute on DuckDB's BIT.
    ScalarType("bit", 1560, 1561, pa.string(), "VARCHAR", -1, "V"),
    ScalarType("varbit", 1562, 1563, pa.string(), "VARCHAR", -1, "V"),
]

SCALARS: dict[str, ScalarType] = {t.name: t for t in _SCALARS}

#: pgvector's ``vector(n)``: stored as ``float4[]`` (a Lance list of float32), computed on as
#: DuckDB's fixed-size ``FLOAT[n]``, sent with pgvector's text and binary I/O. Its OIDs are
#: tarndb's (an extension's types get OIDs at CREATE EXTENSION time in PostgreSQL; clients
#: look them up by name).
VECTOR = "VECTOR"
VECTOR_OID = 8100
VECTOR_ARRAY_OID = 8101
#: pgvector's ``halfvec(n)`` (values rounded to half precision on the way in): stored, computed
#: on and indexed as vector(n) is. ``sparsevec(n)`` (text ``{1:0.5,3:2}/5``, up to 1e9
#: dimensions) is stored sparsely as a struct (engine/sparsevec.py); a column a table made
#: before that layout (``ndim`` 1) stays a dense ``float4[]`` (see ``is_sparse``).
HALFVEC = "HALFVEC"
HALFVEC_OID = 8102
HALFVEC_ARRAY_OID = 8103
SPARSEVEC = "SPARSEVEC"
SPARSEVEC_OID = 8104
SPARSEVEC_ARRAY_OID = 8105
#: domain -> (type name, OID, array OID, largest dimension)
VECTOR_KINDS: dict[str, tuple[str, int, int, int]] = {
    VECTOR: ("vector", VECTOR_OID, VECTOR_ARRAY_OID, 16000),
    HALFVEC: ("halfvec", HALFVEC_OID, HALFVEC_ARRAY_OID, 16000),
    SPARSEVEC: ("sparsevec", SPARSEVEC_OID, SPARSEVEC_ARRAY_OID, 1_000_000_000),
}
VECTOR_BY_NAME = {v[0]: d for d, v in VECTOR_KINDS.items()}
VECTOR_BY_OID = {v[1]: d for d, v in VECTOR_KINDS.items()}
BY_OID: dict[int, ScalarType] = {t.oid: t for t in _SCALARS}
ARRAY_OIDS: dict[int, ScalarType] = {t.array_oid: t for t in _SCALARS if t.array_oid}

# Spellings accepted in DDL and casts -> canonical name.
ALIASES: dict[str, str] = {
    "boolean": "bool", "bool": "bool",
    "bytea": "bytea", "blob": "bytea",
    "bigint": "int8", "int8": "int8", "bigserial": "int8", "serial8": "int8",
    "integer": "int4", "int": "int4", "int4": "int4", "serial": "int4", "serial4": "int4",
    "smallint": "int2", "int2": "int2", "smallserial": "int2", "serial2": "int2",
    "text": "text", "varchar": "varchar", "character varying": "varchar", "string": "text",
    "char": "bpchar", "character": "bpchar", "bpchar": "bpchar", "name": "name",
    "json": "json", "jsonb": "jsonb",
    "real": "float4", "float4": "float4", "float": "float8",
    "double precision": "float8", "double": "float8", "float8": "float8",
    "numeric": "numeric", "decimal": "numeric",
    "date": "date", "time": "time",
    "timestamp": "timestamp", "timestamp without time zone": "timestamp",
    "timestamptz": "timestamptz", "timestamp with time zone": "timestamptz",
    "interval": "interval",
    "uuid": "uuid", "oid": "oid", "regclass": "oid", "regtype": "oid",
    "jsonpath": "text",  # SQL/JSON path text, read by jsonb_path_match (engine/jsonpath.py)
    "bit": "bit", "bit varying": "varbit", "varbit": "varbit",
}

SERIALS = {"bigserial": "int8", "serial8": "int8", "serial": "int4", "serial4": "int4",
           "smallserial": "int2", "serial2": "int2"}

# pg_deeplake's domains: (base, ndim). They behave as their base type and keep their name.
DOMAINS: dict[str, tuple[str, int]] = {
    "embedding": ("float4", 1),
    "embedding_2d": ("float4", 2),
    "file_id": ("uuid", 0),
    "image": ("uuid", 0),
    "video": ("uuid", 0),
    "file": ("uuid", 0),
}


@dataclass(frozen=True)
class ColumnType:
    """A column's declared type: base scalar, array dimensions, optional domain."""

    base: str
    ndim: int = 0
    domain: str | None = None
    #: NUMERIC(precision, scale) or VARCHAR(n); empty when unconstrained.
    typmods: tuple[int, ...] = field(default=())

    @property
    def scalar(self) -> ScalarType:
        return SCALARS[self.base]

    @property
    def is_vector(self) -> bool:
        """pgvector's vector, halfvec or sparsevec (``float4[]``, but see ``is_sparse``)."""
        return self.domain in VECTOR_KINDS

    @property
    def is_sparse(self) -> bool:
        """A ``sparsevec`` stored sparsely (a struct; engine/sparsevec.py). A sparsevec column
        of a table made before that layout has ``ndim`` 1 and stays a dense ``float4[]``,
        so lakes written then are read as they are."""
        return self.domain == SPARSEVEC and self.ndim == 0

    @property
    def vector_name(self) -> str:
        """``vector``, ``halfvec`` or ``sparsevec`` (empty for other types)."""
        return VECTOR_KINDS[self.domain][0] if self.domain in VECTOR_KINDS else ""

    @property
    def dim(self) -> int | None:
        """A vector's declared dimension (None: ``vector`` without one)."""
        return self.typmods[0] if self.is_vector and self.typmods else None

    @property
    def oid(self) -> int:
        if self.is_vector:
            return VECTOR_KINDS[str(self.domain)][1]
        return self.scalar.array_oid if self.ndim else self.scalar.oid

    @property
    def pg_name(self) -> str:
        """The name Postgres shows (``format_type``): ``real[]``, ``jsonb``, ``numeric(10,2)``."""
        if self.is_vector:
            name = self.vector_name
            return f"{name}({self.typmods[0]})" if self.typmods else name
        if self.domain:
            return self.domain
        nice = {
            "int8": "bigint", "int4": "integer", "int2": "smallint", "float4": "real",
            "float8": "double precision", "bool": "boolean", "varchar": "character varying",
            "timestamp": "timestamp without time zone",
            "timestamptz": "timestamp with time zone", "bpchar": "character",
            "varbit": "bit varying",
        }.get(self.base, self.base)
        if self.typmods:
            nice += "(" + ",".join(str(m) for m in self.typmods) + ")"
        return nice + "[]" * self.ndim

    @property
    def typname(self) -> str:
        """pg_type.typname of the column's type (arrays are ``_float4``)."""
        if self.is_vector:
            return self.vector_name
        return ("_" + self.base) if self.ndim else self.base

    @property
    def arrow(self) -> pa.DataType:
        if self.is_sparse:
            from .sparsevec import ARROW

            return ARROW
        if self.base == "numeric" and len(self.typmods) >= 1:
            precision = min(self.typmods[0], 38)
            scale = self.typmods[1] if len(self.typmods) > 1 else 0
            t: pa.DataType = pa.decimal128(precision, scale)
        else:
            t = self.scalar.arrow
        for _ in range(self.ndim):
            t = pa.list_(t)
        return t

    @property
    def duckdb(self) -> str:
        if self.is_sparse:
            from .sparsevec import DUCKDB

            return DUCKDB
        if self.is_vector:
            return f"FLOAT[{self.typmods[0]}]" if self.typmods else "FLOAT[]"
        if self.base == "numeric" and self.typmods:
            precision = min(self.typmods[0], 38)
            scale = self.typmods[1] if len(self.typmods) > 1 else 0
            d = f"DECIMAL({precision},{scale})"
        else:
            d = self.scalar.duckdb
        return d + "[]" * self.ndim

    def to_json(self) -> dict[str, Any]:
        return {"base": self.base, "ndim": self.ndim, "domain": self.domain,
                "typmods": list(self.typmods)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ColumnType:
        return cls(d["base"], d.get("ndim", 0), d.get("domain"), tuple(d.get("typmods", ())))


def resolve_type(names: list[str], ndim: int = 0, typmods: tuple[int, ...] = ()) -> ColumnType:
    """Map a Postgres type name as written (``pg_catalog.float4``, ``EMBEDDING``) to a type."""
    parts = [n.lower() for n in names if n.lower() not in ("pg_catalog", "public")]
    name = " ".join(parts)
    if name in VECTOR_BY_NAME and ndim == 0:
        domain = VECTOR_BY_NAME[name]
        most = VECTOR_KINDS[domain][3]
        if len(typmods) > 1 or (typmods and not 1 <= typmods[0] <= most):
            from ..errors import InvalidParameterValue

            if domain == SPARSEVEC and len(typmods) == 1:  # pgvector's sparsevec words
                raise InvalidParameterValue(
                    "dimensions for type sparsevec must be at least 1" if typmods[0] < 1
                    else f"dimensions for type sparsevec cannot exceed {most}")
            raise InvalidParameterValue(f"dimensions for type {name} must be between 1 and "
                                        f"{most}" if len(typmods) == 1
                                        else "invalid type modifier")
        # a sparsevec is stored sparsely (ndim 0: see ColumnType.is_sparse)
        return ColumnType("float4", 0 if domain == SPARSEVEC else 1, domain, tuple(typmods))
    if name in DOMAINS:
        base, dn = DOMAINS[name]
        return ColumnType(base, dn + ndim, name.upper())
    canonical = ALIASES.get(name) or (name if name in SCALARS else None)
    if canonical is None and name.startswith("_") and name[1:] in SCALARS:
        canonical, ndim = name[1:], ndim + 1
    if canonical is None:
        raise UndefinedObject(f'type "{name}" does not exist')
    if canonical in ("varchar", "bpchar"):
        # varchar(n) / char(n): the length is checked on write (engine/dml.py, 22001);
        # ``char`` alone is char(1) in PostgreSQL, but tarndb keeps it unbounded as before
        if len(typmods) > 1 or (typmods and typmods[0] < 1):
            from ..errors import InvalidParameterValue

            raise InvalidParameterValue(f"length for type {name} must be at least 1")
    return ColumnType(canonical, ndim, None, typmods)


def type_for_oid(oid: int) -> ColumnType:
    if oid in VECTOR_BY_OID:
        domain = VECTOR_BY_OID[oid]
        return ColumnType("float4", 0 if domain == SPARSEVEC else 1, domain)
    if oid in BY_OID:
        return ColumnType(BY_OID[oid].name)
    if oid in ARRAY_OIDS:
        return ColumnType(ARRAY_OIDS[oid].name, 1)
    return ColumnType("text")


def from_arrow(t: pa.DataType) -> ColumnType:
    """Best Postgres type for an Arrow type (query results computed by DuckDB)."""
    if pa.types.is_fixed_size_list(t) and pa.types.is_float32(t.value_type):
        return ColumnType("float4", 1, VECTOR, (t.list_size,))
    from .sparsevec import ARROW

    if t == ARROW:  # what sparsevec values are in DuckDB, whatever computed them
        return ColumnType("float4", 0, SPARSEVEC)
    ndim = 0
    while pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        t = t.value_type
        ndim += 1
    if pa.types.is_boolean(t):
        base = "bool"
    elif pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_uint8(t):
        base = "int2"
    elif pa.types.is_int32(t) or pa.types.is_uint16(t):
        base = "int4"
    elif pa.types.is_integer(t):
        base = "int8"
    elif pa.types.is_float16(t) or pa.types.is_float32(t):
        base = "float4"
    elif pa.types.is_floating(t):
        base = "float8"
    elif pa.types.is_decimal(t):
        base = "numeric"
    elif pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        base = "bytea"
    elif pa.types.is_date(t):
        base = "date"
    elif pa.types.is_timestamp(t):
        base = "timestamptz" if t.tz else "timestamp"
    elif pa.types.is_time(t):
        base = "time"
    elif pa.types.is_interval(t) or pa.types.is_duration(t):
        base = "interval"
    elif pa.types.is_struct(t) or pa.types.is_map(t):
        base = "jsonb"
    else:
        base = "text"
    return ColumnType(base, ndim)


def from_duckdb(type_str: str) -> ColumnType:
    """Postgres type for a DuckDB result column type (``FLOAT[][]``, ``JSON``, ``UUID``)."""
    from .sparsevec import DUCKDB

    if type_str.strip() == DUCKDB:
        return ColumnType("float4", 0, SPARSEVEC)
    s = type_str.upper().strip()
    if s.startswith("FLOAT[") and s.endswith("]") and s[6:-1].isdigit():
        # A fixed-size FLOAT[n] is how vector(n) columns and casts appear in DuckDB.
        return ColumnType("float4", 1, VECTOR, (int(s[6:-1]),))
    ndim = 0
    while s.endswith("[]"):
        s, ndim = s[:-2], ndim + 1
    while s.endswith("]") and "[" in s:  # fixed-size ARRAY type FLOAT[384]
        s, ndim = s[: s.rindex("[")], ndim + 1
    if s.startswith("DECIMAL"):
        return ColumnType("numeric", ndim)
    if s.startswith("ENUM("):
        return ColumnType("char", ndim)  # catalog "char" columns (pgcatalog.py)
    mapping = {
        "BOOLEAN": "bool", "TINYINT": "int2", "SMALLINT": "int2", "INTEGER": "int4",
        "BIGINT": "int8", "HUGEINT": "numeric", "UTINYINT": "int2", "USMALLINT": "int4",
        "UINTEGER": "int8", "UBIGINT": "numeric", "FLOAT": "float4", "DOUBLE": "float8",
        "VARCHAR": "text", "BLOB": "bytea", "DATE": "date", "TIME": "time",
        "TIMESTAMP": "timestamp", "TIMESTAMP WITH TIME ZONE": "timestamptz",
        "TIMESTAMP_NS": "timestamp", "TIMESTAMP_MS": "timestamp", "TIMESTAMP_S": "timestamp",
        "INTERVAL": "interval", "UUID": "uuid", "JSON": "jsonb", "NULL": "text",
    }
    base = mapping.get(s)
    if base is None:
        base = "jsonb" if s.startswith(("STRUCT", "MAP", "UNION")) else "text"
    return ColumnType(base, ndim)
