"""Statements take turns on the interpreter: :class:`StatementLane`.

Every session runs on its own thread, but Python runs one thread's bytecode at a time. When
several short statements run at once they do not run in parallel: they interleave on the GIL,
and each waiting thread may sit out a whole switch interval (5 ms) before it gets the
interpreter back. Under load that turns a 1 ms statement into a 10 ms one. Letting statements
go one at a time, in arrival order, gives the same throughput with a much shorter tail.

A statement that runs long (a scan, a model load, a wait on another session's lock) must not
hold everyone else up, so a turn lasts at most ``demote_after_s``: after that the statement
keeps running but no longer counts, and the next one starts.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

#: Statements that run at once before others queue (more only once one runs long).
DEFAULT_WIDTH = 1
#: How long one statement holds its turn before the next one may start anyway.
DEFAULT_DEMOTE_AFTER_S = 0.01


class StatementLane:
    """At most ``width`` statements hold a turn; waiters go first come, first served."""

    def __init__(self, width: int = DEFAULT_WIDTH,
                 demote_after_s: float = DEFAULT_DEMOTE_AFTER_S) -> None:
        if width < 1:
            raise ValueError("width must be at least 1")
        self.width = width
        self.demote_after_s = demote_after_s
        self._lock = threading.Lock()
        #: Turn id -> when it started, for the turns that still count.
        self._running: dict[int, float] = {}
        self._waiters: deque[threading.Event] = deque()
        self._next_id = 0

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Wait for a turn, hold it while the body runs."""
        tid = self._acquire()
        try:
            yield
        finally:
            self._release(tid)

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    # -- internals ----------------------------------------------------------------------------

    def _wait_s(self, now: float) -> float:
        """0 when a turn is free now, else how long until the oldest turn stops counting.
        Turns that ran past ``demote_after_s`` are dropped here. Call with the lock held."""
        expired = [t for t, t0 in self._running.items() if now - t0 >= self.demote_after_s]
        for t in expired:
            del self._running[t]
        if len(self._running) < self.width:
            return 0.0
        return min(self._running.values()) + self.demote_after_s - now

    def _take(self, now: float) -> int:
        self._next_id += 1
        self._running[self._next_id] = now
        return self._next_id

    def _acquire(self) -> int:
        with self._lock:
            now = time.monotonic()
            if not self._waiters and self._wait_s(now) == 0.0:
                return self._take(now)
            me = threading.Event()
            self._waiters.append(me)
        try:
            while True:
                with self._lock:
                    timeout: float | None = None
                    if self._waiters[0] is me:
                        now = time.monotonic()
                        timeout = self._wait_s(now)
                        if timeout <= 0.0:
                            self._waiters.popleft()
                            tid = self._take(now)
                            # The next in line becomes the head: it starts its own clock.
                            if self._waiters:
                                self._waiters[0].set()
                            return tid
                    me.clear()
                me.wait(timeout)
        except BaseException:
            # Leave the queue (an interrupt while waiting) without stranding the ones behind.
            with self._lock:
                if me in self._waiters:
                    self._waiters.remove(me)
                if self._waiters:
                    self._waiters[0].set()
            raise

    def _release(self, tid: int) -> None:
        with self._lock:
            self._running.pop(tid, None)
            if self._waiters:
                self._waiters[0].set()
