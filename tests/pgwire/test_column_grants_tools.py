"""Column privileges as the Postgres tools see them: psql's ``\\dp`` "Column privileges"
column, and pg_dump's ``GRANT SELECT (col)`` lines, which restore to the same grants."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from .conftest import Server, pg_tool


@pytest.fixture
def ws(pg_server: Server) -> Iterator[str]:
    name = f"colacl_{uuid.uuid4().hex[:8]}"
    role = f"r_{name}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {name}")
        c.execute(f"CREATE TABLE {name}.emp (id INT PRIMARY KEY, name TEXT, salary INT)")
        c.execute(f"INSERT INTO {name}.emp VALUES (1, 'ann', 100), (2, 'bob', 200)")
        c.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'pw-{name}'")
        c.execute(f"GRANT USAGE ON SCHEMA {name} TO {role}")
        c.execute(f"GRANT SELECT (id, name), UPDATE (name) ON {name}.emp TO {role}")
    try:
        yield name
    finally:
        with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
            for s in (name, name + "_r"):
                c.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {name} FROM {role}")
                c.execute(f"DROP SCHEMA IF EXISTS {s} CASCADE")
            c.execute(f"DROP ROLE {role}")


def _psql(server: Server, *commands: str) -> str:
    args = [pg_tool("psql"), "-X", "-v", "ON_ERROR_STOP=1"]
    for c in commands:
        args += ["-c", c]
    run = subprocess.run(args, env=server.libpq_env(), capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_psql_dp_shows_column_privileges(pg_server: Server, ws: str) -> None:
    listing = _psql(pg_server, f"\\dp {ws}.*")
    assert "Column privileges" in listing
    assert f"r_{ws}=rw/postgres" in listing  # name: SELECT and UPDATE
    assert f"r_{ws}=r/postgres" in listing  # id: SELECT


def test_pg_dump_writes_column_grants(pg_server: Server, ws: str, tmp_path: Path) -> None:
    dump = subprocess.run(
        [pg_tool("pg_dump"), "-n", ws],
        env=pg_server.libpq_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dump.returncode == 0, dump.stderr
    script = dump.stdout
    role = f"r_{ws}"
    assert f"GRANT SELECT(id) ON TABLE {ws}.emp TO {role};" in script
    assert f"GRANT SELECT(name),UPDATE(name) ON TABLE {ws}.emp TO {role};" in script
    restored = ws + "_r"
    path = tmp_path / "dump.sql"
    path.write_text(
        script.replace(ws + ".", restored + ".").replace(f"SCHEMA {ws}", f"SCHEMA {restored}")
    )
    run = subprocess.run(
        [pg_tool("psql"), "-X", "-v", "ON_ERROR_STOP=1", "-f", str(path)],
        env=pg_server.libpq_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        acl = (
            "SELECT attname, attacl FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE nspname = %s "
            "AND relname = 'emp' AND attnum > 0 ORDER BY attnum"
        )
        assert (
            c.execute(acl, (restored,)).fetchall()
            == c.execute(acl, (ws,)).fetchall()
            == [
                ("id", [f"{role}=r/postgres"]),
                ("name", [f"{role}=rw/postgres"]),
                ("salary", None),
            ]
        )
