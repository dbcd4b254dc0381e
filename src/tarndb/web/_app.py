"""Routes that serve the UI: the page at ``/``, its assets under ``/static/``, and small
endpoints under ``/ui/`` that only the UI needs.

Sign-in exchanges the API token for a server-side session: ``POST /ui/session`` (with the
token as ``Authorization: Bearer``, once) returns the token's identity and sets an HttpOnly,
SameSite=Strict cookie (Secure over HTTPS) holding only a random session id. The browser never
keeps the token: not in localStorage, not in a cookie. :class:`SessionCookieAuth` turns a live
session id back into the token's ``Authorization`` header on the server: for GET and HEAD
(``<img>``, ``<video>`` with Range requests, downloads, the UI's reads) and, for other methods,
only when the request also carries ``X-Tarndb-UI: 1`` — a header no cross-site form can send,
so the cookie cannot be ridden to write from another site. ``DELETE /ui/session`` (sign-out)
revokes the session on the server, so a copied cookie stops working at once; revoking the
token ends its sessions too (every request re-checks the token). Sessions live in the
server's memory (one process; they end when it restarts) and expire after
:data:`SESSION_IDLE_S` without use.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import secrets
import threading
import time
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request, cookie_parser
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import TarnError
from . import thumbs
from ._api import authorize

STATIC_DIR = Path(__file__).with_name("static")
COOKIE = "tarndb_session"
#: The cookie that held the raw token before sessions; cleared at sign-in and sign-out.
LEGACY_COOKIE = "tarndb_media"
#: The header that lets the session cookie authorize a request that is not GET or HEAD.
UI_HEADER = "x-tarndb-ui"
#: A session ends after this long without a request (and at sign-out).
SESSION_IDLE_S = 12 * 3600.0
#: At most this many live sessions per server; the least recently used go first.
MAX_SESSIONS = 10_000


class UiSessions:
    """Server-side web sessions: random id -> API token, thread-safe, idle-expiring."""

    def __init__(self, idle_s: float = SESSION_IDLE_S, max_sessions: int = MAX_SESSIONS) -> None:
        self.idle_s = idle_s
        self.max_sessions = max_sessions
        self._lock = threading.Lock()
        self._by_id: dict[str, tuple[str, float]] = {}  # id -> (token, last use), LRU order

    def create(self, token: str) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            while len(self._by_id) >= self.max_sessions:
                self._by_id.pop(next(iter(self._by_id)))
            self._by_id[sid] = (token, time.monotonic())
        return sid

    def token(self, sid: str) -> str | None:
        """The session's token (and the session's last use moved to now), or None."""
        now = time.monotonic()
        with self._lock:
            hit = self._by_id.pop(sid, None)
            if hit is None or now - hit[1] > self.idle_s:
                return None
            self._by_id[sid] = (hit[0], now)
            return hit[0]

    def revoke(self, sid: str) -> bool:
        with self._lock:
            return self._by_id.pop(sid, None) is not None

    def __len__(self) -> int:
        return len(self._by_id)


def _sessions(request: Request) -> UiSessions:
    found = getattr(request.app.state, "ui_sessions", None)
    if found is None:
        found = request.app.state.ui_sessions = UiSessions()
    sessions: UiSessions = found
    return sessions
# The page runs only its own scripts and styles; media may come from blob: URLs (PDF preview).
_PAGE_CSP = ("default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
             "frame-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; "
             "frame-ancestors 'none'")


def _asset_version() -> str:
    """A hash of the shipped assets, appended to their URLs in the page so a browser never
    mixes an old script with a new page after an upgrade."""
    h = hashlib.sha256()
    for p in sorted(STATIC_DIR.rglob("*")):
        if p.is_file():
            h.update(p.name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:12]


class _Page:
    """index.html with the asset version filled in, built once per process."""

    def __init__(self) -> None:
        self._html: str | None = None

    def html(self) -> str:
        if self._html is None:
            text = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
            self._html = text.replace("{{v}}", _asset_version())
        return self._html


_page = _Page()


async def index(request: Request) -> Response:
    return HTMLResponse(_page.html(), headers={
        "Cache-Control": "no-cache",
        "Content-Security-Policy": _PAGE_CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    })


async def create_session(request: Request) -> Response:
    """Sign-in: check the Bearer token and start a server-side session for it; the cookie
    holds the session id only."""
    token = await authorize(request, "read")
    credential = request.headers["authorization"].partition(" ")[2].strip()
    old = request.cookies.get(COOKIE)
    if old:
        _sessions(request).revoke(old)
    sid = _sessions(request).create(credential)
    resp = JSONResponse(token.to_json())
    resp.set_cookie(COOKIE, sid, path="/", httponly=True, samesite="strict",
                    secure=request.url.scheme == "https")
    resp.delete_cookie(LEGACY_COOKIE, path="/workspaces", httponly=True, samesite="strict")
    return resp


async def get_session(request: Request) -> Response:
    """Who the session cookie signs in: ``{"signed_in": false}`` without a live session (a
    probe the page makes at every load, so not an error)."""
    if "authorization" not in request.headers:
        return JSONResponse({"signed_in": False})
    try:
        token = await authorize(request, "read")
    except TarnError as e:
        if e.http_status != 401:
            raise
        return JSONResponse({"signed_in": False})
    return JSONResponse({"signed_in": True, **token.to_json()})


async def delete_session(request: Request) -> Response:
    """Sign-out: the session ends on the server, then the cookie goes."""
    sid = request.cookies.get(COOKIE)
    revoked = _sessions(request).revoke(sid) if sid else False
    resp = JSONResponse({"signed_out": True, "revoked": revoked})
    resp.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                       secure=request.url.scheme == "https")
    resp.delete_cookie(LEGACY_COOKIE, path="/workspaces", httponly=True, samesite="strict")
    return resp


async def config(request: Request) -> Response:
    """What this server can do, so the UI hides what it cannot (no secrets here)."""
    try:
        version = importlib.metadata.version("tarndb")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return JSONResponse({"version": version,
                         "video_thumbnails": thumbs.video_thumbnails_available(),
                         "thumbnail_sizes": list(thumbs.SIZES)})


class _RevalidatingStatic(StaticFiles):
    """Static files that the browser revalidates (a cheap 304) instead of caching blindly:
    ES modules import each other by plain URL, which the page's version tag does not reach."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        resp = await super().get_response(path, scope)
        resp.headers["Cache-Control"] = "no-cache"
        resp.headers["X-Content-Type-Options"] = "nosniff"
        return resp


class SessionCookieAuth:
    """ASGI middleware: a live session cookie stands in for ``Authorization`` (see the module
    docstring): on GET and HEAD, and on other methods only with ``X-Tarndb-UI``."""

    def __init__(self, app: ASGIApp, sessions: UiSessions | None = None) -> None:
        self.app = app
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers: list[tuple[bytes, bytes]] = list(scope["headers"])
            names = {k.lower() for k, _ in headers}
            if b"authorization" not in names and b"cookie" in names and (
                    scope["method"] in ("GET", "HEAD") or UI_HEADER.encode() in names):
                raw = b"; ".join(v for k, v in headers if k.lower() == b"cookie")
                sid = cookie_parser(raw.decode("latin-1")).get(COOKIE)
                sessions = self.sessions
                if sessions is None:
                    app = scope.get("app")
                    sessions = getattr(getattr(app, "state", None), "ui_sessions", None)
                token = sessions.token(sid) if sid and sessions is not None else None
                if token:
                    headers.append((b"authorization", b"Bearer " + token.encode("latin-1")))
                    scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)


#: The name this middleware had when the cookie only served media files.
MediaCookieAuth = SessionCookieAuth


def routes() -> list[BaseRoute]:
    """Every route of the UI: the page, its assets, ``/ui/*`` and the thumbnail endpoint."""
    return [
        Route("/", index, methods=["GET"]),
        Route("/ui/session", create_session, methods=["POST"]),
        Route("/ui/session", get_session, methods=["GET"]),
        Route("/ui/session", delete_session, methods=["DELETE"]),
        Route("/ui/config", config, methods=["GET"]),
        *thumbs.routes(),
        Mount("/static", app=_RevalidatingStatic(directory=STATIC_DIR), name="static"),
    ]


def mount(app: Starlette) -> Starlette:
    """Add the UI to an app built by :func:`tarndb.api.create_app` (before it starts serving).

    The routes are appended after the API's, whose paths they do not overlap, and the media
    cookie middleware is installed. Returns ``app`` for chaining.
    """
    app.router.routes.extend(routes())
    sessions = app.state.ui_sessions = UiSessions()
    app.add_middleware(SessionCookieAuth, sessions=sessions)
    state = getattr(app.state, "tarn", None)
    if state is not None:  # thumbnails go when their file goes
        from .thumbs import ThumbCache

        state.store.on_delete.append(ThumbCache.from_db(state.db).delete_file)
    return app
