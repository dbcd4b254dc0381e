"""SCRAM-SHA-256 against the RFC 7677 test vector and PostgreSQL's verifier format."""

from __future__ import annotations

import base64

import pytest

from tarndb.errors import InvalidPassword, ProtocolViolation
from tarndb.pgwire import scram

RFC_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")


def test_rfc7677_vector() -> None:
    verifier = scram.make_verifier("pencil", iterations=4096, salt=RFC_SALT)
    srv = scram.ScramServer(verifier)
    srv.first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
    # Pin the server's nonce to the RFC's so the whole exchange is the published one.
    srv._nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    srv._server_first = f"r={srv._nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    final = srv.final(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                      b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    assert final == b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def test_verifier_format_matches_postgres() -> None:
    v = scram.make_verifier("pencil", iterations=4096, salt=RFC_SALT)
    mech, rest = v.split("$", 1)
    assert mech == "SCRAM-SHA-256"
    assert rest.startswith("4096:W22ZaJ0SNY7soEsUEjb6gQ==$")
    assert scram.check_password(v, "pencil")
    assert not scram.check_password(v, "pencil2")


def _exchange(verifier: str | None, password: str) -> bool:
    srv = scram.ScramServer(verifier)
    cli = scram.ScramClient("u", password)
    server_first = srv.first(cli.first())
    final = srv.final(cli.final(server_first))
    return cli.verify(final)


def test_full_exchange() -> None:
    v = scram.make_verifier("secret")
    assert _exchange(v, "secret")
    with pytest.raises(InvalidPassword):
        _exchange(v, "wrong")


def test_unknown_user_fails_like_a_wrong_password() -> None:
    with pytest.raises(InvalidPassword):
        _exchange(None, "anything")


@pytest.mark.parametrize("first", [b"", b"x,,n=,r=abc", b"n,,n=", b"p=tls-server-end-point,,n=,r=a",
                                   b"\xff\xfe"])
def test_malformed_client_first(first: bytes) -> None:
    with pytest.raises(ProtocolViolation):
        scram.ScramServer(scram.make_verifier("x")).first(first)


def test_nonce_mismatch() -> None:
    srv = scram.ScramServer(scram.make_verifier("x"))
    srv.first(b"n,,n=,r=abc")
    with pytest.raises(ProtocolViolation):
        srv.final(b"c=biws,r=other,p=AAAA")
