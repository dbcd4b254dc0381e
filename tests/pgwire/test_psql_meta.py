"""psql's describe commands (\\dt, \\di, \\d+, \\df, \\dT, \\ds, \\dx) through the real psql
against a real server."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest

from .conftest import Server

psycopg = pytest.importorskip("psycopg")
pytestmark = pytest.mark.skipif(shutil.which("psql") is None, reason="psql is not installed")


def _psql(server: Server, *commands: str) -> str:
    env = dict(os.environ, PGPASSWORD=server.password, PGSSLMODE="require")
    args = ["psql", "-h", server.host, "-p", str(server.port), "-U", "postgres", "-d",
            "postgres", "-X", "-v", "ON_ERROR_STOP=1"]
    for c in commands:
        args += ["-c", c]
    run = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "ERROR" not in run.stderr, run.stderr
    return run.stdout


def test_describe_commands(pg_server: Server) -> None:
    ws = f"meta_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS vector")
        c.execute(f"CREATE SCHEMA {ws}")
        c.execute(f"CREATE TABLE {ws}.docs (id SERIAL PRIMARY KEY, title TEXT UNIQUE, "
                  "n INT DEFAULT 5 CHECK (n > 0), emb vector(3))")
        c.execute(f"CREATE TABLE {ws}.refs (id INT PRIMARY KEY, doc INT REFERENCES "
                  f"{ws}.docs(id))")
        c.execute(f"CREATE INDEX docs_n_idx ON {ws}.docs (n)")
    out = _psql(pg_server, f"\\dt {ws}.*")
    assert f" {ws} | docs | table | postgres" in out and f" {ws} | refs | table" in out
    out = _psql(pg_server, f"\\di {ws}.*")
    for ix in ("docs_n_idx", "docs_pkey", "docs_title_key", "refs_pkey"):
        assert ix in out
    out = _psql(pg_server, f"\\d+ {ws}.docs")
    assert f'Table "{ws}.docs"' in out
    assert "nextval(" in out and "docs_id_seq'::regclass)" in out
    assert "emb    | vector(3)" in out
    assert '"docs_pkey" PRIMARY KEY, btree (id)' in out
    assert '"docs_title_key" UNIQUE CONSTRAINT, btree (title)' in out
    assert '"docs_n_idx" btree (n)' in out
    assert "CHECK ((n > 0))" in out
    assert f"TABLE \"{ws}.refs\" CONSTRAINT \"refs_doc_fkey\" FOREIGN KEY (doc) REFERENCES " \
           f"{ws}.docs(id)" in out
    out = _psql(pg_server, f"\\ds {ws}.*")
    assert "docs_id_seq | sequence" in out
    out = _psql(pg_server, "\\dx")
    assert " vector " in out
    out = _psql(pg_server, "\\dT")
    assert "vector" in out and "halfvec" in out
    out = _psql(pg_server, "\\df")
    assert "List of functions" in out
