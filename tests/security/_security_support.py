"""Helpers for the security tests: a real ``tarndb serve`` (Postgres protocol, HTTP API and
web UI in one process), attacked with real clients (psycopg, requests, raw sockets).

The lake is seeded as an operator would: workspaces ``ws1`` (the scoped tokens' own) and
``ws2`` (someone else's) with a table ``t`` each and a file in ``ws2``, a non-superuser role
``alice`` with a password and SELECT/UPDATE granted on ws1's tables, and tokens: the admin,
a write and a read token scoped to ``ws1``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import requests

from _ports import free_port

PASSWORD = "postgres-pw-0123"
ADMIN_TOKEN = "tdb_security_admin_token_0123456789"
ORG = "acme"
ALICE_PASSWORD = "alice-pw-4567"


@dataclass
class Stack:
    proc: subprocess.Popen[bytes]
    lake: Path
    pg_port: int
    http_url: str
    tokens: dict[str, str] = field(default_factory=dict)
    ws2_file: str = ""
    #: requests' verify= (False for the self-signed certificate of an HTTPS server)
    verify: bool = True

    # -- Postgres ----------------------------------------------------------------------------

    def pg(self, user: str = "postgres", password: str = PASSWORD, dbname: str = "postgres",
           **extra: Any) -> psycopg.Connection[Any]:
        params: dict[str, Any] = {"host": "127.0.0.1", "port": self.pg_port, "user": user,
                                  "password": password, "dbname": dbname,
                                  "sslmode": "require", "connect_timeout": 10,
                                  "autocommit": True}
        params.update(extra)
        return psycopg.connect(**params)

    def pg_token(self, name: str, **extra: Any) -> psycopg.Connection[Any]:
        """A token login: any user name that is no role, the token as password (TLS)."""
        user = extra.pop("user", "tokenuser")
        return self.pg(user=user, password=self.tokens[name], **extra)

    def admin_sql(self, sql: str) -> list[tuple[Any, ...]]:
        with self.pg() as c:
            cur = c.execute(sql)
            return cur.fetchall() if cur.description else []

    def roles(self) -> list[tuple[Any, ...]]:
        return self.admin_sql("SELECT rolname, rolsuper, rolcreaterole, rolcanlogin "
                              "FROM pg_roles ORDER BY rolname")

    def rows(self, ws: str) -> list[tuple[Any, ...]]:
        return self.admin_sql(f'SELECT id, body FROM "{ws}"."t" ORDER BY id')

    def tables(self, ws: str) -> list[str]:
        return [r[0] for r in self.admin_sql(
            "SELECT table_name FROM information_schema.tables "
            f"WHERE table_schema = '{ws}' ORDER BY 1")]

    # -- HTTP --------------------------------------------------------------------------------

    def headers(self, name: str) -> dict[str, str]:
        token = ADMIN_TOKEN if name == "admin" else self.tokens[name]
        return {"Authorization": f"Bearer {token}"}

    def http_sql(self, name: str, sql: str, ws: str = "ws1") -> requests.Response:
        return requests.post(f"{self.http_url}/workspaces/{ws}/tables/query",
                             headers=self.headers(name), json={"query": sql}, timeout=60,
                             verify=self.verify)

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")


def start_stack(lake: Path, extra_env: dict[str, str] | None = None) -> Stack:
    pg_port, http_port = free_port(), free_port()
    # Failed logins are throttled; the shared server answers them at once (test_limits.py
    # checks the throttling on a server of its own).
    env = {**os.environ, "TARNDB_PASSWORD": PASSWORD, "TARNDB_TOKEN": ADMIN_TOKEN,
           "TARNDB_ORG": ORG, "TARNDB_DEMO": "false", "HF_HUB_OFFLINE": "1",
           "TARNDB_AUTH_FAILURE_DELAY": "0", "TARNDB_REQUIRE_TLS_ROLES": "alice",
           **(extra_env or {})}
    log = open(lake.parent / f"serve-{pg_port}.log", "wb")  # noqa: SIM115 - read on failure
    proc = subprocess.Popen(
        [sys.executable, "-m", "tarndb.cli", "serve", "--data", str(lake), "--host",
         "127.0.0.1", "--pg-port", str(pg_port), "--http-port", str(http_port)],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    https = (extra_env or {}).get("TARNDB_HTTP_TLS", "").lower() in ("1", "true", "on")
    url = f"{'https' if https else 'http'}://127.0.0.1:{http_port}"
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            raise RuntimeError("tarndb serve exited: "
                               + (lake.parent / f"serve-{pg_port}.log").read_text())
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("tarndb serve did not start in 90 s")
        try:
            if requests.get(f"{url}/health", timeout=1, verify=not https).status_code == 200:
                with socket.create_connection(("127.0.0.1", pg_port), timeout=1):
                    break
        except OSError:
            pass
        time.sleep(0.2)
    return Stack(proc, lake, pg_port, url, verify=not https)


def stop_stack(stack: Stack) -> None:
    stack.proc.terminate()
    try:
        stack.proc.wait(15)
    except subprocess.TimeoutExpired:
        stack.proc.kill()
        stack.proc.wait()


def seed(stack: Stack) -> None:
    with stack.pg() as c:
        for ws, n in (("ws1", 2), ("ws2", 3)):
            c.execute(f'CREATE TABLE "{ws}"."t" (id INT, body TEXT, emb FLOAT4[])')
            for i in range(1, n + 1):
                c.execute(f'INSERT INTO "{ws}"."t" VALUES ({i}, \'{ws} row {i}\', '
                          f"ARRAY[{i}, 1]::float4[])")
        c.execute(f"CREATE ROLE alice LOGIN PASSWORD '{ALICE_PASSWORD}'")
        # alice may read and update ws1's tables (not insert or delete), nothing in ws2
        c.execute("GRANT USAGE ON SCHEMA ws1 TO alice")
        c.execute("GRANT SELECT, UPDATE ON ALL TABLES IN SCHEMA ws1 TO alice")
    stack.tokens["admin"] = ADMIN_TOKEN
    for name, role in (("write", "write"), ("read", "read")):
        r = requests.post(f"{stack.http_url}/tokens", headers=stack.headers("admin"),
                          json={"role": role, "workspaces": ["ws1"], "name": name}, timeout=30,
                          verify=stack.verify)
        assert r.status_code == 201, r.text
        stack.tokens[name] = r.json()["token"]
    r = requests.post(f"{stack.http_url}/workspaces/ws2/files", headers=stack.headers("admin"),
                      files={"file": ("secret.txt", b"ws2 secret bytes", "text/plain")},
                      timeout=30, verify=stack.verify)
    assert r.status_code == 201, r.text
    stack.ws2_file = r.json()["id"]


# -- a raw Postgres client (exact SQLSTATEs at login, which libpq does not expose) ------------


def _read_message(sock: Any) -> tuple[bytes, bytes]:
    head = _read_exact(sock, 5)
    n = int.from_bytes(head[1:5], "big")
    return head[:1], _read_exact(sock, n - 4)


def _read_exact(sock: Any, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk
    return buf


def error_fields(body: bytes) -> dict[str, str]:
    out = {}
    for part in body.split(b"\0"):
        if part:
            out[chr(part[0])] = part[1:].decode()
    return out


def token_login(stack: Stack, password: str, user: str = "tokenuser",
                **params: str) -> dict[str, str]:
    """Log in over TLS with a cleartext password (how tokens log in); returns the
    ErrorResponse fields, or {} when the login succeeded (ReadyForQuery)."""
    import ssl

    from tarndb.pgwire import messages as m

    raw = socket.create_connection(("127.0.0.1", stack.pg_port), timeout=30)
    raw.sendall(m.f_ssl_request())
    assert raw.recv(1) == b"S"
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with ctx.wrap_socket(raw) as sock:
        sock.sendall(m.f_startup({"user": user, "database": "postgres", **params}))
        while True:
            kind, body = _read_message(sock)
            if kind == b"E":
                return error_fields(body)
            if kind == b"Z":
                return {}
            if kind == b"R" and body[:4] == (3).to_bytes(4, "big"):  # cleartext password
                data = password.encode() + b"\0"
                sock.sendall(b"p" + (len(data) + 4).to_bytes(4, "big") + data)
            elif kind == b"R" and body[:4] == (10).to_bytes(4, "big"):  # SASL: a role
                return {"C": "SASL", "M": "a SCRAM login was asked for"}
