"""Helpers shared by the HTTP API tests (tokens, servers, sample media)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from _ports import free_port
from tarndb.api import TokenStore

ORG = "acme"


@dataclass
class Tokens:
    admin: str
    write: str  # workspace "ws1" only
    read: str  # workspace "ws1" only
    write_all: str  # every workspace
    other_org: str


def make_tokens(db: Any) -> Tokens:
    ts = TokenStore(db.catalog)
    return Tokens(
        admin=ts.create(org=ORG, role="admin", name="admin")[0],
        write=ts.create(org=ORG, role="write", workspaces=["ws1"], name="w")[0],
        read=ts.create(org=ORG, role="read", workspaces=["ws1"], name="r")[0],
        write_all=ts.create(org=ORG, role="write", workspaces="*", name="wa")[0],
        other_org=ts.create(org="globex", role="admin", name="other")[0],
    )


def bearer(token: str, org: str | None = None) -> dict[str, str]:
    h = {"Authorization": f"Bearer {token}"}
    if org is not None:
        h["X-Activeloop-Org-Id"] = org
    return h


def png(color: tuple[int, int, int] = (40, 80, 200), size: int = 256) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), color=color).save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class Server:
    url: str
    token: str  # admin of ORG, registered like TARNDB_TOKEN
    proc: subprocess.Popen[bytes]
    lake: Path

    def rss_peak_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise RuntimeError("no VmHWM")

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def anon_kb(self) -> int:
        """Anonymous (heap, not file-backed) resident memory."""
        for line in Path(f"/proc/{self.proc.pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Anonymous:"):
                return int(line.split()[1])
        raise RuntimeError("no Anonymous in smaps_rollup")


def start_server(lake: Path, extra_env: dict[str, str] | None = None) -> Server:
    port = free_port()
    token = "tdb_test_admin_token_0123456789"
    env = {**os.environ, **(extra_env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tarndb.api", "--data", str(lake), "--port", str(port),
         "--org", ORG, "--token", token],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_until_healthy(proc, url)
    return Server(url, token, proc, lake)


def wait_until_healthy(proc: subprocess.Popen[bytes], url: str, timeout_s: float = 60) -> None:
    """Wait for ``GET {url}/health`` to answer 200. A server that exits first raises with
    its output; one that does not answer in time is killed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise RuntimeError(f"server exited with {proc.returncode}:\n{out}")
        try:
            if requests.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server did not start in {timeout_s:g} s")


def stop_server(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(10)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()
