"""``tarndb.db.connect(workspace_id=...)`` lands in the workspace: unqualified names resolve
there first, then in ``public`` (seed 001's client shape), and ``PGOPTIONS`` does the same
for an unchanged psycopg2 client (what docs/from-deeplake-pg.md recommends)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any


def test_connect_workspace_id_resolves_unqualified_names(pg_server: Any) -> None:
    from tarndb.db import connect

    conn = connect(org_id="my-org", workspace_id="first hour ws", host=pg_server.host,
                   port=pg_server.port, user="postgres", password=pg_server.password)

    def run(sql: str, params: Any = None) -> list[Any]:
        with conn.get_connection() as pg_conn:
            with pg_conn.cursor() as cur:
                cur.execute(sql, params)
                rows = cur.fetchall() if cur.description else []
            pg_conn.commit()
        return rows

    try:
        assert run("SHOW search_path") == [('"first hour ws", public',)]
        assert run("SELECT current_schema()") == [("first hour ws",)]
        # created unqualified: lands in the workspace, not in public
        run("CREATE TABLE IF NOT EXISTS memo (id BIGSERIAL PRIMARY KEY, body TEXT) "
            "USING deeplake")
        run("INSERT INTO memo (body) VALUES (%s), (%s)", ("a", "b"))
        assert run('SELECT body FROM "first hour ws"."memo" ORDER BY id') == [("a",), ("b",)]
        assert run("SELECT count(*) FROM memo") == [(2,)]
        assert run("SELECT table_schema FROM information_schema.tables "
                   "WHERE table_name = 'memo'") == [("first hour ws",)]
        # a table only in public is still found, after the workspace
        run('CREATE TABLE IF NOT EXISTS "public"."only_public" (x INT)')
        run('INSERT INTO "public"."only_public" VALUES (7)')
        assert run("SELECT x FROM only_public") == [(7,)]
    finally:
        run('DROP TABLE IF EXISTS "public"."only_public"')
        conn.close()


def test_pgoptions_puts_an_unchanged_psycopg2_client_in_the_workspace(
        pg_server: Any) -> None:
    setup = subprocess.run(
        [sys.executable, "-c", "import sys, psycopg2; c = psycopg2.connect(sys.argv[1]); "
         "cur = c.cursor(); "
         "cur.execute('CREATE TABLE IF NOT EXISTS \"pgopt_ws\".\"traces\" (t TEXT)'); "
         "cur.execute('INSERT INTO \"pgopt_ws\".\"traces\" VALUES (%s)', ('hello',)); "
         "c.commit()", pg_server.dsn()], capture_output=True, text=True, timeout=60)
    assert setup.returncode == 0, setup.stderr
    # the seed's code, as written: unqualified table name, database="postgres"
    code = ("import sys, psycopg2\n"
            "conn = psycopg2.connect(sys.argv[1])\n"
            "cur = conn.cursor()\n"
            "cur.execute('SELECT t FROM \"traces\"')\n"
            "print(cur.fetchall())\n")
    env = {**os.environ, "PGOPTIONS": "-c search_path=pgopt_ws,public"}
    out = subprocess.run([sys.executable, "-c", code, pg_server.dsn()], capture_output=True,
                         text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[('hello',)]"
