"""The one place the web module reaches into the HTTP API's app.

The UI's server side (thumbnails, the media cookie) must authenticate exactly as the API does
and reuse its worker pools and file store, so it borrows them from the running API app instead
of keeping copies. Keeping every such access here means an API refactor breaks one file.
"""

from __future__ import annotations

from typing import Any, Protocol

from starlette.requests import Request

from ..api._app import authorize as _authorize
from ..api.tokens import Token


class ApiState(Protocol):
    """What the API keeps on ``app.state.tarn`` that the web routes use."""

    db: Any
    store: Any

    async def run_io(self, fn: Any, *args: Any, **kwargs: Any) -> Any: ...


def api_state(request: Request) -> ApiState:
    """The API's per-app state; web routes only work inside an app built by ``create_app``."""
    state = getattr(request.app.state, "tarn", None)
    if state is None:
        raise RuntimeError("tarndb.web routes must be mounted into tarndb.api.create_app()")
    st: ApiState = state
    return st


async def authorize(request: Request, role: str, workspace: str | None = None) -> Token:
    """The caller's token, checked for org, workspace and role, exactly as the API checks."""
    return await _authorize(request, role, workspace)
