"""Ports for the servers tests start (one helper for every test package).

The kernel may give the same ephemeral port to two binds in a row once the first socket
closes: a server that asked for two ports (Postgres and HTTP) then got one port for both and
its second listener failed to start. So a port is never handed out twice in a process.
"""

from __future__ import annotations

import socket
import threading

_handed_out: set[int] = set()
_handed_lock = threading.Lock()


def free_port() -> int:
    """A port free now on 127.0.0.1 and not handed out before in this process."""
    with _handed_lock:
        while True:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = int(s.getsockname()[1])
            if port not in _handed_out:
                _handed_out.add(port)
                return port
