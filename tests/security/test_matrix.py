"""The privilege matrix: who may do what, over which protocol.

{admin token, write token for ws1, read token for ws1, role ``alice`` with a password} x
{SQL over HTTP, the web UI's session cookie, the Postgres protocol} x {own workspace, other
workspace, roles, files, models}, and the HTTP endpoints for files and jobs. Each cell is
run against the real server and must give exactly the expected outcome ("ok" or the
SQLSTATE), and the other workspace and the roles are unchanged afterwards.

A role that logs in with a password (not a token) has what was GRANTed to it: alice has
USAGE on ws1 and SELECT, UPDATE on its tables, nothing on ws2, and no CREATEROLE. HTTP and
the web UI take tokens only.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
import requests
from _security_support import ALICE_PASSWORD, Stack

OPS = {
    "own_read": "SELECT count(*) FROM ws1.t",
    "own_write": "UPDATE ws1.t SET body = body WHERE id = 1",
    "other_read": "SELECT count(*) FROM ws2.t",
    "other_write": "UPDATE ws2.t SET body = body WHERE id = 1",
    "roles": "CREATE ROLE matrix_probe",
    "own_files": "SELECT count(*) FROM ws1._files",
    "other_files": 'SELECT count(*) FROM "ws2"."_files"',
    "model_path": "SELECT embed('st:/etc', 'x')",
    "model_registry": "SELECT array_length(embed('minilm', 'x'), 1)",
}
OK, DENIED = "ok", "42501"
EXPECTED: dict[str, dict[str, str]] = {
    "admin": {**dict.fromkeys(OPS, OK), "model_path": DENIED},
    "write": {"own_read": OK, "own_write": OK, "other_read": DENIED, "other_write": DENIED,
              "roles": DENIED, "own_files": OK, "other_files": DENIED, "model_path": DENIED,
              "model_registry": OK},
    "read": {"own_read": OK, "own_write": DENIED, "other_read": DENIED,
             "other_write": DENIED, "roles": DENIED, "own_files": OK, "other_files": DENIED,
             "model_path": DENIED, "model_registry": OK},
    "alice": {"own_read": OK, "own_write": OK, "other_read": DENIED, "other_write": DENIED,
              "roles": DENIED, "own_files": OK, "other_files": DENIED, "model_path": DENIED,
              "model_registry": OK},
}


def _http(stack: Stack, who: str, sql: str) -> str:
    if who == "alice":  # a role's password is no API token
        r = requests.post(f"{stack.http_url}/workspaces/ws1/tables/query",
                          headers={"Authorization": f"Bearer {ALICE_PASSWORD}"},
                          json={"query": sql}, timeout=60)
        assert r.status_code == 401, r.text
        return "401"
    r = stack.http_sql(who, sql)
    if r.status_code == 200:
        return OK
    return str(r.json()["error"]["sqlstate"])


def _web(stack: Stack, who: str, sql: str) -> str:
    """As the web UI does it: sign in once, then only the session cookie and X-Tarndb-UI."""
    s = requests.Session()
    token = ALICE_PASSWORD if who == "alice" else stack.headers(who)["Authorization"][7:]
    r = s.post(f"{stack.http_url}/ui/session", headers={"Authorization": f"Bearer {token}"},
               timeout=60)
    if r.status_code != 200:
        return str(r.status_code)
    r = s.post(f"{stack.http_url}/workspaces/ws1/tables/query", json={"query": sql},
               headers={"X-Tarndb-UI": "1"}, timeout=60)
    s.delete(f"{stack.http_url}/ui/session", headers={"X-Tarndb-UI": "1"}, timeout=60)
    return OK if r.status_code == 200 else str(r.json()["error"]["sqlstate"])


def _pg(stack: Stack, who: str, sql: str) -> str:
    conn: Any = (stack.pg(user="alice", password=ALICE_PASSWORD) if who == "alice"
                 else stack.pg_token(who))
    with conn as c:
        try:
            c.execute(sql)
        except psycopg.Error as e:
            return str(e.sqlstate)
    return OK


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("protocol", ["http", "web", "pg"])
@pytest.mark.parametrize("who", list(EXPECTED))
def test_matrix(stack: Stack, who: str, protocol: str, op: str) -> None:
    roles_before = stack.roles()
    ws2_before = stack.rows("ws2")
    run = {"http": _http, "web": _web, "pg": _pg}[protocol]
    got = run(stack, who, OPS[op])
    if got == OK and op == "roles":
        stack.admin_sql("DROP ROLE matrix_probe")
    want = "401" if (protocol != "pg" and who == "alice") else EXPECTED[who][op]
    assert got == want, f"{who} over {protocol}: {op}"
    assert stack.roles() == roles_before
    assert stack.rows("ws2") == ws2_before


@pytest.mark.parametrize("who", ["admin", "write", "read"])
def test_http_endpoints_matrix(stack: Stack, who: str) -> None:
    """Files and jobs over their own HTTP endpoints: own workspace yes, other one 403."""
    def get(path: str) -> int:
        return requests.get(f"{stack.http_url}{path}", headers=stack.headers(who),
                            timeout=60).status_code

    other_ok = who == "admin"
    assert get("/workspaces/ws1/files") == 200
    assert get("/workspaces/ws1/jobs") == 200
    assert get("/workspaces/ws1/tables") == 200
    for path in ("/workspaces/ws2/files", f"/workspaces/ws2/files/{stack.ws2_file}",
                 f"/workspaces/ws2/files/{stack.ws2_file}/content",
                 f"/workspaces/ws2/files/{stack.ws2_file}/download",
                 "/workspaces/ws2/jobs", "/workspaces/ws2/tables", "/workspaces/ws2/tables/t"):
        assert get(path) == (200 if other_ok else 403), path
    up = requests.post(f"{stack.http_url}/workspaces/ws2/files", headers=stack.headers(who),
                       files={"file": ("p.txt", b"planted", "text/plain")}, timeout=60)
    assert up.status_code == (201 if other_ok else 403), up.text
    if other_ok:
        requests.delete(f"{stack.http_url}/workspaces/ws2/files/{up.json()['id']}",
                        headers=stack.headers(who), timeout=60)
    # a file of ws2 is not reachable through ws1's path either
    assert get(f"/workspaces/ws1/files/{stack.ws2_file}/content") == 404
    assert stack.admin_sql('SELECT count(*) FROM "ws2"."_files"') == [(1,)]

