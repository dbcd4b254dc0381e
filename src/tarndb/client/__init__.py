"""Python clients of a tarndb server. ``tarndb.Client`` is the HTTP one."""

from .http import Client, HTTPError, QueryResult

__all__ = ["Client", "HTTPError", "QueryResult"]
