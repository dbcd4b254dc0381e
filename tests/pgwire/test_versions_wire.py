"""Versions and training-set pins over the Postgres protocol (psycopg 3 binds parameters
server-side, so these go through Parse/Describe/Bind)."""

from __future__ import annotations

import pytest

from tarndb.files import FileStore

psycopg = pytest.importorskip("psycopg")


def test_tag_read_and_pin_with_bound_parameters(thread_server: tuple) -> None:
    server, _srv, db = thread_server
    blob = FileStore.from_db(db).put("ws", b"clip bytes", "clip.mp4")
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        cur = conn.cursor()
        cur.execute('CREATE TABLE "ws"."t" (id INT, v TEXT)')
        cur.execute('INSERT INTO "ws"."t" VALUES (1, %s)', ["one"])
        cur.execute("SELECT tarndb_tag(%s, %s)", ["ws.t", "run-1"])
        version = cur.fetchone()[0]
        cur.execute('UPDATE "ws"."t" SET v = %s', ["ONE"])
        cur.execute(f'SELECT v FROM "ws"."t@{version}"')
        assert cur.fetchall() == [("one",)]
        cur.execute('SELECT v FROM "ws"."t@run-1"')
        assert cur.fetchall() == [("one",)]
        cur.execute("SET search_path = ws")
        cur.execute("SELECT tarndb_pin_files(%s, %s)", ["run-1", [str(blob.id)]])
        assert cur.fetchone()[0][0]["sha256"] == blob.sha256
        cur.execute("SELECT tarndb_unpin_files(%s)", ["run-1"])
        assert cur.fetchone()[0] is True
