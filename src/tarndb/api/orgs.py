"""Orgs: a name (``TARNDB_ORG``, ``default`` unless set; what tokens record) and a stable id
kept on the lake, made the first time the org is needed. Clients may send either in the
``X-Activeloop-Org-Id`` header, as the seeds' clients send their Activeloop org id."""

from __future__ import annotations

import threading
import uuid
import weakref
from dataclasses import dataclass
from typing import Any

KIND = "org"

# catalog -> {name: Org}; an org's id never changes once made, so it is kept for good.
_cache: weakref.WeakKeyDictionary[Any, dict[str, Org]] = weakref.WeakKeyDictionary()
_guard = threading.Lock()
_make_guard = threading.Lock()


@dataclass(frozen=True)
class Org:
    name: str
    id: str

    def matches(self, value: str) -> bool:
        """Whether an ``X-Activeloop-Org-Id`` header value names this org (id or name)."""
        return value in (self.name, self.id)

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "id": self.id}


def ensure_org(catalog: Any, name: str) -> Org:
    """The org called ``name``, with its id; the id is created (once, on the lake) if new."""
    with _guard:
        hit = _cache.get(catalog, {}).get(name)
    if hit is not None:
        return hit
    with _make_guard:  # two first requests at once must not make two ids
        with _guard:
            hit = _cache.get(catalog, {}).get(name)
        if hit is not None:
            return hit
        spec = catalog.get_object(KIND, name)
        if spec is None:
            # (Two servers starting on one new lake at the same instant could still each
            # make one; the last write wins on the lake and both read it back.)
            catalog.put_object(KIND, name, {"name": name, "id": f"org-{uuid.uuid4()}"})
            spec = catalog.get_object(KIND, name)
        org = Org(name=name, id=str(spec["id"]))
        with _guard:
            _cache.setdefault(catalog, {})[name] = org
        return org
