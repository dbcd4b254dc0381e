"""SCRAM-SHA-256 (RFC 5802 / RFC 7677), the server side, as PostgreSQL speaks it.

Passwords are never stored: a role keeps a verifier in PostgreSQL's own format,
``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` (base64 fields), so a verifier
made by ``psql``'s ``\\password`` (which sends it pre-hashed) is accepted as is.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from ..errors import InvalidPassword, ProtocolViolation

MECHANISM = "SCRAM-SHA-256"
DEFAULT_ITERATIONS = 4096


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def _hmac(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


def _saslprep(password: str) -> str:
    # RFC 4013 SASLprep; Postgres falls back to the raw bytes when a password is not valid
    # UTF-8 or contains prohibited characters. NFKC covers the cases that matter in practice.
    import unicodedata

    return unicodedata.normalize("NFKC", password)


def make_verifier(password: str, *, iterations: int = DEFAULT_ITERATIONS,
                  salt: bytes | None = None) -> str:
    """The stored verifier for ``password`` (what ``CREATE ROLE ... PASSWORD`` keeps)."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", _saslprep(password).encode("utf-8"), salt, iterations)
    client_key = _hmac(salted, b"Client Key")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = _hmac(salted, b"Server Key")
    return f"{MECHANISM}${iterations}:{_b64(salt)}${_b64(stored_key)}:{_b64(server_key)}"


@dataclass(frozen=True)
class Verifier:
    iterations: int
    salt: bytes
    stored_key: bytes
    server_key: bytes

    @classmethod
    def parse(cls, text: str) -> Verifier:
        try:
            mech, rest = text.split("$", 1)
            iter_salt, keys = rest.split("$", 1)
            iters, salt = iter_salt.split(":", 1)
            stored, server = keys.split(":", 1)
            if mech != MECHANISM:
                raise ValueError(mech)
            return cls(int(iters), base64.b64decode(salt, validate=True),
                       base64.b64decode(stored, validate=True),
                       base64.b64decode(server, validate=True))
        except (ValueError, TypeError) as e:
            raise ValueError("not a SCRAM-SHA-256 verifier") from e


def is_verifier(text: str) -> bool:
    try:
        Verifier.parse(text)
        return True
    except ValueError:
        return False


def check_password(verifier: str, password: str) -> bool:
    """Whether ``password`` matches ``verifier`` (for cleartext password auth and tests)."""
    v = Verifier.parse(verifier)
    salted = hashlib.pbkdf2_hmac("sha256", _saslprep(password).encode("utf-8"), v.salt,
                                 v.iterations)
    return hmac.compare_digest(hashlib.sha256(_hmac(salted, b"Client Key")).digest(),
                               v.stored_key)


def _attrs(msg: str) -> list[tuple[str, str]]:
    out = []
    for part in msg.split(","):
        if len(part) < 2 or part[1] != "=":
            raise ProtocolViolation("malformed SCRAM message")
        out.append((part[0], part[2:]))
    return out


class ScramServer:
    """One SCRAM exchange. With ``verifier=None`` (unknown role) it runs the whole exchange
    against a random verifier and fails at the end, so a client cannot tell unknown roles from
    wrong passwords (what PostgreSQL does)."""

    def __init__(self, verifier: str | None, *, mock_salt: bytes | None = None) -> None:
        if verifier is None:
            # The same salt for the same unknown name every time (PostgreSQL's
            # scram_mock_salt): a salt that changed per attempt would tell the roles apart.
            salt = mock_salt if mock_salt is not None else secrets.token_bytes(16)
            self._v = Verifier(DEFAULT_ITERATIONS, salt,
                               secrets.token_bytes(32), secrets.token_bytes(32))
            self._doomed = True
        else:
            self._v = Verifier.parse(verifier)
            self._doomed = False
        self._nonce = ""
        self._client_first_bare = ""
        self._server_first = ""
        self._gs2 = ""

    def first(self, client_first: bytes) -> bytes:
        """Handle client-first-message; returns server-first-message."""
        try:
            msg = client_first.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ProtocolViolation("malformed SCRAM message") from e
        # gs2-header: "n,," (no channel binding) or "y,," (client could but server didn't offer).
        # "p=..." asks for channel binding, which we do not advertise.
        if msg.startswith("p="):
            raise ProtocolViolation("channel binding is not supported by this server")
        if not (msg.startswith("n,") or msg.startswith("y,")):
            raise ProtocolViolation("malformed SCRAM message")
        parts = msg.split(",", 2)
        if len(parts) != 3:
            raise ProtocolViolation("malformed SCRAM message")
        self._gs2 = parts[0] + "," + parts[1] + ","
        self._client_first_bare = parts[2]
        attrs = dict(_attrs(self._client_first_bare))
        cnonce = attrs.get("r")
        if not cnonce:
            raise ProtocolViolation("malformed SCRAM message: no nonce")
        self._nonce = cnonce + _b64(secrets.token_bytes(18))
        self._server_first = f"r={self._nonce},s={_b64(self._v.salt)},i={self._v.iterations}"
        return self._server_first.encode("ascii")

    def final(self, client_final: bytes) -> bytes:
        """Handle client-final-message; returns server-final-message or raises 28P01."""
        try:
            msg = client_final.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ProtocolViolation("malformed SCRAM message") from e
        attrs = _attrs(msg)
        d = dict(attrs)
        if "c" not in d or "r" not in d or "p" not in d or attrs[-1][0] != "p":
            raise ProtocolViolation("malformed SCRAM message")
        if d["r"] != self._nonce:
            raise ProtocolViolation("SCRAM nonce mismatch")
        if base64.b64decode(d["c"]) != self._gs2.encode("ascii"):
            raise ProtocolViolation("SCRAM channel binding check failed")
        without_proof = msg[:msg.rindex(",p=")]
        auth_message = ",".join([self._client_first_bare, self._server_first,
                                 without_proof]).encode("utf-8")
        try:
            proof = base64.b64decode(d["p"], validate=True)
        except ValueError as e:
            raise ProtocolViolation("malformed SCRAM proof") from e
        client_sig = _hmac(self._v.stored_key, auth_message)
        if len(proof) != len(client_sig):
            raise InvalidPassword("password authentication failed")
        client_key = bytes(a ^ b for a, b in zip(proof, client_sig, strict=False))
        ok = hmac.compare_digest(hashlib.sha256(client_key).digest(), self._v.stored_key)
        if not ok or self._doomed:
            raise InvalidPassword("password authentication failed")
        server_sig = _hmac(self._v.server_key, auth_message)
        return f"v={_b64(server_sig)}".encode("ascii")


class ScramClient:
    """The client side, for tests and for the fuzzer to get past authentication."""

    def __init__(self, user: str, password: str) -> None:
        self.password = password
        self.nonce = _b64(secrets.token_bytes(18))
        self.first_bare = f"n=,r={self.nonce}"
        self._auth_message = b""
        self._salted = b""

    def first(self) -> bytes:
        return ("n,," + self.first_bare).encode()

    def final(self, server_first: bytes) -> bytes:
        attrs = dict(_attrs(server_first.decode()))
        salt = base64.b64decode(attrs["s"])
        self._salted = hashlib.pbkdf2_hmac("sha256", _saslprep(self.password).encode(), salt,
                                           int(attrs["i"]))
        without_proof = f"c={_b64(b'n,,')},r={attrs['r']}"
        self._auth_message = ",".join([self.first_bare, server_first.decode(),
                                       without_proof]).encode()
        client_key = _hmac(self._salted, b"Client Key")
        sig = _hmac(hashlib.sha256(client_key).digest(), self._auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, sig, strict=False))
        return f"{without_proof},p={_b64(proof)}".encode()

    def verify(self, server_final: bytes) -> bool:
        expected = _hmac(_hmac(self._salted, b"Server Key"), self._auth_message)
        return server_final.decode() == f"v={_b64(expected)}"


def mock_salt(key: bytes, user: str) -> bytes:
    """The salt shown to ``user`` when it has no verifier: stable for a server's ``key``."""
    return hmac.new(key, user.encode("utf-8"), hashlib.sha256).digest()[:16]
