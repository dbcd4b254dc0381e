"""TLS where the operator asks for it: --require-tls refuses Postgres clients that did not
negotiate TLS (as a hostssl-only pg_hba.conf does), --http-tls serves the HTTP API and the web
UI over HTTPS with the Postgres port's certificate."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests
from _security_support import ALICE_PASSWORD, PASSWORD, Stack, seed, start_stack, stop_stack

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base: Path = tmp_path_factory.mktemp("tls")
    s = start_stack(base / "lake", {"TARNDB_REQUIRE_TLS": "true", "TARNDB_HTTP_TLS": "true"})
    try:
        seed(s)
        yield s
    finally:
        stop_stack(s)


def test_plaintext_postgres_is_refused(tls_stack: Stack) -> None:
    for user, password in (("postgres", PASSWORD), ("tokenuser", tls_stack.tokens["write"])):
        with pytest.raises(psycopg.OperationalError, match="no encryption"):
            tls_stack.pg(user=user, password=password, sslmode="disable").close()
    with tls_stack.pg(sslmode="require") as c:
        assert c.pgconn.ssl_in_use
        assert c.execute("SELECT count(*) FROM ws1.t").fetchone() == (2,)


def test_http_api_is_https_with_the_postgres_certificate(tls_stack: Stack) -> None:
    assert tls_stack.http_url.startswith("https://")
    r = tls_stack.http_sql("read", "SELECT count(*) FROM t")
    assert r.status_code == 200 and r.json()["rows"] == [[2]]
    with pytest.raises(requests.ConnectionError):
        requests.get(tls_stack.http_url.replace("https://", "http://") + "/health", timeout=5)
    host, port = tls_stack.http_url.removeprefix("https://").split(":")
    http_cert = ssl.get_server_certificate((host, int(port)))
    pg_cert = (tls_stack.lake / "tls" / "server.crt").read_text()
    assert ssl.PEM_cert_to_DER_cert(http_cert) == ssl.PEM_cert_to_DER_cert(pg_cert)


def test_web_session_cookie_is_secure_over_https(tls_stack: Stack) -> None:
    r = requests.post(f"{tls_stack.http_url}/ui/session", headers=tls_stack.headers("read"),
                      timeout=30, verify=False)
    assert r.status_code == 200, r.text
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("tarndb_session=")
    for flag in ("HttpOnly", "Secure", "SameSite=strict", "Path=/"):
        assert flag in cookie, cookie
    assert tls_stack.tokens["read"] not in cookie


def test_tls_required_per_role(stack: Stack) -> None:
    """The shared server requires TLS for alice only (--require-tls-roles alice)."""
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        stack.pg(user="alice", password=ALICE_PASSWORD, sslmode="disable").close()
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        stack.pg(user="alice@ws1", password=ALICE_PASSWORD, sslmode="disable").close()
    with stack.pg(user="alice", password=ALICE_PASSWORD, sslmode="require") as c:
        assert c.pgconn.ssl_in_use
    with stack.pg(sslmode="disable") as c:  # other roles may still use plaintext
        assert not c.pgconn.ssl_in_use
        assert c.execute("SELECT current_user").fetchone() == ("postgres",)

