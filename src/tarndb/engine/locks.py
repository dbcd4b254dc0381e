"""Row and key locks held by transactions of one process, as PostgreSQL's lock manager holds
tuple locks: a transaction that updates, deletes or ``SELECT ... FOR UPDATE``s a row, or
inserts a unique key, owns it until COMMIT or ROLLBACK; another transaction that wants the
same row waits for it (``lock_timeout`` -> 55P03; a wait cycle -> 40P01 for the waiter that
closes it).

Locks name things as hashable tuples: ``(table path, rid)`` for rows and
``(table path, constraint, key...)`` for unique keys. Shared locks (``FOR SHARE``) may be held
by several owners; an exclusive lock by one. Locks of one owner are re-entrant. Waiters are
served in arrival order, as PostgreSQL queues them: a newcomer does not overtake owners
already waiting for the same lock (fifty writers of one counter row otherwise saw some
writes wait far longer than others).

Across servers there are no waits: the commit protocol (:mod:`tarndb.engine.commit`) detects
a row changed by another server at commit time instead.

Kept in-house: the lock tables are a few dicts under one condition variable; no library
offers a lock manager with deadlock detection for threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterable

from .. import errors as E

Key = Hashable


class _Entry:
    __slots__ = ("exclusive", "owners", "queue")

    def __init__(self) -> None:
        self.owners: set[int] = set()
        self.exclusive = False
        #: owners waiting for the lock, first come first served
        self.queue: list[int] = []


class LockManager:
    """All transaction locks of one Database."""

    def __init__(self) -> None:
        self._mutex = threading.RLock()
        self._cond = threading.Condition(self._mutex)
        #: a condition per waiting owner, on the same mutex: a release wakes only the first
        #: waiter of the lock it frees (who, once through, wakes the next), not every
        #: waiter of every lock (fifty waiters of one counter row each woke, re-checked and
        #: slept again on every commit in the process)
        self._wake: dict[int, threading.Condition] = {}
        self._locks: dict[Key, _Entry] = {}
        self._held: dict[int, set[Key]] = {}
        #: owner -> the owners it waits for (the wait-for graph)
        self._waits: dict[int, set[int]] = {}

    def acquire(self, owner: int, keys: Iterable[Key], *, exclusive: bool = True,
                timeout: float | None = None, cancelled: Callable[[], bool] | None = None,
                ) -> list[Key]:
        """Lock every key for ``owner``; returns the keys it had to wait for (their holders
        committed or rolled back in the meantime, so the caller re-reads those rows).

        ``timeout`` (seconds, None: forever) raises 55P03; ``cancelled`` is polled while
        waiting (statement_timeout, a client's cancel) and its truthiness aborts the wait.
        """
        waited: list[Key] = []
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            held = self._held.setdefault(owner, set())
            for key in keys:
                first = True
                entry = self._locks.get(key)
                if entry is None:
                    entry = self._locks[key] = _Entry()
                try:
                    while True:
                        blockers = entry.owners - {owner}
                        # Owners queued before this one go first (a re-entrant owner, who
                        # already holds the lock, never queues).
                        ahead = entry.queue[:entry.queue.index(owner)] \
                            if owner in entry.queue else list(entry.queue)
                        free = not blockers or (not exclusive and not entry.exclusive)
                        if free and (owner in entry.owners or not ahead):
                            entry.owners.add(owner)
                            entry.exclusive = entry.exclusive or exclusive
                            held.add(key)
                            break
                        if first:
                            waited.append(key)
                            first = False
                            entry.queue.append(owner)
                        edges = blockers | set(ahead)
                        before = self._waits.get(owner)
                        self._waits[owner] = edges
                        # Only a new edge can close a cycle (the waiter that adds it finds
                        # it): a queue moving up only removes edges, and re-walking the
                        # graph on every wake cost fifty waiters of one row O(n^2) each.
                        if (before is None or not edges <= before) and self._cycle(owner):
                            raise E.DeadlockDetected(
                                "deadlock detected",
                                detail="Process waits for a lock held by a transaction "
                                       "that waits for this one.",
                                hint="See server log for query details.")
                        remaining = None if deadline is None else \
                            deadline - time.monotonic()
                        if remaining is not None and remaining <= 0:
                            raise E.LockNotAvailable(
                                "canceling statement due to lock timeout")
                        if cancelled is not None and cancelled():
                            raise E.QueryCanceled("canceling statement due to user request")
                        wake = self._wake.get(owner)
                        if wake is None:
                            wake = self._wake[owner] = threading.Condition(self._mutex)
                        # The timeout re-checks deadlocks, lock_timeout and cancellation.
                        wake.wait(0.05 if remaining is None else min(remaining, 0.05))
                finally:
                    self._waits.pop(owner, None)
                    self._wake.pop(owner, None)
                    if owner in entry.queue:
                        entry.queue.remove(owner)
                        self._wake_first(entry)  # the next in line may go now
                    if not entry.owners and not entry.queue and self._locks.get(key) is entry:
                        del self._locks[key]
        return waited

    def _wake_first(self, entry: _Entry) -> None:
        """Wake the first waiter of ``entry`` (the caller holds the mutex)."""
        if entry.queue:
            wake = self._wake.get(entry.queue[0])
            if wake is not None:
                wake.notify()

    def held_by(self, owner: int) -> set[Key]:
        with self._cond:
            return set(self._held.get(owner, ()))

    def release(self, owner: int, key: Key) -> None:
        """Release one lock before its owner ends (session-level advisory locks)."""
        with self._cond:
            held = self._held.get(owner)
            if held is None or key not in held:
                return
            held.discard(key)
            entry = self._locks.get(key)
            if entry is not None:
                entry.owners.discard(owner)
                if not entry.owners and not entry.queue:
                    del self._locks[key]
                elif not entry.owners or entry.exclusive:
                    entry.exclusive = False
                self._wake_first(entry)

    def holds(self, owner: int, key: Key) -> bool:
        with self._cond:
            return key in self._held.get(owner, ())

    def release_all(self, owner: int) -> None:
        if owner not in self._held and owner not in self._waits:
            # Nothing taken (every autocommit SELECT): no trip through the condition's
            # lock. Only the owner's own thread adds its entries, so none can appear now.
            return
        with self._cond:
            for key in self._held.pop(owner, set()):
                entry = self._locks.get(key)
                if entry is None:
                    continue
                entry.owners.discard(owner)
                if not entry.owners and not entry.queue:
                    del self._locks[key]
                    continue
                if not entry.owners or entry.exclusive:
                    entry.exclusive = False  # the last exclusive owner is gone
                self._wake_first(entry)
            self._waits.pop(owner, None)

    def count(self) -> int:
        with self._cond:
            return len(self._locks)

    def _cycle(self, start: int) -> bool:
        """Whether the wait-for graph has a path from ``start`` back to itself."""
        seen: set[int] = set()
        stack = list(self._waits.get(start, ()))
        while stack:
            o = stack.pop()
            if o == start:
                return True
            if o in seen:
                continue
            seen.add(o)
            stack.extend(self._waits.get(o, ()))
        return False
