"""Catalog objects a transaction created, changed or dropped, seen by its own session only
until COMMIT publishes them (ROLLBACK forgets them): transactional DDL for objects that live
in the catalog alone (sequences, views). Tables keep their own overlay in the session, as
their DDL also changes data on the lake."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from .session import Session

T = TypeVar("T")


class StagedObjects(Generic[T]):
    """Per session: ``(workspace, name) -> object`` (None: dropped) of its open transaction."""

    def __init__(self) -> None:
        self._by_session: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], T | None]] = \
            weakref.WeakKeyDictionary()

    def of(self, session: Any) -> dict[tuple[str, str], T | None] | None:
        """What ``session`` staged (None: nothing, or not a session: a catalog query without
        one)."""
        if session is None:
            return None
        try:
            return self._by_session.get(session)
        except TypeError:
            return None

    def stage(self, session: Session, ws: str, name: str, value: T | None,
              publish: Callable[[], None]) -> None:
        """Make ``value`` (None: dropped) what ``session`` sees of ``ws.name`` now; at COMMIT
        ``publish()`` writes it to the catalog, unless the transaction staged the name again
        since (that later stage publishes); ROLLBACK forgets it."""
        staged = self._by_session.setdefault(session, {})
        staged[(ws, name)] = value
        marker = value

        def current() -> bool:
            cur = self._by_session.get(session, {})
            if (ws, name) in cur and cur[(ws, name)] is marker:
                del cur[(ws, name)]
                return True
            return False

        def commit() -> None:
            if current():
                publish()

        session.on_commit(commit)
        session.on_rollback(current)
