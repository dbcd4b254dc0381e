"""Orphan dataset directories: tables' datasets that no catalog entry lists, removed safely.

Every table is a Lance dataset at ``<workspace>/<name>-<8 hex>.lance`` (Catalog.new_table_path),
made by ``CREATE TABLE`` before the catalog entry that lists it is published (at COMMIT; and
``tarndb.ray.write_table(mode="create")`` keeps that transaction open while its workers write).
A creator that dies in between (``kill -9``, a lost machine) leaves the directory behind with
no entry: no reader can reach it, and nothing else would ever remove it. This module finds and
removes such directories:

- a directory is a candidate when its name has the table form, it sits under a workspace
  directory of the lake, and no table of the catalog (read fresh) names it;
- it is left alone while its create is in progress: the creating session holds the lease
  ``create:<path>`` (storage/leases.py) from before the dataset is made until its COMMIT or
  ROLLBACK, and the lease frees itself when the creator dies (on object stores a thread of
  the creating process renews it; it lapses one lease TTL after the process is gone);
- it is left alone while anything in it is younger than the grace period (its newest file);
- it is removed under the lake-wide catalog lock, after the catalog is read again: its
  version manifests first (from that moment it is no dataset, and a creator that comes back
  after all gets an error at COMMIT instead of a table without data, see
  :meth:`Catalog.create_table`), the rest of its files after the lock is let go.

``tarndb vacuum`` runs it once; ``tarndb serve`` runs it every ``--orphan-sweep-s`` seconds
under the lease ``vacuum:orphans`` (once across the servers of a lake).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow.fs as pafs

from ..storage.lakelock import lake_lock
from ..storage.leases import Lease
from .reserved import SERVER_ENTRIES

if TYPE_CHECKING:
    from .database import Database
    from .session import Session

log = logging.getLogger(__name__)

#: How old an unlisted dataset's newest file must be before it is removed.
DEFAULT_GRACE = "1 day"
#: The lease a creating session holds on its new table's path until COMMIT or ROLLBACK.
CREATE_LEASE = "create:"
#: The lease one sweep holds (one server of the lake sweeps at a time).
SWEEP_LEASE = "vacuum:orphans"

# Catalog.new_table_path: "<safe name>-<8 hex>.lance"
_TABLE_DIR = re.compile(r"^.+-[0-9a-f]{8}\.lance$")


@dataclass
class Orphan:
    """An unlisted dataset directory and what the sweep did with it."""

    #: relative to the lake: ``<workspace>/<name>-<8 hex>.lance``
    path: str
    #: seconds since its newest file was written
    age_s: float
    files: int
    bytes: int
    #: ``removed``, ``would remove`` (dry run), ``young`` (within the grace period),
    #: ``in progress`` (its create's lease is held), ``listed`` (published meanwhile)
    status: str


_renewing: set[Lease] = set()
_renew_lock = threading.Lock()
_renewer: threading.Thread | None = None


def _renew_loop() -> None:
    while True:
        time.sleep(1.0)
        with _renew_lock:
            leases = list(_renewing)
        for lease in leases:
            try:
                if not lease.held or not lease.renew_if_due():
                    with _renew_lock:
                        _renewing.discard(lease)
            except Exception:  # noqa: BLE001 - a missed renewal only shortens the lease
                log.exception("renewing the create lease %s failed", lease.name)


def _keep_renewed(lease: Lease) -> None:
    """Object-store leases lapse unless renewed: a create's lease is renewed by one thread
    of the process for as long as it is held (an idle transaction renews nothing itself)."""
    global _renewer
    if not lease.lake.is_s3:
        return  # a flock lasts as long as its process
    with _renew_lock:
        _renewing.add(lease)
        if _renewer is None:
            _renewer = threading.Thread(target=_renew_loop, name="tarndb-create-leases",
                                        daemon=True)
            _renewer.start()


#: create leases held by this process, by (lake, path)
_creates: dict[tuple[str, str], Lease] = {}


def hold_create(session: Session, path: str) -> None:
    """Take the lease that marks ``path`` as a create in progress, for as long as the
    session's transaction runs (released at COMMIT or ROLLBACK, or by
    :func:`release_create`; freed with the process)."""
    lake = session.db.lake
    lease = Lease(lake, CREATE_LEASE + path)
    if not lease.try_acquire():  # a fresh random path: only a sweep could hold it, briefly
        log.warning("the create lease of %s is held elsewhere", path)
        return
    with _renew_lock:
        _creates[(lake.uri, path)] = lease
    _keep_renewed(lease)

    def release() -> None:
        release_create(lake, path)

    session.on_rollback(release)
    session.on_commit(release)


def release_create(lake: Any, path: str) -> None:
    """The create of ``path`` is over (published, rolled back or failed): free its lease."""
    with _renew_lock:
        lease = _creates.pop((lake.uri, path), None)
        if lease is not None:
            _renewing.discard(lease)
    if lease is not None:
        lease.release(forget=True)


def grace_seconds(grace: float | str | dt.timedelta | None) -> float:
    from .versions import parse_interval

    if grace is None:
        grace = DEFAULT_GRACE
    if isinstance(grace, dt.timedelta):
        return grace.total_seconds()
    if isinstance(grace, (int, float)):
        return float(grace)
    text = grace.strip()
    try:
        return float(text)  # plain seconds
    except ValueError:
        return parse_interval(text).total_seconds()


def _root(db: Database) -> tuple[pafs.FileSystem, str]:
    fs, base = db.lake.fs
    return fs, base.rstrip("/")


def _children(fs: pafs.FileSystem, path: str) -> list[pafs.FileInfo]:
    try:
        return list(fs.get_file_info(pafs.FileSelector(path, allow_not_found=True)))
    except (FileNotFoundError, OSError):
        return []


def _unlisted_dirs(db: Database) -> list[str]:
    """Dataset directories under the lake's workspace directories that no table lists."""
    fs, base = _root(db)
    db.catalog.refresh(force=True)
    listed = {t.path.strip("/") for t in db.catalog.all_tables()}
    out = []
    for top in _children(fs, base):
        name = top.base_name
        if top.type != pafs.FileType.Directory or name.lower() in SERVER_ENTRIES or \
                name.startswith(("_", ".")):
            continue
        for sub in _children(fs, top.path):
            if sub.type == pafs.FileType.Directory and _TABLE_DIR.match(sub.base_name):
                rel = f"{name}/{sub.base_name}"
                if rel not in listed:
                    out.append(rel)
    return sorted(out)


def _stat(fs: pafs.FileSystem, path: str) -> tuple[float, int, int]:
    """(newest modification time as a Unix time, files, bytes) of everything under ``path``."""
    newest, files, size = 0.0, 0, 0
    for info in fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True)):
        if info.mtime is not None:
            newest = max(newest, info.mtime.timestamp())
        if info.type == pafs.FileType.File:
            files += 1
            size += info.size or 0
    if newest == 0.0:  # an empty directory: its own time
        info = fs.get_file_info(path)
        if info.mtime is not None:
            newest = info.mtime.timestamp()
    return newest, files, size


def vacuum_orphans(db: Database, grace: float | str | dt.timedelta | None = None,
                   dry_run: bool = False) -> list[Orphan]:
    """Remove the lake's unlisted dataset directories older than ``grace`` (seconds, an
    interval such as ``'1 day'``, or a timedelta; default :data:`DEFAULT_GRACE`) whose create
    is not in progress; returns every unlisted directory found and what became of it."""
    limit = grace_seconds(grace)
    fs, base = _root(db)
    out: list[Orphan] = []
    for rel in _unlisted_dirs(db):
        path = f"{base}/{rel}"
        try:
            newest, files, size = _stat(fs, path)
        except (FileNotFoundError, OSError):
            continue  # removed meanwhile (a ROLLBACK)
        age = max(0.0, time.time() - newest)
        orphan = Orphan(rel, age, files, size, "young")
        out.append(orphan)
        if age < limit:
            continue
        lease = Lease(db.lake, CREATE_LEASE + rel)
        if not lease.try_acquire():
            orphan.status = "in progress"
            continue
        try:
            if dry_run:
                orphan.status = "would remove"
                continue
            with lake_lock(db.lake, "catalog"):
                # Nobody publishes a table while this lock is held: read the catalog again,
                # and take away the manifests (the dataset) before letting it go.
                db.catalog.refresh(force=True)
                if any(t.path.strip("/") == rel for t in db.catalog.all_tables()):
                    orphan.status = "listed"
                    continue
                with contextlib.suppress(FileNotFoundError):
                    fs.delete_dir(f"{path}/_versions")
            try:
                fs.delete_dir(path)
            except FileNotFoundError:
                pass
            orphan.status = "removed"
            log.info("removed the unlisted dataset %s (%d files, %d bytes, %.0f s old)",
                     rel, files, size, age)
        finally:
            lease.release(forget=orphan.status == "removed")
    return out


def sweep(db: Database, grace: float | str | dt.timedelta | None = None) -> list[Orphan] | None:
    """:func:`vacuum_orphans` once across the servers of the lake (None: another server is
    sweeping now)."""
    lease = Lease(db.lake, SWEEP_LEASE)
    if not lease.try_acquire():
        return None
    try:
        return vacuum_orphans(db, grace)
    finally:
        lease.release()


class Sweeper(threading.Thread):
    """``tarndb serve``'s background sweep: :func:`sweep` every ``interval`` seconds."""

    def __init__(self, db: Database, interval: float, grace: Any) -> None:
        super().__init__(name="tarndb-orphan-sweeper", daemon=True)
        self.db = db
        self.interval = interval
        self.grace = grace_seconds(grace)
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            try:
                sweep(self.db, self.grace)
            except Exception:  # noqa: BLE001 - never let the thread die; the next sweep retries
                log.exception("sweeping unlisted dataset directories failed")
