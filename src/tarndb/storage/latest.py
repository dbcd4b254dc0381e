"""The latest version of a Lance dataset on a local disk, without listing its versions.

Lance finds a dataset's latest version by listing its ``_versions`` directory: one manifest
per version, kept until retention drops them. tarndb keeps every version by default (time
travel) and asks for the latest version several times per statement, so that listing grew
with the table's history (0.3 ms a call at 1,000 versions, 1.7 ms at 3,000).

Versions are numbered without gaps, and a version's manifest has a name fixed by its number
(``{2**64 - 1 - v}.manifest`` in Lance's v2 naming, ``{v}.manifest`` in v1), written whole
before the version exists. So once the latest version ``v`` is known, the latest is found by
checking whether ``v + 1``'s manifest exists (one ``stat``), then ``v + 2``'s, and so on.
Used only on local filesystems of this machine's kernel (not NFS or FUSE, whose attribute
caches could hide a new file): see :func:`trusted_filesystem`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from functools import lru_cache

_LOCAL_FILESYSTEMS = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "overlay",
                                "zfs", "f2fs"})
_U64_MAX = (1 << 64) - 1


def _exists(path: str) -> bool:
    """Whether ``path`` exists: ``access`` answers without raising (``os.path.exists`` is a
    ``stat`` whose FileNotFoundError, the common answer here, cost twice the call)."""
    return os.access(path, os.F_OK)


@lru_cache(maxsize=256)
def trusted_filesystem(path: str) -> bool:
    """Whether ``path`` is on a filesystem of this machine's kernel (per
    /proc/self/mountinfo; False where that is unreadable)."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return False
    real = os.path.realpath(path)
    best, fstype = "", ""
    for line in lines:
        left, sep, right = line.partition(" - ")
        fields = left.split()
        if not sep or len(fields) < 5 or not right.split():
            continue
        mount = fields[4].replace("\\040", " ")
        if (real == mount or real.startswith(mount.rstrip("/") + "/")) and \
                len(mount) >= len(best):
            best, fstype = mount, right.split()[0]
    return fstype in _LOCAL_FILESYSTEMS


class LatestVersion:
    """``latest(list_latest)`` answers what ``list_latest()`` (Lance's listing) would."""

    def __init__(self, versions_dir: str | None) -> None:
        self._dir = versions_dir if versions_dir and trusted_filesystem(
            os.path.dirname(versions_dir) or ".") else None
        self._lock = threading.Lock()
        self._known: int | None = None
        self._v2 = True  # Lance's manifest naming (v2: inverted numbers)
        #: (version, its manifest's path) of the next version looked for: every statement
        #: asks, and building the path cost as much as the ``stat``
        self._next: tuple[int, str] | None = None

    def _manifest(self, version: int) -> str:
        assert self._dir is not None
        name = _U64_MAX - version if self._v2 else version
        return os.path.join(self._dir, f"{name}.manifest")

    def latest(self, list_latest: Callable[[], int]) -> int:
        if self._dir is None:
            return list_latest()
        known = self._known  # (one attribute read: atomic, no lock needed)
        if known is None:
            version = list_latest()
            with self._lock:
                if _exists(self._manifest(version)):
                    self._known = version
                else:  # v1 names, or a layout this module does not know: keep listing
                    self._v2 = False
                    if _exists(self._manifest(version)):
                        self._known = version
                    else:
                        self._dir = None
            return version
        version = known
        nxt = self._next
        path = nxt[1] if nxt is not None and nxt[0] == version + 1 else \
            self._manifest(version + 1)
        while _exists(path):
            version += 1
            path = self._manifest(version + 1)
        self._next = (version + 1, path)
        if version != known:
            with self._lock:
                self._known = max(version, self._known or 0)
        return version
