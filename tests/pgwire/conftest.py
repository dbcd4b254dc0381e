"""Fixtures for the Postgres protocol tests: a real server in a subprocess and in a thread."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import tarndb
from tarndb.pgwire.server import ServerThread

PASSWORD = "s3cret-pw"


#: Debian's PostgreSQL 15 client programs (scripts/test installs postgresql-client).
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def pg_tool(name: str) -> str:
    """The path of a PostgreSQL client program (psql, pg_dump). A missing one fails the
    test: scripts/test installs them, and a skipped test would prove nothing."""
    found = str(PG_BIN / name) if (PG_BIN / name).exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (scripts/test installs Debian's "
                    "postgresql-client)")
    return found


@dataclass
class Server:
    host: str
    port: int
    password: str
    data: Path
    proc: subprocess.Popen[bytes] | None = None

    def dsn(self, **extra: str) -> str:
        params = {"host": self.host, "port": str(self.port), "user": "postgres",
                  "password": self.password, "dbname": "postgres", "sslmode": "require"}
        params.update(extra)
        return " ".join(f"{k}={v}" for k, v in params.items())

    def libpq_env(self) -> dict[str, str]:
        """The environment that points libpq programs (psql, pg_dump) at this server."""
        return dict(os.environ, PGPASSWORD=self.password, PGSSLMODE="require",
                    PGHOST=self.host, PGPORT=str(self.port), PGUSER="postgres",
                    PGDATABASE="postgres")

    def url(self, driver: str = "postgresql") -> str:
        return (f"{driver}://postgres:{self.password}@{self.host}:{self.port}/postgres"
                "?sslmode=require")

    def alive(self) -> bool:
        return self.proc is None or self.proc.poll() is None


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``python -m tarndb.pgwire`` in a subprocess over a fresh lake, shared by a test run."""
    data = tmp_path_factory.mktemp("pglake")
    port_file = data / "port"
    log = open(data / "server.log", "wb")  # noqa: SIM115 - closed at teardown
    env = dict(os.environ, TARNDB_PASSWORD=PASSWORD)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tarndb.pgwire", "--data", str(data / "lake"), "--port", "0",
         "--port-file", str(port_file)], stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.time() + 60
    while not port_file.exists():
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise RuntimeError("server did not start: " + (data / "server.log").read_text())
        time.sleep(0.05)
    server = Server("127.0.0.1", int(port_file.read_text()), PASSWORD, data, proc)
    yield server
    alive = server.alive()
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
    assert alive, "the server died during the tests: " + (data / "server.log").read_text()


@pytest.fixture
def thread_server(tmp_path: Path) -> Iterator[tuple[Server, ServerThread, tarndb.Database]]:
    """The server on a thread in this process (to look at its internals)."""
    db = tarndb.open(str(tmp_path / "lake"))
    srv = ServerThread(db, port=0, password=PASSWORD, data_dir=tmp_path).start()
    yield Server("127.0.0.1", srv.port, PASSWORD, tmp_path), srv, db
    srv.stop()
    db.close()
