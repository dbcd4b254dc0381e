"""Mutual exclusion between processes (servers) that share one lake.

A commit validates its rows against the newest table version and then publishes a new one;
two servers must not interleave those two steps for one table, or both could validate the
same key and both publish it. Sequence blocks and catalog read-modify-writes need the same.

- Local lakes use ``fcntl.flock`` on ``<lake>/_locks/<name>.lock``: the kernel releases the
  lock when its process dies (``kill -9`` included), so a crash never leaves a lake locked.
- S3 lakes use a lease object ``<lake>/_locks/<name>.lease`` created with a conditional put
  (``If-None-Match: *``, atomic on S3 and S3-compatible stores); a lease names its expiry, and
  a waiter may break a lease that expired (its holder died).

Within one process a ``threading.Lock`` per name serialises threads first, so the file lock
is taken once per process at a time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from .. import errors as E
from .lake import Lake

#: How long an S3 lease is valid; a commit holds it for milliseconds.
LEASE_S = 30.0

_thread_locks: dict[tuple[str, str], threading.Lock] = {}
_registry = threading.Lock()


def _thread_lock(lake: Lake, name: str) -> threading.Lock:
    with _registry:
        key = (lake.uri, name)
        lock = _thread_locks.get(key)
        if lock is None:
            lock = _thread_locks[key] = threading.Lock()
        return lock


def _file_name(name: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[:80]
    return f"{safe}-{hashlib.sha1(name.encode()).hexdigest()[:10]}"


_local = threading.local()


@contextlib.contextmanager
def lake_lock(lake: Lake, name: str, timeout: float = 60.0) -> Iterator[None]:
    """Hold the lake-wide lock ``name`` (e.g. a table's path, or ``"catalog"``). Re-entrant
    within a thread."""
    held: dict[tuple[str, str], int] = _local.__dict__.setdefault("held", {})
    key = (lake.uri, name)
    if held.get(key):
        held[key] += 1
        try:
            yield
        finally:
            held[key] -= 1
        return
    tl = _thread_lock(lake, name)
    if not tl.acquire(timeout=timeout):
        raise E.LockNotAvailable(f'could not obtain lock on "{name}"')
    held[key] = 1
    try:
        if lake.is_local:
            with _flock(lake, name, timeout):
                yield
        elif lake.is_s3:
            with _s3_lease(lake, name, timeout):
                yield
        else:  # other object stores: only this process is serialised
            yield
    finally:
        held[key] = 0
        tl.release()


#: Open lock files by (lake, name), used only while the name's thread lock is held: a commit
#: then costs two ``flock`` calls, not a mkdir, an open and a close as well.
_fds: dict[tuple[str, str], int] = {}
_MAX_FDS = 256


def _lock_fd(lake: Lake, name: str) -> int:
    key = (lake.uri, name)
    fd = _fds.get(key)
    if fd is not None:
        if os.fstat(fd).st_nlink > 0:
            return fd
        # The lake was removed (and maybe made again at the same place): a lock on the
        # removed file would exclude nobody.
        with _registry:
            _fds.pop(key, None)
        os.close(fd)
    root = lake.uri[len("file://"):] if lake.uri.startswith("file://") else lake.uri
    d = os.path.join(root, "_locks")
    os.makedirs(d, exist_ok=True)
    fd = os.open(os.path.join(d, _file_name(name) + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    with _registry:
        if len(_fds) >= _MAX_FDS:
            _evict()
        _fds[key] = fd
    return fd


def _evict() -> None:
    """Close the files of names no thread holds (the caller holds ``_registry``)."""
    for key in list(_fds):
        tl = _thread_locks.get(key)
        if tl is not None and tl.acquire(blocking=False):
            try:
                os.close(_fds.pop(key))
            finally:
                tl.release()
        if len(_fds) < _MAX_FDS // 2:
            return


@contextlib.contextmanager
def _flock(lake: Lake, name: str, timeout: float) -> Iterator[None]:
    import fcntl

    fd = _lock_fd(lake, name)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise E.LockNotAvailable(f'could not obtain lock on "{name}"') from None
            time.sleep(0.001)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _s3_client(lake: Lake) -> Any:
    try:
        import boto3
    except ImportError:
        raise E.FeatureNotSupported(
            "writing to an S3 lake needs boto3 for its commit leases",
            hint="pip install 'tarndb[s3]'") from None

    so = lake.storage_options
    kwargs: dict[str, Any] = {"region_name": so.get("aws_region", "us-east-1")}
    if so.get("aws_endpoint"):
        kwargs["endpoint_url"] = so["aws_endpoint"]
    if so.get("aws_access_key_id"):
        kwargs["aws_access_key_id"] = so["aws_access_key_id"]
        kwargs["aws_secret_access_key"] = so.get("aws_secret_access_key")
    return boto3.client("s3", **kwargs)


@contextlib.contextmanager
def _s3_lease(lake: Lake, name: str, timeout: float) -> Iterator[None]:
    from botocore.exceptions import ClientError

    client = _s3_client(lake)
    bucket, _, prefix = lake.uri[len("s3://"):].partition("/")
    key = "/".join(p for p in (prefix, "_locks", _file_name(name) + ".lease") if p)
    me = uuid.uuid4().hex
    deadline = time.monotonic() + timeout
    while True:
        body = json.dumps({"owner": me, "expires": time.time() + LEASE_S}).encode()
        try:
            client.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
            break
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code not in ("PreconditionFailed", "ConditionalRequestConflict", "412"):
                raise
        try:  # held: break it if its holder let it expire
            got = client.get_object(Bucket=bucket, Key=key)
            held = json.loads(got["Body"].read())
            if float(held.get("expires", 0)) < time.time():
                client.delete_object(Bucket=bucket, Key=key, IfMatch=got["ETag"])
                continue
        except ClientError:
            continue  # released meanwhile
        if time.monotonic() > deadline:
            raise E.LockNotAvailable(f'could not obtain lock on "{name}"')
        time.sleep(0.005)
    try:
        yield
    finally:
        with contextlib.suppress(ClientError):
            got = client.get_object(Bucket=bucket, Key=key)
            if json.loads(got["Body"].read()).get("owner") == me:
                client.delete_object(Bucket=bucket, Key=key)
