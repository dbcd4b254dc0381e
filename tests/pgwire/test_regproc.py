"""``'name'::regproc``, ``::regprocedure``, ``to_regproc`` and the function descriptions
psql (``\\df+``, ``\\sf``) and pgcli (``\\sf``, its ``function_definition``) ask for, through
real clients against a real server, with PostgreSQL's errors for unknown and ambiguous
names."""

from __future__ import annotations

import subprocess

import psycopg
import pytest

from .conftest import Server, pg_tool


def _psql(server: Server, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([pg_tool("psql"), "-X", "-c", command], env=server.libpq_env(),
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module", autouse=True)
def _vector(pg_server: Server) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS vector")


def test_regproc_casts(pg_server: Server) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        oid = c.execute("SELECT 'version'::regproc::oid").fetchone()[0]
        assert c.execute("SELECT proname, pronargs FROM pg_proc WHERE oid = %s", (oid,)
                         ).fetchone() == ("version", 0)
        assert c.execute("SELECT 'pg_catalog.version'::pg_catalog.regproc::pg_catalog.oid"
                         ).fetchone() == (oid,)
        assert c.execute("SELECT 'version()'::regprocedure::oid").fetchone() == (oid,)
        assert c.execute("SELECT 'version'::regproc").fetchone() == ("version",)
        # a bound parameter (psycopg binds on the server), as pgcli sends it
        assert c.execute("SELECT %s::pg_catalog.regproc::pg_catalog.oid", ("version",)
                         ).fetchone() == (oid,)
        assert c.execute("SELECT to_regproc('version'), to_regproc('no_such_fn')"
                         ).fetchone() == ("version", None)
        assert c.execute("SELECT to_regproc('version')::oid").fetchone() == (oid,)
        with pytest.raises(psycopg.errors.UndefinedFunction,
                           match='function "no_such_fn" does not exist'):
            c.execute("SELECT 'no_such_fn'::regproc::oid")
        with pytest.raises(psycopg.errors.UndefinedFunction):
            c.execute("SELECT %s::regproc::oid", ("no_such_fn",))
        # pgvector's functions have halfvec / sparsevec overloads: ambiguous by name alone
        with pytest.raises(psycopg.errors.AmbiguousFunction,
                           match='more than one function named "l2_distance"'):
            c.execute("SELECT 'l2_distance'::regproc::oid")
        assert c.execute("SELECT to_regproc('l2_distance')").fetchone() == (None,)
        vec = c.execute("SELECT 'l2_distance(vector, vector)'::regprocedure::oid").fetchone()
        half = c.execute("SELECT 'public.l2_distance(halfvec,halfvec)'::regprocedure::oid"
                         ).fetchone()
        assert vec is not None and half is not None and vec != half
        assert c.execute("SELECT pg_get_function_arguments(%s), pg_get_function_result(%s)",
                         (vec[0], vec[0])).fetchone() == ("vector, vector", "double precision")
        with pytest.raises(psycopg.errors.UndefinedFunction):
            c.execute("SELECT 'l2_distance(integer)'::regprocedure::oid")
        with pytest.raises(psycopg.errors.WrongObjectType, match="aggregate"):
            c.execute("SELECT pg_get_functiondef('count'::regproc::oid)")


def test_psql_sf_and_df_plus(pg_server: Server) -> None:
    run = _psql(pg_server, r"\sf version")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("CREATE OR REPLACE FUNCTION pg_catalog.version()\n")
    assert "LANGUAGE internal" in run.stdout
    run = _psql(pg_server, r"\sf public.vector_norm(vector)")
    assert run.returncode == 0, run.stderr
    assert "RETURNS double precision" in run.stdout and "LANGUAGE c" in run.stdout
    run = _psql(pg_server, r"\sf no_such_fn")
    assert 'ERROR:  function "no_such_fn" does not exist' in run.stderr
    run = _psql(pg_server, r"\sf l2_distance")
    assert 'ERROR:  more than one function named "l2_distance"' in run.stderr
    run = _psql(pg_server, r"\df+ vector_norm")
    assert run.returncode == 0, run.stderr
    assert "vector_norm" in run.stdout and "double precision" in run.stdout
    assert "immutable" in run.stdout and "| c " in run.stdout
    run = _psql(pg_server, r"\df l2_distance")
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("l2_distance") == 3  # vector, halfvec, sparsevec


def test_pgcli_sf(pg_server: Server) -> None:
    from pgcli.pgexecute import PGExecute
    from pgspecial.main import PGSpecial

    ex = PGExecute(database="postgres", user="postgres", password=pg_server.password,
                   host=pg_server.host, port=pg_server.port, dsn="", sslmode="require")
    try:
        source = ex.function_definition("version")
        assert source.startswith("CREATE OR REPLACE FUNCTION pg_catalog.version()")
        with pytest.raises(RuntimeError):
            ex.function_definition("no_such_fn")
        special = PGSpecial()
        results = list(ex.run(r"\sf public.subvector(vector, integer, integer)",
                              pgspecial=special))
        _title, rows, _headers, status, _sql, success, _special = results[0]
        assert success, status
        assert "public.subvector(vector, integer, integer)" in list(rows)[0][0]
    finally:
        ex.conn.close()
