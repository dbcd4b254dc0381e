"""API tokens: who may call the HTTP API, in which org and workspaces, with which role.

A token is a random string shown once. The catalog keeps only its SHA-256, under the key
``sha256(token)[:16]`` (the token id), so a lookup is one ``get_object`` whatever the token's
shape, which lets an operator bring their own (``TARNDB_TOKEN``). Roles are ordered
``read < write < admin``; a token's workspaces are a list or ``"*"`` for all of its org's.
This module has no web dependencies so the CLI and the Postgres front end can use it too.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..errors import InvalidRequest, NotFound

KIND = "token"
ROLES = ("read", "write", "admin")
_RANK = {r: i for i, r in enumerate(ROLES)}
TOKEN_PREFIX = "tdb_"
# Revocation reaches every server within this many seconds; lookups in between are free.
CACHE_TTL_S = 5.0
#: An unknown token makes the catalog be re-read at most this often.
_MISS_REFRESH_S = 0.05


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_id_of(token: str) -> str:
    return _digest(token)[:16]


@dataclass(frozen=True)
class Token:
    id: str
    name: str
    org: str
    workspaces: tuple[str, ...] | None  # None means every workspace of the org
    role: str
    created_at: str

    def allows_workspace(self, workspace: str) -> bool:
        return self.workspaces is None or workspace in self.workspaces

    def has_role(self, role: str) -> bool:
        return _RANK[self.role] >= _RANK[role]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "org": self.org,
            "workspaces": "*" if self.workspaces is None else list(self.workspaces),
            "role": self.role,
            "created_at": self.created_at,
        }

    @classmethod
    def _from_spec(cls, spec: dict[str, Any]) -> Token:
        ws = spec.get("workspaces", "*")
        return cls(spec["id"], spec.get("name", ""), spec["org"],
                   None if ws == "*" else tuple(ws), spec["role"], spec.get("created_at", ""))


def _check_scope(role: str, workspaces: Any) -> tuple[str, ...] | None:
    if role not in _RANK:
        raise InvalidRequest(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if workspaces == "*" or workspaces is None:
        return None
    if isinstance(workspaces, str):
        workspaces = [w for w in workspaces.split(",") if w]
    if not isinstance(workspaces, (list, tuple)) or not workspaces or not all(
            isinstance(w, str) and w for w in workspaces):
        raise InvalidRequest('workspaces must be "*" or a non-empty list of workspace names')
    from ..files import check_workspace

    return tuple(check_workspace(w) for w in workspaces)


class TokenStore:
    """Tokens in a database's catalog, with a short-lived cache of verified tokens."""

    def __init__(self, catalog: Any) -> None:
        self.catalog = catalog
        self._cache: dict[str, tuple[Token | None, float]] = {}
        self._forced_at = float("-inf")
        self._guard = threading.Lock()

    def create(self, *, org: str, role: str = "write", workspaces: Any = "*", name: str = "",
               token: str | None = None) -> tuple[str, Token]:
        """Mint a token (or register ``token`` as given); returns the plaintext, shown once."""
        if not isinstance(org, str) or not org:
            raise InvalidRequest("org must be a non-empty string")
        scope = _check_scope(role, workspaces)
        plaintext = token if token is not None else TOKEN_PREFIX + secrets.token_urlsafe(32)
        if len(plaintext) < 8:
            raise InvalidRequest("a token must be at least 8 characters")
        digest = _digest(plaintext)
        spec: dict[str, Any] = {
            "id": digest[:16],
            "sha256": digest,
            "name": name or "",
            "org": org,
            "workspaces": "*" if scope is None else list(scope),
            "role": role,
            "created_at": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
        }
        self.catalog.put_object(KIND, spec["id"], spec)
        with self._guard:
            self._cache.pop(digest, None)
        return plaintext, Token._from_spec(spec)

    def list(self, org: str | None = None) -> list[Token]:
        out = [Token._from_spec(s) for s in self.catalog.list_objects(KIND).values()]
        if org is not None:
            out = [t for t in out if t.org == org]
        return sorted(out, key=lambda t: (t.created_at, t.id))

    def get(self, token_id: str) -> Token:
        spec = self.catalog.get_object(KIND, token_id)
        if spec is None:
            raise NotFound(f"token {token_id!r} not found")
        return Token._from_spec(spec)

    def revoke(self, token_id: str) -> Token:
        tok = self.get(token_id)
        self.catalog.delete_object(KIND, token_id)
        with self._guard:
            self._cache = {k: v for k, v in self._cache.items()
                           if v[0] is None or v[0].id != token_id}
        return tok

    def cached(self, token: str) -> tuple[bool, Token | None]:
        """``(True, record)`` when a recent lookup of ``token`` is still fresh; no I/O, so
        callers on an event loop can try this first."""
        digest = _digest(token)
        with self._guard:
            hit = self._cache.get(digest)
        if hit is not None and hit[1] > time.monotonic():
            return True, hit[0]
        return False, None

    def authenticate(self, token: str) -> Token | None:
        """The token's record if it is valid, else None."""
        fresh, found = self.cached(token)
        if fresh:
            return found
        digest = _digest(token)
        now = time.monotonic()
        spec = self.catalog.get_object(KIND, digest[:16])
        if spec is None and now - self._forced_at >= _MISS_REFRESH_S:
            # Perhaps minted a moment ago by another server on the lake: look at the newest
            # catalog (at most every _MISS_REFRESH_S, so a flood of bad tokens costs no I/O).
            self._forced_at = now
            self.catalog.refresh(force=True)
            spec = self.catalog.get_object(KIND, digest[:16])
        found = (Token._from_spec(spec) if spec is not None
                 and hmac.compare_digest(str(spec.get("sha256", "")), digest) else None)
        with self._guard:
            if len(self._cache) > 10_000:
                self._cache.clear()  # a flood of bad tokens must not grow memory
            self._cache[digest] = (found, now + CACHE_TTL_S)
        return found

    def ensure_admin(self, org: str, env_token: str | None = None) -> str | None:
        """Make sure an admin can get in on first start.

        With ``env_token`` (``TARNDB_TOKEN``) that token is registered as an org admin and
        nothing is returned. Otherwise, when no token exists yet, an admin token is minted and
        returned so the server can print it once.
        """
        if env_token:
            existing = self.authenticate(env_token)
            if existing is None or existing.org != org or existing.role != "admin":
                self.create(org=org, role="admin", workspaces="*", name="TARNDB_TOKEN",
                            token=env_token)
            return None
        if self.catalog.list_objects(KIND):
            return None
        plaintext, _ = self.create(org=org, role="admin", workspaces="*", name="admin")
        return plaintext


# Functions the CLI calls (`tarndb token create/list/revoke`).

def create_token(db: Any, *, org: str, role: str = "write", workspaces: Any = "*",
                 name: str = "") -> tuple[str, Token]:
    return TokenStore(db.catalog).create(org=org, role=role, workspaces=workspaces, name=name)


def list_tokens(db: Any, org: str | None = None) -> list[Token]:
    return TokenStore(db.catalog).list(org)


def revoke_token(db: Any, token_id: str) -> Token:
    return TokenStore(db.catalog).revoke(token_id)


# `tarndb token ...`: the CLI declares the command and its --data setting; these add the rest.

DEFAULT_ORG = "default"


def add_cli_arguments(parser: Any) -> None:
    """Subcommands ``create``, ``list`` and ``revoke`` on the ``tarndb token`` parser."""
    sub = parser.add_subparsers(dest="token_command", required=True)
    create = sub.add_parser("create", help="mint a token (printed once)")
    create.add_argument("--org", default=None,
                        help=f"org the token belongs to [env TARNDB_ORG; default {DEFAULT_ORG}]")
    create.add_argument("--role", choices=ROLES, default="write")
    create.add_argument("--workspaces", default="*",
                        help='comma-separated workspaces, or "*" for all (default)')
    create.add_argument("--name", default="", help="a label shown by list")
    create.add_argument("--json", action="store_true", help="print the token record as JSON")
    lst = sub.add_parser("list", help="list tokens (never their secrets)")
    lst.add_argument("--org", default=None, help="only this org's tokens")
    lst.add_argument("--json", action="store_true")
    revoke = sub.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("token_id")


def cli(db: Any, args: Any, out: Any = None) -> int:
    """Run ``tarndb token <create|list|revoke>``; returns the exit status."""
    import json
    import os
    import sys

    from ..errors import TarnError

    out = out or sys.stdout
    store = TokenStore(db.catalog)
    try:
        if args.token_command == "create":
            org = args.org or os.environ.get("TARNDB_ORG") or DEFAULT_ORG
            plaintext, tok = store.create(org=org, role=args.role, workspaces=args.workspaces,
                                          name=args.name)
            from .orgs import ensure_org

            org_id = ensure_org(db.catalog, tok.org).id
            if args.json:
                print(json.dumps({"token": plaintext, **tok.to_json(), "org_id": org_id}),
                      file=out)
            else:
                print(plaintext, file=out)
                print(f"# id {tok.id}, org {tok.org} (id {org_id}; send either as "
                      f"X-Activeloop-Org-Id), role {tok.role}, workspaces "
                      f"{tok.to_json()['workspaces']}; shown once, store it now", file=sys.stderr)
        elif args.token_command == "list":
            tokens = store.list(args.org)
            if args.json:
                print(json.dumps([t.to_json() for t in tokens]), file=out)
            else:
                print("id\torg\trole\tworkspaces\tname\tcreated_at", file=out)
                for t in tokens:
                    ws = "*" if t.workspaces is None else ",".join(t.workspaces)
                    print(f"{t.id}\t{t.org}\t{t.role}\t{ws}\t{t.name}\t{t.created_at}",
                          file=out)
        elif args.token_command == "revoke":
            tok = store.revoke(args.token_id)
            print(f"revoked {tok.id}", file=out)
        else:
            raise InvalidRequest(f"unknown token command {args.token_command!r}")
    except TarnError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    return 0
