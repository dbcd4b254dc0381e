"""Notice a client that hangs up while its statement runs: :class:`HangupWatcher`.

A session's thread is inside the engine while its statement runs, so it cannot read its own
socket. One watcher thread waits on every logged-in socket for the peer's hang-up only
(``EPOLLRDHUP``, edge-triggered, so it is reported once; readable data is no reason to stop:
a pipelining client's next message waits its turn), and cancels the statement that runs, as
Postgres does when a backend finds its client gone. A socket is registered once, at login,
not per statement: two ``epoll_ctl`` calls per statement would also be two more trips
through the GIL.

Where ``epoll`` does not exist (macOS, Windows) the watcher does nothing and a hang-up is
noticed when the statement ends.
"""

from __future__ import annotations

import logging
import select
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger("tarndb.pgwire")

_EPOLL = getattr(select, "epoll", None)
# Edge-triggered: after a hang-up the socket stays "hung up" and would be reported on every
# wait.
_EVENTS = getattr(select, "EPOLLRDHUP", 0x2000) | getattr(select, "EPOLLET", 1 << 31)


class HangupWatcher:
    """Calls ``on_hangup`` when the peer of a watched socket goes away."""

    def __init__(self) -> None:
        self._targets: dict[int, Callable[[], None]] = {}
        self._epoll = _EPOLL() if _EPOLL is not None else None
        self._closed = False
        self._thread: threading.Thread | None = None
        if self._epoll is not None:
            self._thread = threading.Thread(target=self._run, name="tarndb-pg-hangups",
                                            daemon=True)
            self._thread.start()

    @contextmanager
    def watching(self, fd: int, on_hangup: Callable[[], None]) -> Iterator[None]:
        """Call ``on_hangup`` (from the watcher's thread) if the peer of ``fd`` hangs up
        before the block ends. The block must end before ``fd`` is closed, so that a reused
        fd number is never mistaken for this one."""
        ep = self._epoll
        if ep is None or self._closed:
            yield
            return
        self._targets[fd] = on_hangup
        try:
            ep.register(fd, _EVENTS)
        except OSError:
            self._targets.pop(fd, None)
            yield
            return
        try:
            yield
        finally:
            try:
                ep.unregister(fd)
            except OSError:
                pass
            self._targets.pop(fd, None)

    def close(self) -> None:
        self._closed = True
        if self._thread is not None:
            self._thread.join(2.0)
        if self._epoll is not None:
            self._epoll.close()

    def _run(self) -> None:
        ep = self._epoll
        assert ep is not None
        while not self._closed:
            try:
                events = ep.poll(0.5)
            except (OSError, ValueError):  # closed under us while stopping
                return
            for fd, _ in events:
                cb = self._targets.get(fd)
                if cb is None:
                    continue
                try:
                    cb()
                except Exception:  # noqa: BLE001 - a failed cancel must not stop the watcher
                    log.debug("hang-up callback failed", exc_info=True)
