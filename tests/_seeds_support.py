"""What the seeds tests share: the seeds' text, cutting code out of it, and a real
``tarndb serve`` with the seeds' environment (docs/from-deeplake-pg.md's values)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from _ports import free_port

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
needs_seeds = pytest.mark.skipif(not SEEDS.is_dir(), reason="../shared/seeds is absent")

TOKEN = "tdb_seed_verbatim_test_token_0123456789"
PASSWORD = "pw-seeds"
WORKSPACE = "seedws"


def seed(prefix: str) -> str:
    return next(SEEDS.glob(f"{prefix}_*.txt")).read_text(encoding="utf-8")


def cut(text: str, start: str, end: str, after: str = "") -> str:
    """The seed's text from ``start`` to the end of ``end`` (the first of each past
    ``after``)."""
    i = text.index(start, text.index(after) if after else 0)
    j = text.index(end, i) + len(end)
    return text[i:j]


def doctest_code(text: str, first: str) -> str:
    """The Python of one ``>>>`` statement of the seed (with its ``...`` lines)."""
    lines = text[text.index(first):].splitlines()
    out = [lines[0][4:]]
    for line in lines[1:]:
        if not line.startswith("..."):
            break
        out.append(line[4:] if line.startswith("... ") else line[3:])
    return "\n".join(out)


def deeplake_to_tarndb(code: str) -> str:
    """The one import the seeds' README allows to change."""
    return code.replace("from deeplake.db import", "from tarndb.db import").replace(
        "from deeplake import VectorStore", "from tarndb import VectorStore")


@dataclass
class Server:
    url: str
    pg_port: int
    env: dict[str, str]

    def run(self, code: str, timeout: float = 120) -> str:
        """Run code in a fresh interpreter with the seeds' environment; its stdout."""
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=timeout, env=self.env, cwd=self.env["SEED_CWD"])
        assert out.returncode == 0, f"{out.stdout}\n{out.stderr}\n--- code ---\n{code}"
        return out.stdout


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("seeds")
    lake = root / "lake"
    http_port, pg_port = free_port(), free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TARNDB_TOKEN": TOKEN,
           "TARNDB_PASSWORD": PASSWORD, "TARNDB_DEMO": "false"}
    env.pop("LANCE_LOG", None)
    log = root / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tarndb", "serve", "--data", str(lake), "--http-port",
             str(http_port), "--pg-port", str(pg_port), "--log-level", "warning"],
            env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 90
        while True:  # the HTTP API answers, and the Postgres port listens
            assert proc.poll() is None, log.read_text()
            try:
                if requests.get(f"{url}/health", timeout=1).status_code == 200:
                    socket.create_connection(("127.0.0.1", pg_port), timeout=1).close()
                    break
            except (requests.ConnectionError, OSError):
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        # What docs/from-deeplake-pg.md says to set each of the seeds' variables to.
        seed_env = {**env, "BASE_URL": url, "TEST_PG_MANAGED_TOKEN": TOKEN,
                    "ACTIVELOOP_ORG_ID": "default", "ACTIVELOOP_WORKSPACE_ID": WORKSPACE,
                    "SHARED_DLPG_HOST": "127.0.0.1", "SHARED_DLPG_PORT": str(pg_port),
                    "SHARED_DLPG_USER": "postgres", "SHARED_DLPG_PASSWORD": PASSWORD,
                    "SEED_CWD": str(root)}
        yield Server(url, pg_port, seed_env)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
