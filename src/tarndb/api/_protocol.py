"""uvicorn's HTTP protocol (httptools) with large socket reads, uncopied request bodies and
zero-copy file bodies.

**Reads.** A streamed upload through stock uvicorn costs a round of event-loop work per
256 KiB: asyncio's socket transport reads at most 256 KiB per ready event (its ``max_size``),
and uvicorn stops reading whenever more than 64 KiB of body wait for the app (an ``epoll_ctl``
to drop the socket, another to add it back when the app asks for more). uvicorn has no
setting for the read size, so the protocol sets the transport's ``max_size`` to 1 MiB on each
plain (non-TLS) connection. Measured with uvicorn alone receiving a 128 MiB chunked body on
this machine: 0.06 s of server CPU instead of 0.09-0.10 s. Reads larger than 1 MiB cost more,
not less (4 MiB: twice the CPU, each read a fresh allocation the kernel has to fault in), and
so does letting more body wait before pausing (the kernel then hands the body over in small
pieces, each one a trip through the event loop).

**Request bodies.** uvicorn appends each piece of body httptools hands it to a ``bytearray``
and copies that into a fresh ``bytes`` for every ``receive()``: two copies of every uploaded
byte on the event loop, besides the one httptools makes. This protocol keeps the pieces as they
are (:class:`_Pieces` stands in for the ``bytearray``) and ``receive()`` hands them to the app
one at a time, so an upload's bytes are copied once on their way from the socket to the file
(by httptools, which hands each piece over as a new ``bytes``).

**File bodies.** uvicorn does not implement the ASGI ``http.response.pathsend`` extension, so
Starlette's ``FileResponse`` reads the file in 64 KiB pieces on worker threads and copies each
through Python. On plain connections this protocol offers the extension :data:`SENDFILE`
(``scope["extensions"]["tarndb.sendfile"]``): after ``http.response.start`` the app sends
``{"type": "tarndb.sendfile", "file": <binary file>, "offset": n, "count": n}`` and the bytes
go from the page cache to the socket with ``loop.sendfile`` (``os.sendfile`` on Linux), byte
ranges included, nothing copied through Python. That message completes the response, as a
last ``http.response.body`` would. uvicorn's own ``send`` handles every other message; the
wrapper only takes over the one it adds, using the fields uvicorn's ``send`` itself keeps on
the request cycle.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

READ_SIZE = 1 << 20
#: The ASGI extension (key of ``scope["extensions"]``) and message type for zero-copy bodies.
SENDFILE = "tarndb.sendfile"


class _Pieces:
    """Stands in for the ``bytearray`` that uvicorn's request cycle keeps as its ``body``: the
    pieces of body received and not yet handed to the app, uncopied. uvicorn only appends
    (``+=``), measures (``len``) and converts (``bytes``) it in ``receive()``, then sets a fresh
    ``bytearray``; :func:`_receive_pieces` puts this back at once, leftovers included."""

    __slots__ = ("pieces", "size")

    def __init__(self) -> None:
        self.pieces: deque[bytes] = deque()
        self.size = 0

    def __iadd__(self, piece: bytes) -> _Pieces:
        if piece:
            self.pieces.append(piece)
            self.size += len(piece)
        return self

    def __len__(self) -> int:
        return self.size

    def __bytes__(self) -> bytes:
        # The first piece only, as it is; the rest stay for the next receive().
        return self.popleft() if self.pieces else b""

    def popleft(self) -> bytes:
        piece = self.pieces.popleft()
        self.size -= len(piece)
        return piece


def http_protocol() -> Any:
    """The ``http`` argument for ``uvicorn.Config``: the protocol class described above, or
    ``"auto"`` (uvicorn's own choice) where httptools is not installed."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return "auto"

    class TarnHttpToolsProtocol(HttpToolsProtocol):
        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            # Only the plain selector transport reads with max_size (an int class attribute).
            if isinstance(transport, asyncio.Transport) and isinstance(
                    getattr(type(transport), "max_size", None), int):
                transport.max_size = READ_SIZE  # type: ignore[attr-defined]

        def on_headers_complete(self) -> None:
            before = self.cycle
            super().on_headers_complete()
            cycle = self.cycle
            if cycle is not None and cycle is not before:
                _receive_pieces(cycle)
            # TLS transports have no zero-copy path: they keep uvicorn's plain body sends.
            if cycle is None or cycle is before or self.scheme != "http":
                return
            cycle.scope.setdefault("extensions", {})[SENDFILE] = {}  # type: ignore[typeddict-item]
            plain_send = cycle.send

            async def send(message: Any) -> None:
                if message["type"] == SENDFILE:
                    await _sendfile(cycle, message)
                else:
                    await plain_send(message)

            # The app task starts on the next loop iteration and looks ``send`` up then.
            cycle.send = send  # type: ignore[method-assign]

    return TarnHttpToolsProtocol


def _receive_pieces(cycle: Any) -> None:
    """Have ``cycle`` keep its body as :class:`_Pieces` and ``cycle.receive`` hand them out
    one at a time. While pieces wait, the next goes out at once; when none does, uvicorn's
    own receive runs (it resumes reading, waits, and handles 100-continue, disconnects and
    the end of the body), takes the first piece that arrived, and the rest stay queued."""
    pieces = _Pieces()
    cycle.body = pieces
    plain_receive = cycle.receive

    async def receive() -> Any:
        if pieces.pieces and not cycle.disconnected and not cycle.response_complete:
            piece = pieces.popleft()
            return {"type": "http.request", "body": piece,
                    "more_body": bool(pieces.pieces) or cycle.more_body}
        message = await plain_receive()
        cycle.body = pieces  # uvicorn set a fresh bytearray; nothing ran in between
        if message["type"] == "http.request" and pieces.pieces:
            message["more_body"] = True
        return message

    # Like ``send``: the app task starts on the next loop iteration and looks it up then.
    cycle.receive = receive


async def _sendfile(cycle: Any, message: Any) -> None:
    """Send ``count`` bytes of ``file`` from ``offset`` as the rest of the response body."""
    if cycle.flow.write_paused and not cycle.disconnected:
        await cycle.flow.drain()
    if cycle.disconnected:
        return
    if not cycle.response_started or cycle.response_complete or cycle.chunked_encoding:
        raise RuntimeError(f"unexpected ASGI message {SENDFILE!r}: the response needs a "
                           "Content-Length and must not be complete")
    count = int(message["count"])
    if count > cycle.expected_content_length:
        raise RuntimeError("Response content longer than Content-Length")
    sent = 0
    if count and cycle.scope["method"] != "HEAD":
        try:
            sent = await asyncio.get_running_loop().sendfile(
                cycle.transport, message["file"], int(message["offset"]), count)
        except (ConnectionError, RuntimeError) as exc:
            # RuntimeError: asyncio's "Transport is closing"; anything else is a bug.
            if isinstance(exc, RuntimeError) and not cycle.transport.is_closing():
                raise
            cycle.disconnected = True  # the client went away mid-body
            cycle.transport.close()
            return
    cycle.expected_content_length -= count
    if sent != count and cycle.scope["method"] != "HEAD":
        # The file is shorter than its metadata says: the client must not wait for the rest.
        cycle.transport.close()
        raise RuntimeError(f"sent {sent} of {count} bytes: the file is shorter than expected")
    if cycle.expected_content_length != 0:
        raise RuntimeError("Response content shorter than Content-Length")
    cycle.response_complete = True
    cycle.message_event.set()
    if not cycle.keep_alive:
        cycle.transport.close()
    cycle.on_response()
