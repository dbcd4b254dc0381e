"""Leases on the lake: background work that runs once across every server on one lake.

A lease names one piece of work (``job:<id>``, ``maintain:<table path>``). A server that wants
to do the work *tries* to take the lease and skips the work when another live server holds
it; the holder keeps it for as long as the work runs; when the holder dies the lease frees
itself and the next server that looks takes the work over. Nothing waits for a lease.

- Local lakes: ``fcntl.flock`` on ``<lake>/_locks/<name>.lease``, held through an open file
  for the lease's life. The kernel drops it the moment its process dies (``kill -9``
  included), so a takeover is immediate.
- S3 lakes: an object ``<lake>/_locks/<name>.lease`` created with a conditional put
  (``If-None-Match: *``) that names its holder and expiry. The holder renews it
  (:meth:`Lease.renew`, rewritten only if unchanged: ``If-Match`` on its ETag) well within
  :data:`LEASE_TTL_S`; a lease past its expiry may be broken by anyone (its holder is taken
  for dead), so a takeover comes within one TTL.

Within one process a lease is held by one :class:`Lease` object at a time, so two threads
of one server exclude each other as two servers do.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from .lake import Lake
from .lakelock import _file_name, _s3_client

#: How long an S3 lease lasts without renewal (the holder renews every third of it).
LEASE_TTL_S = float(os.environ.get("TARNDB_LEASE_TTL_S", "30"))

_held: set[tuple[str, str]] = set()
_held_lock = threading.Lock()


class Lease:
    """One lease on ``lake``; see the module docstring."""

    def __init__(self, lake: Lake, name: str, ttl: float | None = None) -> None:
        self.lake = lake
        self.name = name
        self.ttl = LEASE_TTL_S if ttl is None else ttl
        self.owner = uuid.uuid4().hex
        self._fd: int | None = None
        self._etag: str | None = None
        self._renewed = 0.0
        self.held = False

    @property
    def _key(self) -> tuple[str, str]:
        return (self.lake.uri, self.name)

    def try_acquire(self) -> bool:
        """Take the lease if no live holder has it; never waits."""
        if self.held:
            return True
        with _held_lock:
            if self._key in _held:
                return False
            _held.add(self._key)
        try:
            ok = self._take_local() if self.lake.is_local else \
                self._take_s3() if self.lake.is_s3 else True
        except BaseException:
            with _held_lock:
                _held.discard(self._key)
            raise
        if not ok:
            with _held_lock:
                _held.discard(self._key)
            return False
        self.held = True
        self._renewed = time.monotonic()
        return True

    def renew(self) -> bool:
        """Extend an S3 lease (a no-op elsewhere); False when it was lost (broken by another
        server after it expired): the work should stop."""
        if not self.held:
            return False
        if not self.lake.is_s3:
            return True
        from botocore.exceptions import ClientError

        client, bucket, key = self._s3()
        try:
            got = client.put_object(Bucket=bucket, Key=key, Body=self._body(),
                                    IfMatch=self._etag)
        except ClientError:
            return False
        self._etag = got.get("ETag")
        self._renewed = time.monotonic()
        return True

    def renew_if_due(self) -> bool:
        if self.lake.is_s3 and time.monotonic() - self._renewed >= self.ttl / 3:
            return self.renew()
        return self.held

    def release(self, forget: bool = False) -> None:
        """Let the lease go. ``forget``: also remove its file on a local lake (a lease named
        after a one-off object, such as a table being created, that nobody takes again;
        unlinked while still locked, so a process that opened it meanwhile only ever locks
        the removed file)."""
        if not self.held:
            return
        self.held = False
        try:
            if self._fd is not None:
                import fcntl

                if forget:
                    with contextlib.suppress(OSError):
                        os.unlink(self._local_path())

                with contextlib.suppress(OSError):
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
                self._fd = None
            elif self.lake.is_s3 and self._etag is not None:
                from botocore.exceptions import ClientError

                client, bucket, key = self._s3()
                with contextlib.suppress(ClientError):
                    client.delete_object(Bucket=bucket, Key=key, IfMatch=self._etag)
                self._etag = None
        finally:
            with _held_lock:
                _held.discard(self._key)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- local: flock -------------------------------------------------------------------------

    def _local_path(self) -> str:
        root = self.lake.uri[len("file://"):] if self.lake.uri.startswith("file://") \
            else self.lake.uri
        return os.path.join(root, "_locks", _file_name(self.name) + ".lease")

    def _take_local(self) -> bool:
        import fcntl

        path = self._local_path()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    # -- S3: a conditional put with an expiry ---------------------------------------------------

    def _s3(self) -> tuple[Any, str, str]:
        client = _s3_client(self.lake)
        bucket, _, prefix = self.lake.uri[len("s3://"):].partition("/")
        key = "/".join(p for p in (prefix, "_locks", _file_name(self.name) + ".lease") if p)
        return client, bucket, key

    def _body(self) -> bytes:
        return json.dumps({"owner": self.owner, "name": self.name,
                           "expires": time.time() + self.ttl}).encode()

    def _take_s3(self) -> bool:
        from botocore.exceptions import ClientError

        client, bucket, key = self._s3()
        for _ in range(3):
            try:
                got = client.put_object(Bucket=bucket, Key=key, Body=self._body(),
                                        IfNoneMatch="*")
                self._etag = got.get("ETag")
                return True
            except ClientError as e:
                code = e.response.get("Error", {}).get("Code", "")
                if code not in ("PreconditionFailed", "ConditionalRequestConflict", "412"):
                    raise
            try:
                cur = client.get_object(Bucket=bucket, Key=key)
                held = json.loads(cur["Body"].read())
            except ClientError:
                continue  # released meanwhile: try again
            if float(held.get("expires", 0)) >= time.time():
                return False  # a live holder
            with contextlib.suppress(ClientError):  # expired: its holder is gone
                client.delete_object(Bucket=bucket, Key=key, IfMatch=cur["ETag"])
        return False


def holder_alive(lake: Lake, name: str) -> bool:
    """Whether some live holder has the lease ``name`` now (takes and drops it to find out)."""
    lease = Lease(lake, name)
    if lease.try_acquire():
        lease.release()
        return False
    return True


@contextlib.contextmanager
def lease_or_skip(lake: Lake, name: str) -> Iterator[bool]:
    """``with lease_or_skip(lake, name) as mine: if mine: <work>`` runs the work only where
    no other server is doing it."""
    lease = Lease(lake, name)
    mine = lease.try_acquire()
    try:
        yield mine
    finally:
        if mine:
            lease.release()
