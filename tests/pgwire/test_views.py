"""Views through the Postgres protocol against a real server: CREATE [OR REPLACE] [TEMP]
VIEW, DROP VIEW [IF EXISTS] [CASCADE], reading them with filters, joins and vector ordering,
transactional DDL, the catalogs (pg_class, pg_views, information_schema), psql ``\\dv`` /
``\\d+``, SQLAlchemy's ``get_view_names`` and pg_dump 15 restored with ``psql -f``."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest
import sqlalchemy

from .conftest import Server, pg_tool


def _psql(server: Server, *commands: str) -> str:
    args = [pg_tool("psql"), "-X", "-v", "ON_ERROR_STOP=1"]
    for c in commands:
        args += ["-c", c]
    run = subprocess.run(args, env=server.libpq_env(), capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout


@pytest.fixture
def ws(pg_server: Server) -> str:
    name = f"views_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS vector")
        c.execute(f"CREATE SCHEMA {name}")
        c.execute(f"CREATE TABLE {name}.docs (id INT PRIMARY KEY, cat TEXT, n INT, "
                  "emb vector(2))")
        c.execute(f"CREATE TABLE {name}.cats (cat TEXT PRIMARY KEY, label TEXT)")
        c.execute(f"INSERT INTO {name}.docs VALUES (1, 'a', 10, '[1,0]'), (2, 'b', 20, '[0,1]'),"
                  " (3, 'a', 30, '[1,1]'), (4, 'a', 40, '[0.9,0.1]'), (5, 'b', 50, NULL)")
        c.execute(f"INSERT INTO {name}.cats VALUES ('a', 'Alpha'), ('b', 'Beta')")
    return name


def test_views_read_like_tables(pg_server: Server, ws: str) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute(f"CREATE VIEW {ws}.a_docs AS SELECT id, n, emb FROM {ws}.docs "
                  "WHERE cat = 'a'")
        c.execute(f"SET search_path = {ws}")
        assert c.execute("SELECT id FROM a_docs WHERE n > %s ORDER BY id", (15,)).fetchall() \
            == [(3,), (4,)]
        assert c.execute("SELECT count(*), sum(n) FROM a_docs").fetchone() == (3, 80)
        # a join of a view and a table, with aliases and a qualified column
        c.execute("CREATE VIEW labelled (doc, label) AS SELECT d.id, c.label FROM docs d "
                  "JOIN cats c ON c.cat = d.cat")
        assert c.execute("SELECT v.doc, v.label FROM labelled v JOIN a_docs a "
                         "ON a.id = v.doc ORDER BY v.doc").fetchall() == \
            [(1, "Alpha"), (3, "Alpha"), (4, "Alpha")]
        # pgvector ordering over a view: exact, and the same rows as over the table
        q = "SELECT id FROM {} ORDER BY emb <=> %s::vector LIMIT 2"
        over_view = c.execute(q.format("a_docs"), ("[1,0]",)).fetchall()
        over_table = c.execute(q.format("docs") .replace("ORDER", "WHERE cat = 'a' ORDER"),
                               ("[1,0]",)).fetchall()
        assert over_view == over_table == [(1,), (4,)]
        assert c.execute("SELECT id FROM a_docs ORDER BY emb <-> '[0,1]' LIMIT 1"
                         ).fetchall() == [(3,)]
        # extended protocol: a prepared statement over a view, described first
        cur = c.cursor()
        cur.execute("SELECT doc, label FROM labelled WHERE doc = %s", (2,), prepare=True)
        assert [d.name for d in cur.description] == ["doc", "label"]
        assert cur.fetchall() == [(2, "Beta")]
        # columns are fixed when the view is made: a new table column does not show
        c.execute("CREATE VIEW star AS SELECT * FROM cats")
        c.execute("ALTER TABLE cats ADD COLUMN extra INT")
        assert [d.name for d in c.execute("SELECT * FROM star").description] == \
            ["cat", "label"]
        # a view is read-only
        with pytest.raises(psycopg.errors.WrongObjectType):
            c.execute("INSERT INTO a_docs (id) VALUES (9)")
        with pytest.raises(psycopg.errors.WrongObjectType):
            c.execute("DELETE FROM a_docs")


def test_create_replace_drop(pg_server: Server, ws: str) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute(f"SET search_path = {ws}")
        c.execute("CREATE VIEW v AS SELECT id, cat FROM docs")
        with pytest.raises(psycopg.errors.DuplicateTable):
            c.execute("CREATE VIEW v AS SELECT 1 AS x")
        with pytest.raises(psycopg.errors.DuplicateTable):
            c.execute("CREATE TABLE v (x INT)")
        with pytest.raises(psycopg.errors.DuplicateTable):
            c.execute("CREATE VIEW docs AS SELECT 1 AS x")
        with pytest.raises(psycopg.errors.WrongObjectType):
            c.execute("CREATE OR REPLACE VIEW docs AS SELECT 1 AS x")
        # OR REPLACE may add columns at the end, not drop or rename them
        c.execute("CREATE OR REPLACE VIEW v AS SELECT id, cat, n FROM docs WHERE id < 3")
        assert c.execute("SELECT * FROM v ORDER BY id").fetchall() == \
            [(1, "a", 10), (2, "b", 20)]
        with pytest.raises(psycopg.errors.InvalidTableDefinition, match="drop columns"):
            c.execute("CREATE OR REPLACE VIEW v AS SELECT id FROM docs")
        with pytest.raises(psycopg.errors.InvalidTableDefinition, match="change name"):
            c.execute("CREATE OR REPLACE VIEW v AS SELECT id, label AS cat2, 1 AS n "
                      "FROM docs JOIN cats USING (cat)")
        with pytest.raises(psycopg.errors.UndefinedTable):
            c.execute("CREATE VIEW bad AS SELECT * FROM no_such_table")
        with pytest.raises(psycopg.errors.SyntaxError):
            c.execute("CREATE VIEW bad (a, b, c) AS SELECT id FROM docs")
        # dependencies: a view on v, a view on the table
        c.execute("CREATE VIEW vv AS SELECT id FROM v")
        with pytest.raises(psycopg.errors.DependentObjectsStillExist) as e:
            c.execute("DROP VIEW v")
        assert e.value.diag.message_detail == "view vv depends on view v"
        with pytest.raises(psycopg.errors.DependentObjectsStillExist):
            c.execute("DROP TABLE docs")
        with pytest.raises(psycopg.errors.WrongObjectType):
            c.execute("DROP VIEW docs")
        c.execute("DROP VIEW v CASCADE")
        for gone in ("v", "vv"):
            with pytest.raises(psycopg.errors.UndefinedTable):
                c.execute(f"SELECT * FROM {gone}")
        c.execute("DROP VIEW IF EXISTS v")
        with pytest.raises(psycopg.errors.UndefinedTable):
            c.execute("DROP VIEW v")
        # a temporary view is this session's only
        c.execute("CREATE TEMP VIEW mine AS SELECT count(*) AS k FROM docs")
        assert c.execute("SELECT k FROM mine").fetchone() == (5,)
        with psycopg.connect(pg_server.dsn(), autocommit=True) as other:
            other.execute(f"SET search_path = {ws}")
            with pytest.raises(psycopg.errors.UndefinedTable):
                other.execute("SELECT * FROM mine")
        c.execute("DROP VIEW mine")
        c.execute("CREATE VIEW w AS SELECT id FROM docs")
        c.execute("DROP TABLE docs CASCADE")
        with pytest.raises(psycopg.errors.UndefinedTable):
            c.execute("SELECT * FROM w")


def test_views_are_transactional(pg_server: Server, ws: str) -> None:
    with psycopg.connect(pg_server.dsn()) as c, \
            psycopg.connect(pg_server.dsn(), autocommit=True) as other:
        c.execute(f"SET search_path = {ws}")
        other.execute(f"SET search_path = {ws}")
        c.execute("CREATE VIEW tv AS SELECT id FROM docs WHERE id > 3")
        assert c.execute("SELECT id FROM tv ORDER BY id").fetchall() == [(4,), (5,)]
        with pytest.raises(psycopg.errors.UndefinedTable):  # not before COMMIT
            other.execute("SELECT * FROM tv")
        assert other.execute("SELECT count(*) FROM pg_views WHERE viewname = 'tv'"
                             ).fetchone() == (0,)
        c.rollback()
        c.execute(f"SET search_path = {ws}")
        with pytest.raises(psycopg.errors.UndefinedTable):
            c.execute("SELECT * FROM tv")
        c.rollback()
        c.execute(f"SET search_path = {ws}")
        c.execute("CREATE VIEW tv AS SELECT id FROM docs WHERE id > 3")
        c.commit()
        assert other.execute("SELECT id FROM tv ORDER BY id").fetchall() == [(4,), (5,)]
        # DROP VIEW rolled back: the view stays
        c.execute("DROP VIEW tv")
        with pytest.raises(psycopg.errors.UndefinedTable):
            c.execute("SELECT * FROM tv")
        c.rollback()
        assert other.execute("SELECT count(*) FROM tv").fetchone() == (2,)


def test_catalogs_psql_sqlalchemy(pg_server: Server, ws: str) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute(f"CREATE VIEW {ws}.summary AS SELECT cat, count(*) AS k, avg(n) AS mean "
                  f"FROM {ws}.docs GROUP BY cat")
        assert c.execute("SELECT relkind FROM pg_class WHERE relname = 'summary'"
                         ).fetchone() == ("v",)
        assert c.execute(f"SELECT table_type FROM information_schema.tables WHERE "
                         f"table_schema = '{ws}' AND table_name = 'summary'").fetchone() == \
            ("VIEW",)
        definition = c.execute(f"SELECT definition FROM pg_views WHERE schemaname = '{ws}' "
                               "AND viewname = 'summary'").fetchone()
        assert definition is not None and f"FROM {ws}.docs" in definition[0]
        assert c.execute(f"SELECT view_definition FROM information_schema.views WHERE "
                         f"table_schema = '{ws}'").fetchone() == definition
        assert c.execute(f"SELECT pg_get_viewdef('{ws}.summary'::regclass, true)"
                         ).fetchone() == definition
        assert c.execute(f"SELECT column_name, data_type FROM information_schema.columns "
                         f"WHERE table_schema = '{ws}' AND table_name = 'summary' "
                         "ORDER BY ordinal_position").fetchall() == \
            [("cat", "text"), ("k", "bigint"), ("mean", "double precision")]
    out = _psql(pg_server, f"\\dv {ws}.*")
    assert f" {ws} | summary | view | postgres" in out
    out = _psql(pg_server, f"\\d+ {ws}.summary")
    assert f'View "{ws}.summary"' in out
    assert "cat    | text" in out and "k      | bigint" in out
    assert "View definition:" in out and f"FROM {ws}.docs" in out
    engine = sqlalchemy.create_engine(pg_server.url("postgresql+psycopg"))
    try:
        insp = sqlalchemy.inspect(engine)
        assert insp.get_view_names(schema=ws) == ["summary"]
        assert "summary" not in insp.get_table_names(schema=ws)
        assert [col["name"] for col in insp.get_columns("summary", schema=ws)] == \
            ["cat", "k", "mean"]
        assert f"FROM {ws}.docs" in insp.get_view_definition("summary", schema=ws)
    finally:
        engine.dispose()


def test_pg_dump_restores_views(pg_server: Server, ws: str, tmp_path: Path) -> None:
    pg_dump, psql = pg_tool("pg_dump"), pg_tool("psql")
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        # named to sort before the tables they read: pg_dump must order them by pg_depend
        c.execute(f"CREATE VIEW {ws}.aa_top WITH (security_barrier) AS SELECT id, n "
                  f"FROM {ws}.docs WHERE n >= 30")
        c.execute(f"CREATE VIEW {ws}.ab_top_ids WITH (security_invoker = true) AS "
                  f"SELECT id FROM {ws}.aa_top")
        c.execute(f"GRANT SELECT ON {ws}.aa_top TO PUBLIC")
    dump = subprocess.run([pg_dump, "-n", ws], env=pg_server.libpq_env(), capture_output=True,
                          text=True, timeout=60)
    assert dump.returncode == 0, dump.stderr
    script = dump.stdout
    assert f"CREATE VIEW {ws}.aa_top WITH (security_barrier='true') AS" in script
    assert script.index(f"CREATE TABLE {ws}.docs") < script.index(f"CREATE VIEW {ws}.aa_top")
    assert script.index(f"CREATE VIEW {ws}.aa_top") < \
        script.index(f"CREATE VIEW {ws}.ab_top_ids")
    # the view's options and GRANTs travel with it (and nothing for the owner's defaults)
    assert f"CREATE VIEW {ws}.ab_top_ids WITH (security_invoker='true') AS" in script
    assert f"GRANT SELECT ON TABLE {ws}.aa_top TO PUBLIC;" in script
    assert "GRANT ALL" not in script and "REVOKE" not in script
    # psql's \dp shows the grant
    listing = _psql(pg_server, f"\\dp {ws}.*")
    assert "aa_top" in listing and "=r/postgres" in listing
    # restore into a new schema of the same server: rename the schema in the script
    restored = ws + "_r"
    path = tmp_path / "dump.sql"
    path.write_text(script.replace(ws, restored))
    run = subprocess.run([psql, "-X", "-v", "ON_ERROR_STOP=1", "-f", str(path)],
                         env=pg_server.libpq_env(), capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        for view in ("aa_top", "ab_top_ids"):
            assert c.execute(f"SELECT * FROM {restored}.{view} ORDER BY 1").fetchall() == \
                c.execute(f"SELECT * FROM {ws}.{view} ORDER BY 1").fetchall()
        assert c.execute(
            "SELECT relname, reloptions, relacl FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE nspname = %s AND relkind = 'v' ORDER BY 1",
            (restored,)).fetchall() == [
                ("aa_top", ["security_barrier=true"],
                 ["postgres=arwdDxt/postgres", "=r/postgres"]),
                ("ab_top_ids", ["security_invoker=true"], None)]


def test_copy_refuses_views(pg_server: Server, ws: str) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute(f"CREATE VIEW {ws}.b_docs AS SELECT id, n FROM {ws}.docs WHERE cat = 'b'")
        for sql in (f"COPY {ws}.b_docs TO STDOUT", f"COPY {ws}.b_docs (id) TO STDOUT",
                    f"COPY {ws}.b_docs TO STDOUT (FORMAT csv)"):
            with pytest.raises(psycopg.errors.WrongObjectType) as e, \
                    c.cursor().copy(sql) as cp:
                cp.read()
            assert e.value.diag.message_primary == 'cannot copy from view "b_docs"'
            assert e.value.diag.message_hint == "Try the COPY (SELECT ...) TO variant."
        with pytest.raises(psycopg.errors.WrongObjectType) as e, \
                c.cursor().copy(f"COPY {ws}.b_docs FROM STDIN") as cp:
            cp.write_row((9, 9))
        assert e.value.diag.message_primary == 'cannot copy to view "b_docs"'
        # the query form copies a view's rows; a table still copies as before
        with c.cursor().copy(f"COPY (SELECT * FROM {ws}.b_docs ORDER BY id) TO STDOUT") as cp:
            assert b"".join(cp) == b"2\t20\n5\t50\n"
        c.execute(f"SET search_path = {ws}")
        with pytest.raises(psycopg.errors.WrongObjectType), \
                c.cursor().copy("COPY b_docs TO STDOUT") as cp:
            cp.read()
        with c.cursor().copy("COPY cats TO STDOUT") as cp:
            assert b"".join(cp) == b"a\tAlpha\nb\tBeta\n"
        assert c.execute("SELECT count(*) FROM docs").fetchone() == (5,)


def test_views_follow_renames(pg_server: Server, ws: str) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute(f"SET search_path = {ws}")
        c.execute("CREATE VIEW firsts AS SELECT docs.id FROM docs WHERE cat = 'a'")
        c.execute("CREATE VIEW firsts_ids AS SELECT id FROM firsts")
        c.execute("ALTER TABLE docs RENAME TO documents")
        assert c.execute("SELECT id FROM firsts_ids ORDER BY id").fetchall() == \
            [(1,), (3,), (4,)]
        c.execute("ALTER VIEW firsts RENAME TO a_ids")
        assert c.execute("SELECT count(*) FROM firsts_ids").fetchone() == (3,)
        assert c.execute("SELECT count(*) FROM a_ids").fetchone() == (3,)
        with pytest.raises(psycopg.errors.UndefinedTable):
            c.execute("SELECT * FROM firsts")
        # views read columns by name: renaming one a view reads is refused, loudly
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            c.execute("ALTER TABLE documents RENAME COLUMN cat TO category")
        c.execute("ALTER TABLE documents RENAME COLUMN n TO amount")
        assert c.execute("SELECT count(*) FROM a_ids").fetchone() == (3,)
