"""The web UI, served by the HTTP API's app: a page at ``/``, plain HTML/CSS/JS assets shipped
in this package under ``static/`` (no build step, no CDN), and the server-side helpers the UI
needs (thumbnails, server-side sign-in sessions behind an HttpOnly cookie).

Wire it into the API app before serving::

    from tarndb.api import create_app
    from tarndb import web

    app = web.mount(create_app(db, settings))
"""

from ._app import COOKIE, STATIC_DIR, MediaCookieAuth, SessionCookieAuth, UiSessions, mount, routes
from .thumbs import ThumbCache, ThumbnailUnavailable, video_thumbnails_available

__all__ = [
    "COOKIE",
    "STATIC_DIR",
    "MediaCookieAuth",
    "SessionCookieAuth",
    "ThumbCache",
    "ThumbnailUnavailable",
    "UiSessions",
    "mount",
    "routes",
    "video_thumbnails_available",
]
