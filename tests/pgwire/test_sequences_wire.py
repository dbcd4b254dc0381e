"""Standalone sequences over the Postgres protocol, as psycopg and psql see them: nextval,
currval, setval, lastval and their SQLSTATEs, DEFAULT nextval('s'), transactional DDL,
psql's ``\\ds``, and a scoped API token kept out of another workspace's sequence."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import tarndb
from tarndb.api.tokens import TokenStore
from tarndb.pgwire.server import ServerThread

from .conftest import Server


def test_sequence_functions_and_errors(pg_server: Server) -> None:
    ws = f"seq_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {ws}")
        c.execute(f"CREATE SEQUENCE {ws}.myseq START 10 INCREMENT 5")
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as e:
            c.execute(f"SELECT currval('{ws}.myseq')")
        assert e.value.sqlstate == "55000"
        assert str(e.value).startswith(
            'currval of sequence "myseq" is not yet defined in this session')
        assert c.execute(f"SELECT nextval('{ws}.myseq')").fetchall() == [(10,)]
        assert c.execute("SELECT nextval(%s)", [f"{ws}.myseq"]).fetchall() == [(15,)]
        assert c.execute(f"SELECT currval('{ws}.myseq'), lastval()").fetchall() == [(15, 15)]
        assert c.execute(f"SELECT setval('{ws}.myseq', 40, true)").fetchall() == [(40,)]
        c.execute(f"CREATE TABLE {ws}.t (id BIGINT DEFAULT nextval('{ws}.myseq'), v TEXT)")
        with c.cursor() as cur:
            cur.executemany(f"INSERT INTO {ws}.t (v) VALUES (%s)", [("a",), ("b",)])
        assert c.execute(f"SELECT id, v FROM {ws}.t ORDER BY id").fetchall() == \
            [(45, "a"), (50, "b")]
        c.execute(f"CREATE SEQUENCE {ws}.tiny AS smallint MAXVALUE 2")
        c.execute(f"SELECT nextval('{ws}.tiny'), nextval('{ws}.tiny')")
        with pytest.raises(psycopg.errors.SequenceGeneratorLimitExceeded) as e2:
            c.execute(f"SELECT nextval('{ws}.tiny')")
        assert e2.value.sqlstate == "2200H"
        assert str(e2.value).startswith(
            'nextval: reached maximum value of sequence "tiny" (2)')
        # CREATE SEQUENCE in a rolled-back transaction is gone; nextval is not rolled back
        c.execute("BEGIN")
        c.execute(f"CREATE SEQUENCE {ws}.gone")
        c.execute(f"SELECT nextval('{ws}.myseq')")
        c.execute("ROLLBACK")
        with pytest.raises(psycopg.errors.UndefinedTable):
            c.execute(f"SELECT nextval('{ws}.gone')")
        assert c.execute(f"SELECT nextval('{ws}.myseq')").fetchall() == [(60,)]
        assert c.execute("SELECT sequence_name, increment FROM information_schema.sequences "
                         f"WHERE sequence_schema = '{ws}' ORDER BY 1").fetchall() == [
            ("myseq", "5"), ("tiny", "1")]
        assert c.execute("SELECT last_value FROM pg_sequences WHERE schemaname = %s AND "
                         "sequencename = 'myseq'", [ws]).fetchall() == [(60,)]


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql is not installed")
def test_psql_lists_sequences(pg_server: Server) -> None:
    ws = f"seqd_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {ws}")
        c.execute(f"CREATE SEQUENCE {ws}.listed")
    env = dict(os.environ, PGPASSWORD=pg_server.password, PGSSLMODE="require")
    run = subprocess.run(["psql", "-h", pg_server.host, "-p", str(pg_server.port), "-U",
                          "postgres", "-d", "postgres", "-X", "-c", f"\\ds {ws}.*"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "listed" in run.stdout and "sequence" in run.stdout


@pytest.fixture
def token_server(tmp_path: Path) -> Iterator[tuple[ServerThread, str]]:
    db = tarndb.open(str(tmp_path / "lake"))
    s = db.session()
    s.execute("CREATE SEQUENCE a.mine")
    s.execute("CREATE SEQUENCE b.theirs")
    s.close()
    store = TokenStore(db.catalog)
    srv = ServerThread(db, port=0, password="pw-seq", data_dir=tmp_path).start()
    srv.server.config.tokens = store
    token = store.create(org="o", role="write", workspaces=["a"])[0]
    yield srv, token
    srv.stop()
    db.close()


def test_scoped_token_cannot_reach_another_workspaces_sequence(
        token_server: tuple[ServerThread, str]) -> None:
    srv, token = token_server
    dsn = (f"host=127.0.0.1 port={srv.port} user=token password={token} dbname=postgres "
           "sslmode=require connect_timeout=10")
    with psycopg.connect(dsn, autocommit=True) as c:
        assert c.execute("SELECT nextval('mine')").fetchall() == [(1,)]
        for sql in ("SELECT nextval('b.theirs')", "SELECT setval('b.theirs', 9)",
                    "DROP SEQUENCE b.theirs", "ALTER SEQUENCE b.theirs RESTART"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute(sql)
        assert c.execute("SELECT count(*) FROM pg_sequences WHERE schemaname = 'b'"
                         ).fetchall() == [(0,)]
