"""The Postgres wire protocol (v3): a sans-io core and a thread-per-connection server.

- :mod:`.messages`: framing, frontend message parsing, backend message building;
- :mod:`.codecs`: text and binary encodings of every tarndb type;
- :mod:`.scram`: SCRAM-SHA-256, server side;
- :mod:`.protocol`: one connection's state machine (:class:`ServerConnection`), no sockets;
- :mod:`.copy`: COPY FROM STDIN / TO STDOUT;
- :mod:`.roles`: users and roles in the catalog;
- :mod:`.server`: :func:`serve_pg`, :class:`PgServer`, :class:`ServerThread`;
- :mod:`.hangup`: a client that hangs up mid-statement has it cancelled.
"""

from .protocol import ServerConfig, ServerConnection
from .server import PgServer, ServerThread, serve_pg

__all__ = ["PgServer", "ServerConfig", "ServerConnection", "ServerThread", "serve_pg"]
