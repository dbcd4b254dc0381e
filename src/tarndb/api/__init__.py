"""The HTTP API: a Starlette app over one :class:`tarndb.engine.Database`.

``create_app(db, settings)`` builds the ASGI app that ``tarndb serve`` runs under uvicorn;
``bootstrap_admin_token`` gives the token to print on first start; :mod:`tarndb.api.tokens`
manages API tokens for the CLI and the admin endpoints.
"""

from ._app import bootstrap_admin_token, create_app
from ._settings import ApiSettings
from .tokens import Token, TokenStore, create_token, list_tokens, revoke_token

__all__ = [
    "ApiSettings",
    "Token",
    "TokenStore",
    "bootstrap_admin_token",
    "create_app",
    "create_token",
    "list_tokens",
    "revoke_token",
]
