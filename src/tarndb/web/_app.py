"""Routes that serve the UI: the page at ``/``, its assets under ``/static/``, and two small
endpoints under ``/ui/`` that only the UI needs.

Why a cookie at all: the UI calls the API with ``Authorization: Bearer``, but ``<img>``,
``<video>`` and download links are fetched by the browser itself, which cannot add that
header, and a video must stream with Range requests rather than be fetched whole into a blob.
So after sign-in the UI asks ``POST /ui/session`` to put the token in an HttpOnly, SameSite=Strict
cookie, and :class:`MediaCookieAuth` turns that cookie back into the header for GET and HEAD
requests on the three read-only file paths (content, download, thumbnail) and nowhere else.
Every other endpoint still takes the header only, so the cookie cannot be used to write.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request, cookie_parser
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from . import thumbs
from ._api import authorize

STATIC_DIR = Path(__file__).with_name("static")
COOKIE = "tarndb_media"
_MEDIA_PATH = re.compile(r"^/workspaces/[^/]+/files/[^/]+/(?:content|download|thumbnail)$")
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
    """Validate the Bearer token and keep it in the media cookie."""
    token = await authorize(request, "read")
    credential = request.headers["authorization"].partition(" ")[2].strip()
    resp = JSONResponse(token.to_json())
    resp.set_cookie(COOKIE, credential, path="/workspaces", httponly=True, samesite="strict",
                    secure=request.url.scheme == "https")
    return resp


async def delete_session(request: Request) -> Response:
    resp = JSONResponse({"signed_out": True})
    resp.delete_cookie(COOKIE, path="/workspaces", httponly=True, samesite="strict")
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


class MediaCookieAuth:
    """ASGI middleware: the media cookie stands in for ``Authorization`` on read-only file
    fetches that the browser makes by itself (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["method"] in ("GET", "HEAD")
                and _MEDIA_PATH.match(scope["path"])):
            headers: list[tuple[bytes, bytes]] = list(scope["headers"])
            names = {k.lower() for k, _ in headers}
            if b"authorization" not in names and b"cookie" in names:
                raw = b"; ".join(v for k, v in headers if k.lower() == b"cookie")
                token = cookie_parser(raw.decode("latin-1")).get(COOKIE)
                if token:
                    headers.append((b"authorization", b"Bearer " + token.encode("latin-1")))
                    scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)


def routes() -> list[BaseRoute]:
    """Every route of the UI: the page, its assets, ``/ui/*`` and the thumbnail endpoint."""
    return [
        Route("/", index, methods=["GET"]),
        Route("/ui/session", create_session, methods=["POST"]),
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
    app.add_middleware(MediaCookieAuth)
    state = getattr(app.state, "tarn", None)
    if state is not None:  # thumbnails go when their file goes
        from .thumbs import ThumbCache

        state.store.on_delete.append(ThumbCache.from_db(state.db).delete_file)
    return app
