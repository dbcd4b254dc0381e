"""What tools and drivers send that applications rarely write by hand, through real clients
against a real server: psycopg's list-of-str parameters (``= ANY(%s)``), ``oid::regclass::text``
and ``atttypid::regtype``, a column DEFAULT's ``nextval`` and the session's ``currval`` /
``lastval``, and pgcli's backslash commands and completion queries."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from .conftest import Server


def _ws() -> str:
    return f"tq_{uuid.uuid4().hex[:8]}"


def test_text_array_parameters(pg_server: Server) -> None:
    """psycopg sends a list of str as untyped array text ('{a,b}'); PostgreSQL reads it as an
    array where the statement needs one. Keys looked up through an index or a primary key
    must not be taken for the whole text."""
    ws = _ws()
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {ws}")
        c.execute(f"CREATE TABLE {ws}.kt (k TEXT PRIMARY KEY, g TEXT, n INT)")
        c.execute(f"CREATE INDEX ON {ws}.kt (g)")
        with c.cursor() as cur:
            cur.executemany(f"INSERT INTO {ws}.kt VALUES (%s, %s, %s)",
                            [(f"k{i}", f"g{i % 5}", i) for i in range(50)])
        q = c.execute
        assert q(f"SELECT k FROM {ws}.kt WHERE k = ANY(%s) ORDER BY k",
                 (["k1", "k7", "nope"],)).fetchall() == [("k1",), ("k7",)]
        assert q(f"SELECT count(*) FROM {ws}.kt WHERE g = ANY(%s)",
                 (["g1", "g2"],)).fetchone() == (20,)
        assert q(f"SELECT count(*) FROM {ws}.kt WHERE g <> ALL(%s)",
                 (["g1", "g2"],)).fetchone() == (30,)
        # quoting, NULL elements and an explicit cast
        assert q(f"SELECT k FROM {ws}.kt WHERE k = ANY(%s)",
                 (['a "b", {c}', "k4", None],)).fetchall() == [("k4",)]
        assert q(f"SELECT k FROM {ws}.kt WHERE k = ANY(%s::text[])",
                 (["k5"],)).fetchall() == [("k5",)]
        assert q("SELECT %s::int[]", (["1", "2"],)).fetchone() == ([1, 2],)
        # a mixed list: str and int parameters in one statement
        assert q(f"SELECT k FROM {ws}.kt WHERE k = ANY(%s) AND n = ANY(%s)",
                 (["k1", "k2"], [1, 3])).fetchall() == [("k1",)]
        # writes find their rows by the same lookups
        cur = q(f"UPDATE {ws}.kt SET n = n + 100 WHERE k = ANY(%s)", (["k1", "k2"],))
        assert cur.rowcount == 2
        assert q(f"DELETE FROM {ws}.kt WHERE k = ANY(%s)", (["k3"],)).rowcount == 1
        assert q(f"SELECT n FROM {ws}.kt WHERE k = 'k2'").fetchone() == (102,)
        # untyped array literals
        assert q("SELECT 'a' = ANY('{a,b}'), 'c' = ALL('{a,b}')").fetchone() == (True, False)
        assert q(f"SELECT count(*) FROM {ws}.kt WHERE k = ANY('{{k1,k2,k3}}')"
                 ).fetchone() == (2,)


def test_regclass_and_regtype_as_text(pg_server: Server) -> None:
    ws = _ws()
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {ws}")
        c.execute(f"CREATE TABLE {ws}.rt (id INT PRIMARY KEY, v VARCHAR(10))")
        q = c.execute
        # not on the search path: schema-qualified, as PostgreSQL shows it
        rows = q("SELECT oid::regclass::text FROM pg_class WHERE relnamespace = "
                 "(SELECT oid FROM pg_namespace WHERE nspname = %s) ORDER BY 1",
                 (ws,)).fetchall()
        assert rows == [(f"{ws}.rt",), (f"{ws}.rt_pkey",)]
        cur = q("SELECT c.oid::regclass::text FROM pg_class c WHERE "
                "c.oid::regclass::text = %s", (f"{ws}.rt",))
        assert cur.fetchall() == [(f"{ws}.rt",)]
        assert cur.description[0].name == "oid"
        rows = q("SELECT attname, atttypid::regtype::text, atttypid::regtype FROM "
                 "pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 ORDER BY attnum",
                 (f"{ws}.rt",)).fetchall()
        assert rows == [("id", "integer", "integer"),
                        ("v", "character varying", "character varying")]
        assert q("SELECT 25::regtype::text, 'int8'::regtype::text").fetchone() == \
            ("text", "bigint")
        # in a comparison without ::text it stays the OID
        oid = q(f"SELECT '{ws}.rt'::regclass::oid").fetchone()[0]
        assert isinstance(oid, int)
        assert q("SELECT relname FROM pg_class WHERE oid = %s::regclass",
                 (f"{ws}.rt",)).fetchone() == ("rt",)
        # regnamespace and regrole: names out, OIDs in
        assert q("SELECT relnamespace::regnamespace, relowner::regrole, "
                 "relnamespace::regnamespace::text FROM pg_class WHERE relname = 'rt'"
                 ).fetchall() == [(ws, "postgres", ws)]
        assert q(f"SELECT relname FROM pg_class WHERE relnamespace = '{ws}'::regnamespace "
                 "ORDER BY 1").fetchall() == [("rt",), ("rt_pkey",)]
        assert q("SELECT 'public'::regnamespace::oid, 'postgres'::regrole::oid"
                 ).fetchone() == (2200, 10)
        with pytest.raises(psycopg.errors.InvalidSchemaName):
            q("SELECT 'no_such_schema'::regnamespace")
        with pytest.raises(psycopg.errors.UndefinedObject):
            q("SELECT 'no_such_role'::regrole")


def test_column_default_nextval_sets_currval_and_lastval(pg_server: Server) -> None:
    ws = _ws()
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c, \
            psycopg.connect(pg_server.dsn(), autocommit=True) as other:
        c.execute(f"CREATE SCHEMA {ws}")
        c.execute(f"CREATE SEQUENCE {ws}.s START 10")
        c.execute(f"CREATE TABLE {ws}.d (id BIGINT DEFAULT nextval('{ws}.s'), x INT)")
        c.execute(f"INSERT INTO {ws}.d (x) VALUES (1), (2), (3)")
        assert c.execute(f"SELECT currval('{ws}.s'), lastval()").fetchone() == (12, 12)
        c.execute(f"INSERT INTO {ws}.d (x) SELECT 4")
        assert c.execute(f"SELECT currval('{ws}.s')").fetchone() == (13,)
        assert c.execute(f"SELECT max(id) FROM {ws}.d").fetchone() == (13,)
        # per session, as in PostgreSQL
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
            other.execute(f"SELECT currval('{ws}.s')")
        other.execute(f"INSERT INTO {ws}.d (x) VALUES (5)")
        assert other.execute(f"SELECT currval('{ws}.s')").fetchone() == (14,)
        assert c.execute(f"SELECT currval('{ws}.s')").fetchone() == (13,)


def test_pgcli_commands_and_completion(pg_server: Server) -> None:
    from pgcli.pgexecute import PGExecute
    from pgspecial.main import PGSpecial

    ws = _ws()
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS vector")
        c.execute(f"CREATE SCHEMA {ws}")
        c.execute(f"SET search_path TO {ws}, public")
        c.execute(f"CREATE TABLE {ws}.docs (id SERIAL PRIMARY KEY, title TEXT, emb vector(3))")
        c.execute(f"CREATE INDEX docs_title_idx ON {ws}.docs (title)")
        c.execute(f"CREATE TABLE {ws}.refs (id INT PRIMARY KEY, doc INT REFERENCES "
                  f"{ws}.docs(id))")
        c.execute(f"CREATE SEQUENCE {ws}.counter")
    ex = PGExecute(database="postgres", user="postgres", password=pg_server.password,
                   host=pg_server.host, port=pg_server.port, dsn="", sslmode="require")
    special = PGSpecial()

    def run(cmd: str) -> list[tuple[str, list[tuple[object, ...]], str]]:
        out = []
        for title, rows, _headers, status, _sql, success, _special in ex.run(
                cmd, pgspecial=special):
            assert success, (cmd, status)
            out.append((title or "", list(rows or []), status or ""))
        return out

    try:
        tables = run(rf"\dt {ws}.*")[0][1]
        assert sorted(r[1] for r in tables) == ["docs", "refs"]
        assert {r[2] for r in tables} == {"table"}
        assert sorted(r[1] for r in run(rf"\di {ws}.*")[0][1]) == \
            ["docs_pkey", "docs_title_idx", "refs_pkey"]
        seqs = sorted(r[1] for r in run(rf"\ds {ws}.*")[0][1])
        assert "counter" in seqs
        described = run(rf"\d {ws}.*")  # each relation of the schema, described
        assert len(described) >= 3, described
        _title, rows, status = run(rf"\d {ws}.docs")[0]
        assert [r[0] for r in rows] == ["id", "title", "emb"]
        assert '"docs_title_idx" btree (title)' in status
        assert "TABLE" in status and "refs_doc_fkey" in status  # Referenced by
        assert any(r[0] == ws for r in run(r"\dn")[0][1])
        assert any(r[1] == "vector" for r in run(r"\dT public.*")[0][1])
        assert [r[0] for r in run(r"\dx vector")[0][1]] == ["vector"]
        assert run(rf"\dt+ {ws}.docs")[0][1][0][1] == "docs"
        # the completion's introspection
        assert ws in list(ex.schemata())
        assert {(ws, "docs"), (ws, "refs")} <= set(ex.tables())
        cols = {(r[1], r[2]): r[3] for r in ex.table_columns() if r[0] == ws}
        assert cols[("docs", "title")] == "text"
        assert cols[("docs", "id")] == "integer"
        assert cols[("docs", "emb")] == "vector"
        fks = [f for f in ex.foreignkeys() if f.childschema == ws]
        assert [(f.parenttable, f.parentcolumn, f.childtable, f.childcolumn) for f in fks] \
            == [("docs", "id", "refs", "doc")]
        assert (ws, "docs") not in set(ex.views())
        assert "postgres" in list(ex.databases())
        assert ("public", "vector") in set(ex.datatypes())
    finally:
        ex.conn.close()
