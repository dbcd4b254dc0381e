"""Streaming multipart upload: the ``file`` part goes from the socket to the lake, hashed on
the way; nothing is spooled to local disk and the file is never whole in memory. Starlette's
``request.form()`` would spool to a temporary file first and copy after.

python-multipart's streaming parser finds the boundaries (it scans each piece of body with
``bytes.find``, the fastest scan CPython offers for a long needle). The part's bytes are not
copied on the way: the parser's callbacks keep zero-copy views of the pieces uvicorn hands
over (api/_protocol.py), and every ~1 MiB of them is one batch. A file larger than one batch
gets two threads of its own (:class:`~._writer_thread.WriterThread`), one hashing the batches
(:meth:`BlobWriter.hash_many`) and one writing them (:meth:`BlobWriter.store_many`), while the
event loop receives the next: SHA-256, the file write and the receiving each run on a core.
At most ``_DEPTH`` batches wait for either thread, so memory stays bounded. Waiting for one
worker-thread call per batch instead (hash and write in turn, the loop idle meanwhile) kept
every step in line, and one thread doing both left hashing as the step all others waited for.
A file that arrives whole before its first batch is complete (most images) is written with
one worker-thread call and no threads of its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from ..errors import InvalidRequest
from ..files import BlobWriter, FileMeta, FileStore, FileTooLarge
from ._writer_thread import WriterThread

# Bytes handed to the writer thread at a time, and how many such batches may wait for it.
_BATCH = 1 << 20
_DEPTH = 4
FIELD = "file"

RunSync = Callable[..., Awaitable[Any]]


class _Parts:
    """Parser callbacks; they run synchronously inside ``parser.write``."""

    def __init__(self, store: FileStore, workspace: str, max_size: int | None) -> None:
        self.store = store
        self.workspace = workspace
        self.max_size = max_size
        self.writer: BlobWriter | None = None
        self.in_target = False
        self.target_done = False
        self.ended = False
        # Views of the reads the parser was given (immutable bytes), not copies of them.
        self.pending: list[memoryview] = []
        self.pending_size = 0
        self._headers: dict[str, str] = {}
        self._field = bytearray()
        self._value = bytearray()

    def on_part_begin(self) -> None:
        self._headers = {}

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        if len(self._headers) > 32:
            raise InvalidRequest("too many headers in a multipart part")
        name = self._field.decode("latin-1").strip().lower()
        # Latin-1 keeps every byte; clients put raw UTF-8 in filename="...", decoded below.
        self._headers[name] = self._value.decode("latin-1").strip()
        self._field.clear()
        self._value.clear()

    def on_headers_finished(self) -> None:
        _, opts = parse_options_header(self._headers.get("content-disposition", ""))
        name = opts.get(b"name", b"").decode("utf-8", "replace")
        if name == FIELD and self.writer is None:
            filename = opts.get(b"filename", b"").decode("utf-8", "replace") or None
            self.writer = self.store.writer(self.workspace, filename,
                                            self._headers.get("content-type"), self.max_size)
            self.in_target = True

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.in_target:
            # The parser hands out the bytes it was given (or its own constant boundary
            # bytes): immutable, so a view stays valid after the call.
            view = memoryview(data)[start:end] if isinstance(data, bytes) else \
                memoryview(bytes(data[start:end]))
            self.pending.append(view)
            self.pending_size += end - start

    def on_part_end(self) -> None:
        if self.in_target:
            self.in_target = False
            self.target_done = True

    def on_end(self) -> None:
        self.ended = True

    def take(self) -> list[memoryview]:
        batch, self.pending, self.pending_size = self.pending, [], 0
        return batch

    def callbacks(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in (
            "on_part_begin", "on_header_field", "on_header_value", "on_header_end",
            "on_headers_finished", "on_part_data", "on_part_end", "on_end")}


async def receive_upload(request: Request, store: FileStore, workspace: str,
                         max_size: int | None, run_sync: RunSync) -> FileMeta:
    """Read a ``multipart/form-data`` body and store its ``file`` part."""
    ctype, opts = parse_options_header(request.headers.get("content-type", ""))
    boundary = opts.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise InvalidRequest("expected a multipart/form-data body with a 'file' field")
    declared = request.headers.get("content-length")
    if declared is not None and max_size is not None:
        try:
            too_big = int(declared) > max_size + (1 << 20)  # room for the multipart framing
        except ValueError:
            raise InvalidRequest("invalid Content-Length") from None
        if too_big:
            raise FileTooLarge(f"file is larger than the limit of {max_size} bytes")
    parts = _Parts(store, workspace, max_size)
    parser = MultipartParser(boundary, parts.callbacks())  # type: ignore[arg-type]
    committed = False
    # Started with the first batch of a file larger than one batch; a file that arrives
    # whole before that is written with one worker-thread call instead.
    pipes: list[WriterThread] = []

    async def hand_over() -> None:
        assert parts.writer is not None
        if not pipes:
            if parts.target_done:
                await run_sync(parts.writer.write_many, parts.take())
                return
            # SHA-256 and the file write of the same batches on two threads of their own:
            # both release the GIL, so they run beside each other and beside the receiving.
            pipes.append(WriterThread(parts.writer.hash_many, _DEPTH, "tarndb-upload-hash"))
            # The writing thread, usually done first, fsyncs the file while hashing ends.
            pipes.append(WriterThread(parts.writer.store_many, _DEPTH, "tarndb-upload-write",
                                      finish=parts.writer.sync))
        batch = parts.take()
        for pipe in pipes:
            await pipe.put(batch)  # raises what a write raised (size limit, disk full)

    try:
        async for chunk in request.stream():
            if not chunk:
                continue
            try:
                parser.write(chunk)
            except MultipartParseError as exc:
                raise InvalidRequest(f"malformed multipart body: {exc}") from None
            if parts.pending_size >= _BATCH or (parts.target_done and parts.pending):
                await hand_over()
        parser.finalize()
        if parts.writer is None:
            raise InvalidRequest(f"multipart body has no '{FIELD}' field")
        if not parts.target_done or not parts.ended:
            raise InvalidRequest("multipart body is truncated")
        if parts.pending:
            await hand_over()
        for pipe in pipes:
            pipe.end_input()
        for pipe in pipes:
            await pipe.close()
        meta: FileMeta = await run_sync(parts.writer.commit)
        committed = True
        return meta
    finally:
        with anyio.CancelScope(shield=True):
            for pipe in pipes:
                # Also on errors and cancellation: the blob writer is not thread-safe, so
                # the writer threads are done with it before the upload is aborted.
                await pipe.stop()
            if parts.writer is not None and not committed:
                # Also on ClientDisconnect and cancellation: no half-written blob stays behind.
                await run_sync(parts.writer.abort)
