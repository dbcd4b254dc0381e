"""pg_catalog / information_schema emulation: the relations, the functions, and the catalog
queries that psql, SQLAlchemy, psycopg and asyncpg send, run on DuckDB over the relations.

The queries are run the way the engine runs them: relations registered under their names and
``pg_catalog.`` qualifiers removed (the engine's rewrite of catalog references)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import duckdb
import pytest

import tarndb
from tarndb.sql import pgcatalog


@pytest.fixture(scope="module")
def cdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tarndb.Database]:
    db = tarndb.open(str(tmp_path_factory.mktemp("cat") / "lake"))
    s = db.session()
    s.execute("CREATE TABLE items (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL, "
              "price NUMERIC(10,2), emb FLOAT4[], meta JSONB)")
    s.execute("CREATE INDEX items_name ON items USING deeplake_index (name) "
              "WITH (index_type = 'bm25')")
    s.execute("CREATE SCHEMA ws2")
    s.execute("CREATE TABLE ws2.items (x INT)")
    s.close()
    yield db
    db.close()


@pytest.fixture
def duck(cdb: tarndb.Database) -> Iterator[Any]:
    con = duckdb.connect()
    cur = con.cursor()
    pgcatalog.install_functions(cur)
    s = cdb.session()
    for name in pgcatalog._RELATIONS:
        rel = pgcatalog.relation("pg_catalog", name, cdb, s)
        assert rel is not None
        cur.register(name, rel)
    for name in pgcatalog._INFORMATION_SCHEMA:
        cur.register(f"is_{name}", pgcatalog.relation("information_schema", name, cdb, s))
    yield cur, s
    s.close()
    con.close()


def q(cur: Any, sql: str, session: Any = None, db: Any = None) -> list[tuple[Any, ...]]:
    sql = re.sub(r"pg_catalog\.(?=\w+\s*\()", "", sql)  # function qualifiers
    sql = re.sub(r"pg_catalog\.(pg_\w+)", r"\1", sql)  # relation qualifiers
    sql = sql.replace("OPERATOR(~)", "~").replace("COLLATE default", "")
    if session is not None:
        def sub(m: re.Match[str]) -> str:
            out = pgcatalog.session_function(m.group(1), [m.group(2)], db, session)
            return out if out is not None else m.group(0)
        sql = re.sub(r"\b(pg_table_is_visible|pg_get_constraintdef)\(([^()]*)\)", sub, sql)
    return list(cur.execute(sql).fetchall())


def test_relation_unknown_names(cdb: tarndb.Database) -> None:
    s = cdb.session()
    assert pgcatalog.relation("pg_catalog", "pg_nothing", cdb, s) is None
    assert pgcatalog.relation("public", "pg_class", cdb, s) is None
    assert pgcatalog.relation(None, "pg_class", cdb, s) is not None
    s.close()


def test_pg_type_has_postgres_oids(duck: Any) -> None:
    cur, _ = duck
    rows = dict(q(cur, "SELECT typname, oid FROM pg_type"))
    assert rows["float4"] == 700 and rows["_float4"] == 1021 and rows["jsonb"] == 3802
    assert rows["uuid"] == 2950 and rows["_text"] == 1009 and rows["numeric"] == 1700
    assert q(cur, "SELECT typelem, typdelim FROM pg_type WHERE oid = 1021") == [(700, ",")]


def test_format_type(duck: Any) -> None:
    cur, _ = duck
    assert q(cur, "SELECT format_type(1021, -1), format_type(20, NULL), "
                  "format_type(1700, 655366), format_type(1184, -1)") == [
        ("real[]", "bigint", "numeric(10,2)", "timestamp with time zone")]


def test_psql_dt(duck: Any, cdb: tarndb.Database) -> None:
    cur, s = duck
    rows = q(cur, """SELECT n.nspname as "Schema", c.relname as "Name",
      CASE c.relkind WHEN 'r' THEN 'table' WHEN 'i' THEN 'index' END as "Type",
      pg_catalog.pg_get_userbyid(c.relowner) as "Owner"
    FROM pg_catalog.pg_class c
         LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam
    WHERE c.relkind IN ('r','p','')
          AND n.nspname <> 'pg_catalog'
          AND n.nspname !~ '^pg_toast'
          AND n.nspname <> 'information_schema'
      AND pg_catalog.pg_table_is_visible(c.oid)
    ORDER BY 1,2""", s, cdb)
    assert rows == [("public", "items", "table", "postgres")]


def test_psql_describe_table(duck: Any, cdb: tarndb.Database) -> None:
    cur, s = duck
    (oid,), = q(cur, "SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relname OPERATOR(~) "
                     "'^(items)$' COLLATE default AND pg_catalog.pg_table_is_visible(c.oid)",
                s, cdb)
    rows = q(cur, f"""SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),
      (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true) FROM pg_catalog.pg_attrdef d
       WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef),
      a.attnotnull
    FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = '{oid}' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum""")
    assert rows == [("id", "bigint", "nextval('items_id_seq'::regclass)", True),
                    ("name", "text", None, True), ("price", "numeric(10,2)", None, False),
                    ("emb", "real[]", None, False), ("meta", "jsonb", None, False)]
    idx = q(cur, f"""SELECT c2.relname, i.indisprimary, i.indisunique,
        pg_catalog.pg_get_constraintdef(con.oid)
      FROM pg_catalog.pg_class c, pg_catalog.pg_class c2, pg_catalog.pg_index i
      LEFT JOIN pg_catalog.pg_constraint con ON (conrelid = i.indrelid AND
        conindid = i.indexrelid AND contype IN ('p','u','x'))
      WHERE c.oid = '{oid}' AND c.oid = i.indrelid AND i.indexrelid = c2.oid
      ORDER BY i.indisprimary DESC, c2.relname""", s, cdb)
    assert idx == [("items_pkey", True, True, "PRIMARY KEY (id)"),
                   ("items_name", False, False, None)]


def test_sqlalchemy_has_table_and_pk(duck: Any, cdb: tarndb.Database) -> None:
    cur, s = duck
    assert q(cur, """SELECT pg_catalog.pg_class.relname
      FROM pg_catalog.pg_class JOIN pg_catalog.pg_namespace
        ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace
      WHERE pg_catalog.pg_class.relname IN ('items')
        AND pg_catalog.pg_class.relkind = ANY (ARRAY['r', 'p', 'f', 'v', 'm'])
        AND pg_catalog.pg_table_is_visible(pg_catalog.pg_class.oid)
        AND pg_catalog.pg_namespace.nspname != 'pg_catalog'""", s, cdb) == [("items",)]
    (oid,), = q(cur, "SELECT oid FROM pg_class WHERE relname = 'items' AND relnamespace = 2200")
    rows = q(cur, f"""SELECT attr.conrelid, array_agg(CAST(attr.attname AS TEXT)
        ORDER BY attr.ord) AS cols, attr.conname
      FROM (SELECT con.conrelid AS conrelid, con.conname AS conname, con.ord AS ord,
              pg_catalog.pg_attribute.attname AS attname
            FROM pg_catalog.pg_attribute JOIN (
              SELECT pg_catalog.pg_constraint.conrelid AS conrelid,
                pg_catalog.pg_constraint.conname AS conname,
                unnest(pg_catalog.pg_index.indkey) AS attnum,
                generate_subscripts(pg_catalog.pg_index.indkey, 1) AS ord
              FROM pg_catalog.pg_constraint JOIN pg_catalog.pg_index
                ON pg_catalog.pg_constraint.conindid = pg_catalog.pg_index.indexrelid
              WHERE pg_catalog.pg_constraint.contype = 'p'
                AND pg_catalog.pg_constraint.conrelid IN ({oid})) AS con
            ON pg_catalog.pg_attribute.attnum = con.attnum
              AND pg_catalog.pg_attribute.attrelid = con.conrelid) AS attr
      GROUP BY attr.conrelid, attr.conname""")
    assert rows == [(oid, ["id"], "items_pkey")]


def test_visibility_follows_search_path(duck: Any, cdb: tarndb.Database) -> None:
    cur, _ = duck
    s2 = cdb.session(workspace="ws2")
    try:
        rows = q(cur, "SELECT n.nspname FROM pg_class c JOIN pg_namespace n "
                      "ON n.oid = c.relnamespace WHERE c.relname = 'items' "
                      "AND pg_table_is_visible(c.oid)", s2, cdb)
        assert rows == [("ws2",)]
    finally:
        s2.close()


def test_a_table_created_in_the_transaction_is_visible_to_it(cdb: tarndb.Database) -> None:
    """SQLAlchemy's has_table inside a transaction that created the table: pg_class shows the
    session its own uncommitted table, and pg_table_is_visible says so too (it read only
    committed tables); other sessions see neither until COMMIT."""
    has_table = ("SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                 "ON n.oid = c.relnamespace WHERE c.relname = 'fresh' "
                 "AND pg_catalog.pg_table_is_visible(c.oid)")
    s, other = cdb.session(), cdb.session()
    try:
        s.execute("BEGIN")
        s.execute("CREATE TABLE fresh (x INT)")
        assert s.execute(has_table).rows == [("fresh",)]
        assert other.execute(has_table).rows == []
        s.execute("COMMIT")
        assert other.execute(has_table).rows == [("fresh",)]
    finally:
        s.execute("DROP TABLE IF EXISTS fresh")
        s.close()
        other.close()


def test_asyncpg_typeinfo_query_shape(duck: Any) -> None:
    cur, _ = duck
    rows = q(cur, """SELECT t.oid, ns.nspname, t.typname, t.typtype, t.typelem, elem_t.typdelim
        FROM pg_catalog.pg_type AS t
        INNER JOIN pg_catalog.pg_namespace ns ON (ns.oid = t.typnamespace)
        LEFT JOIN pg_type elem_t ON (t.typlen = -1 AND t.typelem != 0 AND t.typelem = elem_t.oid)
        LEFT JOIN pg_range range_t ON (t.oid = range_t.rngtypid)
        WHERE t.oid = any([1021, 3807])""")
    assert sorted(rows) == [(1021, "pg_catalog", "_float4", "b", 700, ","),
                            (3807, "pg_catalog", "_jsonb", "b", 3802, ",")]


def test_information_schema(duck: Any) -> None:
    cur, _ = duck
    assert q(cur, "SELECT table_schema, table_name FROM is_tables ORDER BY 1") == [
        ("public", "items"), ("ws2", "items")]
    cols = q(cur, "SELECT column_name, data_type, is_nullable, udt_name FROM is_columns "
                  "WHERE table_schema = 'public' ORDER BY ordinal_position")
    assert cols[0] == ("id", "bigint", "NO", "int8")
    assert cols[3] == ("emb", "ARRAY", "YES", "_float4")
    assert ("ws2",) in q(cur, "SELECT schema_name FROM is_schemata")


def test_functions_installed_once_and_idempotent(duck: Any) -> None:
    cur, _ = duck
    pgcatalog.install_functions(cur)  # a second call is a no-op
    assert q(cur, "SELECT version()")[0][0].startswith("PostgreSQL 15")  # pg_dump 15 runs
    assert q(cur, "SELECT to_regtype('hstore'), to_regtype('float4[]'), "
                  "to_regtype('integer')") == [(None, 1021, 23)]
    assert q(cur, "SELECT current_setting('jit'), set_config('jit', 'off', false)") == [
        ("off", "off")]
    assert q(cur, "SELECT json_build_object('a', 1, 'b', 'x')")[0][0] == {"a": 1, "b": "x"} \
        or q(cur, "SELECT json_build_object('a', 1, 'b', 'x')")[0][0] == '{"a":1,"b":"x"}'


def test_session_functions(cdb: tarndb.Database) -> None:
    con = duckdb.connect()
    s = cdb.session(workspace="ws2")
    try:
        def ev(name: str, *args: str) -> Any:
            sql = pgcatalog.session_function(name, list(args), cdb, s)
            assert sql is not None
            return con.execute(f"SELECT {sql}").fetchone()[0]
        assert ev("current_schema") == "ws2"
        assert ev("current_user") == "postgres"
        assert ev("current_schemas", "true")[0] == "pg_catalog"
        info = cdb.catalog.table("public", "items")
        assert ev("to_regclass", "'public.items'") == info.oid
        assert ev("regclass", "'items'") != info.oid  # ws2.items is first on the path
        assert ev("pg_get_serial_sequence", "'public.items'", "'id'") == "public.items_id_seq"
        with pytest.raises(duckdb.Error):
            ev("regclass", "'nope'")
        assert pgcatalog.session_function("lower", ["'x'"], cdb, s) is None
    finally:
        s.close()
        con.close()


def _run_rewritten(cur: Any, sql: str, db: Any, session: Any) -> list[tuple[Any, ...]]:
    """rewrite() then what the engine's binder does: catalog RangeVars -> registered names."""
    from postgast import pg_query_pb2 as pb

    from tarndb.sql import ast

    stmt = ast.parse(sql).stmts[0].stmt
    pgcatalog.rewrite(stmt, db, session)
    for n in ast.walk(stmt):
        if isinstance(n, pb.RangeVar) and n.schemaname in ("pg_catalog", ""):
            n.schemaname = ""
    return list(cur.execute(ast.deparse_node(stmt)).fetchall())


def test_rewrite_psql_and_sqlalchemy_shapes(duck: Any, cdb: tarndb.Database) -> None:
    cur, s = duck
    rows = _run_rewritten(cur, """SELECT c.oid, n.nspname, c.relname
        FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relname OPERATOR(pg_catalog.~) '^(items)$' COLLATE pg_catalog.default
          AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 2, 3""", cdb, s)
    assert [r[1:] for r in rows] == [("public", "items")]
    oid = rows[0][0]
    assert _run_rewritten(cur, "SELECT 'items'::pg_catalog.regclass, "
                               "'public.items'::regclass, 'int8'::regtype", cdb, s) == [
        (oid, oid, 20)]
    assert _run_rewritten(cur, "SELECT pg_catalog.pg_class.relname FROM pg_catalog.pg_class "
                               "WHERE pg_catalog.pg_class.relkind = 'r' AND "
                               "pg_catalog.pg_table_is_visible(pg_catalog.pg_class.oid)",
                          cdb, s) == [("items",)]
    assert _run_rewritten(cur, "SELECT pg_catalog.pg_get_indexdef(i.indexrelid, 0, true), "
                               "pg_catalog.pg_get_constraintdef(con.oid, true) "
                               "FROM pg_catalog.pg_index i JOIN pg_catalog.pg_constraint con "
                               "ON con.conindid = i.indexrelid", cdb, s) == [
        ("CREATE UNIQUE INDEX items_pkey ON public.items USING btree (id)", "PRIMARY KEY (id)")]
    assert _run_rewritten(cur, "SELECT current_user, session_user, current_schema(), "
                               "pg_catalog.current_setting('default_table_access_method'), "
                               "pg_catalog.pg_get_serial_sequence('items', 'id')", cdb, s) == [
        ("postgres", "postgres", "public", "heap", "public.items_id_seq")]
    with pytest.raises(duckdb.Error, match="does not exist"):
        _run_rewritten(cur, "SELECT 'no_such'::regclass", cdb, s)
