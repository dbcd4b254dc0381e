"""The first hour with ``tarndb serve`` as a new user meets it: the banner (org, token, how to
get one after a restart), ``tarndb token create``, the org header by id or by name, a clear
error for another org, ``python -m tarndb`` / ``--version``, and no Lance noise."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

import tarndb
from _ports import free_port

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TARNDB_PASSWORD": "pw-first-hour"}
ENV.pop("TARNDB_TOKEN", None)
ENV.pop("LANCE_LOG", None)


class Served:
    def __init__(self, lake: Path, log: Path) -> None:
        self.pg_port, self.http_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tarndb", "serve", "--data", str(lake),
                 "--pg-port", str(self.pg_port), "--http-port", str(self.http_port),
                 "--log-level", "warning"],
                env=ENV, stdout=out, stderr=subprocess.STDOUT)

    def wait_banner(self, timeout_s: float = 90) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace")
            if self.proc.poll() is not None:
                raise RuntimeError(f"tarndb serve exited with {self.proc.returncode}:\n{text}")
            if "HTTP API" in text and re.search(r"org  ", text):
                try:
                    if requests.get(f"{self.url}/health", timeout=1).status_code == 200:
                        return self.log.read_text(errors="replace")
                except requests.ConnectionError:
                    pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"tarndb serve did not start:\n{self.log.read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture()
def lake(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "lake"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tarndb", *args], capture_output=True,
                          text=True, timeout=120, env=ENV)


def test_version_and_python_dash_m() -> None:
    out = _cli("--version")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"tarndb {tarndb.__version__}"
    helped = _cli("--help")
    assert helped.returncode == 0 and "serve" in helped.stdout
    for command in ("serve", "sql"):  # memory_limit's "50%" once broke argparse's help
        helped = _cli(command, "--help")
        assert helped.returncode == 0, helped.stderr
        assert "--memory-limit" in helped.stdout and "default 50%]" in helped.stdout


def test_banner_org_header_and_restart(lake: Path, tmp_path: Path) -> None:
    first = Served(lake, tmp_path / "first.log")
    try:
        text = first.wait_banner()
    finally:
        first.stop()
    # the demo workspace makes tables at start: Lance's "it will be created" warning is gone
    assert "lance::dataset::write::insert" not in text, text
    m = re.search(r"org       default  \(id (org-[0-9a-f-]{36}); X-Activeloop-Org-Id takes "
                  r"either\)", text)
    assert m, text
    org_id = m.group(1)
    tok = re.search(r"admin API token \(shown once; set TARNDB_TOKEN to choose it\): (\S+)",
                    text)
    assert tok, text
    token = tok.group(1)

    # after a restart no token is shown; the banner says how to mint one, and it works
    second = Served(lake, tmp_path / "second.log")
    try:
        text = second.wait_banner()
        assert "admin API token (shown once" not in text
        assert f"tarndb token --data {lake} create --role admin" in text, text
        assert f"(id {org_id};" in text  # the org keeps its id across restarts
        minted = _cli("token", "--data", str(lake), "create", "--role", "read")
        assert minted.returncode == 0, minted.stderr
        assert f"org default (id {org_id}; send either as X-Activeloop-Org-Id)" in minted.stderr
        read_token = minted.stdout.strip()

        url = f"{second.url}/workspaces/demo/tables/query"
        body = {"query": "SELECT 1 AS one"}
        for header in (org_id, "default"):
            for t in (token, read_token):
                r = requests.post(url, json=body, timeout=30, headers={
                    "Authorization": f"Bearer {t}", "X-Activeloop-Org-Id": header})
                assert r.status_code == 200, r.text
                assert r.json()["rows"] == [[1]]
        r = requests.post(url, json=body, timeout=30, headers={
            "Authorization": f"Bearer {token}", "X-Activeloop-Org-Id": "my-activeloop-org"})
        assert r.status_code == 403
        assert r.json() == {"error": {
            "code": "insufficient_privilege", "sqlstate": "42501",
            "message": f"this token belongs to org 'default' (id {org_id}), "
                       "not 'my-activeloop-org'",
            "detail": f"token org: default; org id: {org_id}",
            "hint": f"send X-Activeloop-Org-Id: {org_id} (or default), or omit the header"}}
        me = requests.get(f"{second.url}/me", timeout=30,
                          headers={"Authorization": f"Bearer {read_token}"}).json()
        assert me["org"] == "default" and me["org_id"] == org_id
    finally:
        second.stop()


def test_demo_answers_vector_maxsim_and_hybrid_search(lake: Path, tmp_path: Path) -> None:
    """The README's first command with no further install: the demo table has vectors from
    the default model (no torch) and answers vector, MaxSim and hybrid search over the
    Postgres protocol and HTTP."""
    psycopg = pytest.importorskip("psycopg")
    served = Served(lake, tmp_path / "serve.log")
    try:
        text = served.wait_banner()
        token = re.search(r"admin API token \(shown once; set TARNDB_TOKEN to choose it\): "
                          r"(\S+)", text)
        assert token, text
        queries = {
            "vector": ("SELECT caption FROM shapes "
                       "ORDER BY emb <#> embed('a red round thing') DESC LIMIT 1",
                       "a red circle on a white background"),
            "maxsim": ("SELECT caption FROM shapes "
                       "ORDER BY tok <#> embed_multi('blue triangle') DESC LIMIT 1",
                       "a blue triangle on a white background"),
            "hybrid": ("SELECT caption FROM shapes ORDER BY (emb, caption) <#> "
                       "deeplake_hybrid_record(embed('green square'), 'green square', 0.5, "
                       "0.5) DESC LIMIT 1", "a green square on a white background"),
        }
        deadline = time.monotonic() + 60
        while True:  # /health answers before the Postgres port listens
            try:
                conn = psycopg.connect(host="127.0.0.1", port=served.pg_port, user="postgres",
                                       password=ENV["TARNDB_PASSWORD"], dbname="demo",
                                       autocommit=True)
                break
            except psycopg.OperationalError:
                assert time.monotonic() < deadline, served.log.read_text()
                time.sleep(0.2)
        with conn:
            for sql, want in queries.values():
                assert conn.execute(sql).fetchall() == [(want,)], sql
            idx = conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'shapes' "
                               "ORDER BY indexname").fetchall()
            assert {"shapes_emb", "shapes_tok", "shapes_caption"} <= {r[0] for r in idx}
        for sql, want in queries.values():
            r = requests.post(f"{served.url}/workspaces/demo/tables/query",
                              json={"query": sql}, timeout=60,
                              headers={"Authorization": f"Bearer {token.group(1)}"})
            assert r.status_code == 200, r.text
            assert r.json()["rows"] == [[want]]
    finally:
        served.stop()
