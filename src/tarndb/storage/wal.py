"""A table's write-ahead log: committed rows that are not yet in its Lance dataset.

Why it exists: a Lance commit writes a data file, a transaction file and a new manifest
(2–4 ms for one row, more as the table grows), while PostgreSQL acknowledges a small insert
after one fsync of its WAL (~0.3 ms here). So a commit that only inserts rows appends them
to this log, fsyncs, and is acknowledged; the rows are *folded* into the Lance dataset later,
many commits in one Lance append (:meth:`~tarndb.storage.tables.TableStore.fold`): by a
background thread soon after, and by anyone who reads the table or changes it in another way
first, so every read sees every acknowledged row at once.

Small updates and deletes are logged the same way: a record also names the ``__rid`` of the
rows it removes (an update removes the old version of a row and adds the new one, with the
same ``__rid``). A fold applies the records in order.

Layout: each server appends to its own file in ``<table>.lance/_tarndb_wal/``, named
``<lance version when opened>-<opening time, ns>-<random id>.wal``; a fold applies the files
in name order. The time orders a server's rotated file before the one it opened next: both
have the same version (every commit in between was logged), and with a random id alone the
newer file's records of a row were applied before the older ones' half the time. A record is
one commit's rows as an Arrow IPC stream (the removed rids in its schema metadata), framed by
its length and CRC32, so the torn tail of a crash mid-append (never acknowledged) is
recognised and ignored. Appends happen under the table's lake lock, after the commit protocol
validated the rows (engine/commit.py).

Folding is idempotent: the Lance commit that folds a file's records names the file and the
offset it folded up to in its transaction properties, so a folder that finds a file after a
crash between that commit and the file's removal skips what was already folded.

Files are preallocated: a new file is a *spare* made ahead of time in the background (zeros,
written and synced, named ``.spare-<id>``), renamed to its ``.wal`` name when needed, and
appends overwrite its zeros in place. Then an append's ``fdatasync`` flushes only the data, not
a grown file size through the filesystem's journal: 0.12 ms instead of 0.17–1.2 ms on this
project's ext4 disks, and that sync is most of a small commit's wait and of the time a hot row
stays locked. PostgreSQL preallocates its WAL segments for the same reason. Readers stop at
the first zero frame (no record is empty). A record past the preallocated end simply extends
the file.

Only local lakes log: on an object store an append is a PUT, which costs what the Lance
commit it would save costs.
"""

from __future__ import annotations

import os
import struct
import threading
import time
import uuid
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

#: The directory, inside the table's Lance dataset directory.
WAL_DIR = "_tarndb_wal"
#: Transaction property of a fold commit: JSON {file name: offset folded up to}.
FOLD_PROPERTY = "tarndb.wal"
_FRAME = struct.Struct("<II")  # payload length, CRC32 of the payload
#: Bytes of zeros a new log file starts with (see the module docstring). A fold starts a
#: new file about once a second under steady writes; 2 MiB holds ~1,000 single-row commits
#: of a 384-d vector table.
PREALLOCATE = 2 << 20
_SPARE_PREFIX = ".spare-"
#: Schema metadata key of a record's removed rids (little-endian int64s).
_REMOVED = b"tarndb.removed"

_opened_lock = threading.Lock()
_opened_last = 0


def _opening_time() -> int:
    """Nanoseconds since the epoch, increasing from call to call in this process (two files
    opened within one clock tick still sort in the order they were opened)."""
    global _opened_last
    with _opened_lock:
        _opened_last = max(_opened_last + 1, time.time_ns())
        return _opened_last


@dataclass
class WalRecord:
    end: int  # offset just past the record in its file
    rows: pa.Table  # rows added (the new versions of updated rows included)
    removed: np.ndarray  # int64 rids of rows removed before ``rows`` are added


@dataclass
class WalFile:
    name: str
    base: int  # the table's Lance version when the file was opened
    records: list[WalRecord]


def encode(rows: pa.Table, removed: np.ndarray | None = None) -> bytes:
    """One record: the frame, then ``rows`` as an Arrow IPC stream (``removed``, the rids
    the record deletes, in the schema's metadata)."""
    if removed is not None and removed.size:
        meta = dict(rows.schema.metadata or {})
        meta[_REMOVED] = np.ascontiguousarray(removed, dtype="<i8").tobytes()
        rows = rows.replace_schema_metadata(meta)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, rows.schema) as w:
        w.write_table(rows)
    payload = sink.getvalue().to_pybytes()
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def decode(data: bytes) -> list[WalRecord]:
    """The whole records of a file's bytes; stops at a torn or corrupt tail."""
    out: list[WalRecord] = []
    pos = 0
    while pos + _FRAME.size <= len(data):
        size, crc = _FRAME.unpack_from(data, pos)
        if size == 0:  # the preallocated zeros past the last record
            break
        start = pos + _FRAME.size
        payload = data[start:start + size]
        if len(payload) < size or zlib.crc32(payload) != crc:
            break
        rows = pa.ipc.open_stream(payload).read_all()
        meta = rows.schema.metadata or {}
        removed = np.frombuffer(meta[_REMOVED], dtype="<i8").astype(np.int64) \
            if _REMOVED in meta else _NONE
        if _REMOVED in meta:
            rows = rows.replace_schema_metadata(
                {k: v for k, v in meta.items() if k != _REMOVED} or None)
        out.append(WalRecord(start + size, rows, removed))
        pos = start + size
    return out


_NONE = np.empty(0, np.int64)

_spare_pool: ThreadPoolExecutor | None = None
_spare_pool_lock = threading.Lock()


def _spare_maker() -> ThreadPoolExecutor:
    """One background thread for the whole process makes every table's spare files."""
    global _spare_pool
    with _spare_pool_lock:
        if _spare_pool is None:
            _spare_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tarndb-wal-spare")
        return _spare_pool


def make_spare(directory: str, size: int | None = None) -> str | None:
    """A new file of ``size`` (default :data:`PREALLOCATE`) zero bytes in ``directory``, on
    disk (synced); its path, or None when the directory is gone (the table was dropped)."""
    size = PREALLOCATE if size is None else size
    path = os.path.join(directory, f"{_SPARE_PREFIX}{uuid.uuid4().hex}")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileNotFoundError:
        return None
    try:
        zeros = bytes(min(size, 1 << 20))
        left = size
        while left > 0:
            left -= os.write(fd, zeros[:left])
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink(path)
        raise
    os.close(fd)
    return path


def _remove_spare(fut: Future[str | None]) -> None:
    path = fut.result() if fut.exception() is None else None
    if path is not None:
        _unlink(path)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class TableWal:
    """This server's log file for one table, and the reading of every server's files.

    The caller serialises appends and folds (the table store's lock and the table's lake
    lock). Readers ask whether this server's files are still there without those locks
    (:meth:`own_alive`, :meth:`current_alive`), while a fold may rotate the current file: the
    descriptor is read and closed under a lock of its own, or a reader's ``fstat`` met a
    closed descriptor (EBADF, an UPDATE failing with an internal error) or one the number
    was reused for.
    """

    def __init__(self, directory: str, sync: bool = True) -> None:
        self.dir = directory
        self.sync = sync
        self._fd: int | None = None
        self._fd_lock = threading.Lock()
        self._name: str | None = None
        #: rows appended to this server's file since it was last folded
        self.pending_rows = 0
        #: this server's earlier files whose fold is under way (TableStore.fold)
        self._rotated: set[str] = set()
        #: where the next record goes in the current file, and how far it is preallocated
        self._end = 0
        self._allocated = 0
        #: the next file, being made in the background (a path, or None if it failed)
        self._spare: Future[str | None] | None = None
        #: the directory existed when :meth:`files` last looked (see there)
        self._dir_seen = False

    @property
    def own_name(self) -> str | None:
        return self._name

    def forget(self, name: str) -> bool:
        """A rotated file that is gone: True when another server folded and removed it
        (this server's own folds remove it from the set themselves)."""
        if name not in self._rotated:
            return False
        self._rotated.discard(name)
        return True

    def _links(self) -> int | None:
        """Links of the current file (0: another server folded and removed it), None when
        there is none."""
        with self._fd_lock:
            return None if self._fd is None else os.fstat(self._fd).st_nlink

    def current_alive(self) -> bool:
        """Whether this server has a current file and it is still on the lake."""
        links = self._links()
        return links is not None and links > 0

    def is_own(self, name: str) -> bool:
        """Whether ``name`` is this server's file, or one it rotated out to fold."""
        return name == self._name or name in self._rotated

    def own_alive(self) -> bool:
        """Whether this server's files still hold their records: another server that folds
        the log removes them (then their records are in Lance)."""
        if self._links() == 0:
            return False
        # (a copy: a fold may rotate or forget a file meanwhile)
        return all(os.path.exists(os.path.join(self.dir, n)) for n in tuple(self._rotated))

    def files(self) -> list[str]:
        """Names of the log files on the lake (every server's), oldest first.

        Every key lookup asks (it is what shows another server's logged rows), and a table
        that never logged a row has no directory: ``listdir`` then raises, and the exception
        cost more than the call. While the directory is missing it is looked for with
        ``access`` (no exception), once it was seen it is listed."""
        if not self._dir_seen:
            if not os.access(self.dir, os.F_OK):
                return []
            self._dir_seen = True
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            self._dir_seen = False
            return []
        if not names:
            return []
        return sorted(n for n in names if n.endswith(".wal"))

    def append(self, rows: pa.Table, base: int, removed: np.ndarray | None = None) -> None:
        """Append one commit's rows (and the rids it removes) and make them durable.
        ``base`` is the table's Lance version now (it names a new file: folds of it can only
        be later versions)."""
        fd = self._open(base)
        data = encode(rows, removed)
        written = os.pwrite(fd, data, self._end)
        if written != len(data):  # a full disk: drop the partial record, report 53100
            # (Inside the preallocated part its bytes stay, and readers stop at them; the
            # next record overwrites them.)
            if self._end + written > self._allocated:
                os.ftruncate(fd, max(self._end, self._allocated))
            raise OSError(28, "No space left on device")
        if self.sync:
            os.fdatasync(fd)
        self._end += len(data)
        self.pending_rows += rows.num_rows

    def _open(self, base: int) -> int:
        if self._fd is not None:
            # Another server folds and removes this file when it needs the rows in Lance:
            # then start a new file (appending to the removed one would lose the rows).
            if os.fstat(self._fd).st_nlink > 0:
                return self._fd
            self._close()
        os.makedirs(self.dir, exist_ok=True)
        name = f"{base:016d}-{_opening_time():020d}-{uuid.uuid4().hex[:16]}.wal"
        path = os.path.join(self.dir, name)
        spare = self._take_spare()
        if spare is not None:
            os.rename(spare, path)
            self._fd = os.open(path, os.O_WRONLY)
            self._allocated = os.fstat(self._fd).st_size
        else:
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            self._allocated = 0
        self._name = name
        self._end = 0
        if self.sync:
            if self._spare is None:  # (one still being made is the next file's)
                self._spare = _spare_maker().submit(make_spare, self.dir)
            # The new name itself must survive a crash.
            dfd = os.open(self.dir, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        return self._fd

    def _take_spare(self) -> str | None:
        """The spare file if it is ready (never waits for one being made)."""
        fut = self._spare
        if fut is None or not fut.done():
            return None
        self._spare = None
        try:
            return fut.result()
        except OSError:
            return None  # a full disk, say: the plain file reports it on append

    def _drop_spare(self) -> None:
        fut, self._spare = self._spare, None
        if fut is not None:
            fut.add_done_callback(_remove_spare)

    def read(self, name: str, known: WalFile | None = None) -> WalFile | None:
        """File ``name``'s records; with ``known`` (an earlier read of the same file), only
        the records after its last one are decoded (a record never changes once written)."""
        start = known.records[-1].end if known is not None and known.name == name and \
            known.records else 0
        try:
            with open(os.path.join(self.dir, name), "rb") as f:
                f.seek(start)
                data = f.read()
        except FileNotFoundError:
            return None
        try:
            base = int(name.split("-", 1)[0])
        except ValueError:
            base = 0
        records = decode(data)
        if not start:
            return WalFile(name, base, records)
        for r in records:
            r.end += start  # offsets in the file, not in what was read
        assert known is not None
        return WalFile(name, base, known.records + records)

    def remove(self, names: list[str]) -> None:
        """Remove folded files (this server's own is closed; the next append opens a new
        one)."""
        for name in names:
            self._rotated.discard(name)
            if name == self._name:
                self._close()
            try:
                os.unlink(os.path.join(self.dir, name))
            except FileNotFoundError:
                pass
        if self.sync and names:
            try:
                dfd = os.open(self.dir, os.O_RDONLY)
            except FileNotFoundError:
                return
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def rotate(self) -> str | None:
        """Start a new file for later appends; returns the name of the one closed (whose
        records a fold is about to write to Lance without holding the table's locks)."""
        name = self._name
        if name is not None:
            self._rotated.add(name)
        self._close()
        return name

    def _close(self) -> None:
        with self._fd_lock:
            if self._fd is not None:
                try:
                    os.close(self._fd)
                except OSError:
                    pass
            self._fd = None
        self._name = None
        self._end = self._allocated = 0
        self.pending_rows = 0

    def close(self) -> None:
        self._close()
        self._drop_spare()
