"""HTTP-only errors. They subclass the one error tree so every response has the same shape;
the lead may fold them into :mod:`tarndb.errors`."""

from __future__ import annotations

from ..errors import TarnError


class Unauthenticated(TarnError):
    sqlstate = "28000"
    http_status = 401
    code = "unauthenticated"


class TooManyRequests(TarnError):
    sqlstate = "53300"
    http_status = 429
    code = "too_many_requests"


class MethodNotAllowed(TarnError):
    sqlstate = "0A000"
    http_status = 405
    code = "method_not_allowed"


class PayloadTooLarge(TarnError):
    sqlstate = "54000"
    http_status = 413
    code = "payload_too_large"
