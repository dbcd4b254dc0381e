"""Postgres protocol v3 messages: framing, parsing of frontend messages, building backend ones.

No sockets here. :class:`FrameReader` cuts a byte stream into messages and
:func:`parse_frontend` turns one message into a dataclass; the ``b_*`` functions build the bytes
of backend messages. Malformed input raises :class:`ProtocolError` (SQLSTATE 08P01), which the
connection turns into an ErrorResponse before hanging up.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import TypeVar

from ..errors import ProtocolViolation

PROTOCOL_V3 = 196608  # 3 << 16
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102

#: Messages larger than this are refused; COPY data and huge literals stay far below it.
MAX_MESSAGE = 1 << 30
#: Startup packets are small; Postgres caps them at 10000 bytes.
MAX_STARTUP = 10000

#: Reads up to this size are kept as bytes (:meth:`FrameReader.feed`).
_SMALL_READ = 1 << 16
#: The type byte of a message, as the one-byte string parse_frontend compares.
_KIND = tuple(bytes([i]) for i in range(256))

_I32 = struct.Struct("!i")
_I16 = struct.Struct("!h")
_II = struct.Struct("!ii")


class ProtocolError(ProtocolViolation):
    """The peer sent bytes that are not a valid protocol message."""


# ---------------------------------------------------------------------------------------------
# frontend messages


@dataclass
class SSLRequest:
    pass


@dataclass
class GSSENCRequest:
    pass


@dataclass
class CancelRequest:
    pid: int
    secret: int


@dataclass
class StartupMessage:
    version: int
    params: dict[str, str]


@dataclass
class Query:
    sql: str


@dataclass
class Parse:
    name: str
    sql: str
    param_oids: list[int]


@dataclass
class Bind:
    portal: str
    statement: str
    param_formats: list[int]
    params: list[bytes | None]
    result_formats: list[int]


@dataclass
class Describe:
    kind: str  # 'S' statement or 'P' portal
    name: str


@dataclass
class Execute:
    portal: str
    max_rows: int


@dataclass
class Close:
    kind: str
    name: str


@dataclass
class Sync:
    pass


@dataclass
class Flush:
    pass


@dataclass
class Terminate:
    pass


@dataclass
class CopyData:
    data: bytes


@dataclass
class CopyDone:
    pass


@dataclass
class CopyFail:
    message: str


@dataclass
class AuthResponse:
    """A 'p' message: password, SASLInitialResponse or SASLResponse (the state decides)."""

    data: bytes


@dataclass
class FunctionCall:
    data: bytes = field(repr=False)


FrontendMessage = (
    Query | Parse | Bind | Describe | Execute | Close | Sync | Flush | Terminate | CopyData
    | CopyDone | CopyFail | AuthResponse | FunctionCall
)
#: Sync carries nothing: one instance serves every Sync.
_SYNC = Sync()
StartupPacket = SSLRequest | GSSENCRequest | CancelRequest | StartupMessage


class _Cursor:
    """Reads fields out of one message body; every overrun is a ProtocolError."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def int32(self) -> int:
        if self.pos + 4 > len(self.buf):
            raise ProtocolError("message too short")
        (v,) = _I32.unpack_from(self.buf, self.pos)
        self.pos += 4
        return int(v)

    def int16(self) -> int:
        if self.pos + 2 > len(self.buf):
            raise ProtocolError("message too short")
        (v,) = _I16.unpack_from(self.buf, self.pos)
        self.pos += 2
        return int(v)

    def byte(self) -> str:
        if self.pos >= len(self.buf):
            raise ProtocolError("message too short")
        b = self.buf[self.pos]
        self.pos += 1
        return chr(b)

    def cstr(self) -> str:
        end = self.buf.find(b"\0", self.pos)
        if end < 0:
            raise ProtocolError("unterminated string in message")
        raw = self.buf[self.pos:end]
        self.pos = end + 1
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ProtocolError("invalid UTF-8 in message") from e

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.buf):
            raise ProtocolError("message too short")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def rest(self) -> bytes:
        out = self.buf[self.pos:]
        self.pos = len(self.buf)
        return out

    def count(self, what: str) -> int:
        n = self.int16()
        if n < 0:
            raise ProtocolError(f"invalid {what} count")
        return n

    def end(self) -> None:
        if self.pos != len(self.buf):
            raise ProtocolError("unexpected trailing bytes in message")


def parse_startup(body: bytes) -> StartupPacket:
    """Parse the untyped first packet (its length word already removed)."""
    c = _Cursor(body)
    code = c.int32()
    if code == SSL_REQUEST:
        c.end()
        return SSLRequest()
    if code == GSSENC_REQUEST:
        c.end()
        return GSSENCRequest()
    if code == CANCEL_REQUEST:
        pid, secret = c.int32(), c.int32()
        return CancelRequest(pid, secret)
    if code >> 16 != 3:
        raise ProtocolError(
            f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}: "
            "server supports 3.0 to 3.0")
    params: dict[str, str] = {}
    while True:
        key = c.cstr()
        if key == "":
            break
        params[key] = c.cstr()
    c.end()
    return StartupMessage(code, params)


def _name(body: bytes, pos: int) -> tuple[str, int]:
    """The NUL-terminated string at ``pos`` and the position after it."""
    end = body.find(b"\0", pos)
    if end < 0:
        raise ProtocolError("unterminated string in message")
    try:
        return body[pos:end].decode("utf-8"), end + 1
    except UnicodeDecodeError as e:
        raise ProtocolError("invalid UTF-8 in message") from e


def _int16s(body: bytes, pos: int, n: int) -> list[int]:
    """``n`` int16 at ``pos`` (struct.error past the end)."""
    if n == 0:
        return []
    if n == 1:  # (one format for all: what drivers send)
        return [_I16.unpack_from(body, pos)[0]]
    return list(struct.unpack_from(f"!{n}h", body, pos))


def _parse_bind(body: bytes) -> Bind:
    """A Bind message, read without a cursor object: it comes with every execution of a
    prepared statement, and a call per field was a tenth of a small statement's protocol
    cost. Checks what :class:`_Cursor` checks, with the same errors."""
    portal, pos = _name(body, 0)
    stmt, pos = _name(body, pos)
    size = len(body)
    try:
        (n,) = _I16.unpack_from(body, pos)
        if n < 0:
            raise ProtocolError("invalid parameter format count")
        formats = _int16s(body, pos + 2, n)
        pos += 2 + 2 * n
        (n,) = _I16.unpack_from(body, pos)
        if n < 0:
            raise ProtocolError("invalid parameter count")
        pos += 2
        params: list[bytes | None] = []
        for _ in range(n):
            (k,) = _I32.unpack_from(body, pos)
            pos += 4
            if k == -1:
                params.append(None)
                continue
            if k < 0 or pos + k > size:
                raise ProtocolError("message too short")
            params.append(body[pos:pos + k])
            pos += k
        (n,) = _I16.unpack_from(body, pos)
        if n < 0:
            raise ProtocolError("invalid result format count")
        results = _int16s(body, pos + 2, n)
        pos += 2 + 2 * n
    except struct.error:
        raise ProtocolError("message too short") from None
    for f in formats:
        if f != 0 and f != 1:
            raise ProtocolError(f"unsupported format code: {f}")
    for f in results:
        if f != 0 and f != 1:
            raise ProtocolError(f"unsupported format code: {f}")
    if pos != size:
        raise ProtocolError("unexpected trailing bytes in message")
    return Bind(portal, stmt, formats, params, results)


#: Execute and Describe messages by their bodies: every execution of a prepared statement
#: sends the same two (the unnamed portal, all rows), and making them again was a tenth of
#: the protocol's cost of a small statement. Only well-formed bodies are kept (a malformed
#: one raises before it is), and the handlers never change a message.
_EXECUTES: dict[bytes, Execute] = {}
_DESCRIBES: dict[bytes, Describe] = {}
_KEPT_MAX = 256
_KEPT_MAX_BODY = 128

_M = TypeVar("_M", Execute, Describe)


def _keep(kept: dict[bytes, _M], body: bytes, msg: _M) -> _M:
    if len(body) <= _KEPT_MAX_BODY:
        if len(kept) >= _KEPT_MAX:
            kept.clear()
        kept[body] = msg
    return msg


def parse_frontend(kind: bytes, body: bytes) -> FrontendMessage:
    """Parse one typed frontend message."""
    # The messages of every prepared execution first, without a cursor object.
    if kind == b"B":
        return _parse_bind(body)
    if kind == b"S":
        if body:
            raise ProtocolError("unexpected trailing bytes in message")
        return _SYNC
    if kind == b"E":
        kept = _EXECUTES.get(body)
        if kept is not None:
            return kept
        name, pos = _name(body, 0)
        if len(body) - pos != 4:
            raise ProtocolError("message too short" if len(body) - pos < 4
                                else "unexpected trailing bytes in message")
        return _keep(_EXECUTES, body, Execute(name, _I32.unpack_from(body, pos)[0]))
    if kind == b"D" and body:
        described = _DESCRIBES.get(body)
        if described is not None:
            return described
        k = chr(body[0])
        if k not in ("S", "P"):
            raise ProtocolError(f"invalid DESCRIBE message subtype {ord(k)}")
        name, pos = _name(body, 1)
        if pos != len(body):
            raise ProtocolError("unexpected trailing bytes in message")
        return _keep(_DESCRIBES, body, Describe(k, name))
    c = _Cursor(body)
    msg: FrontendMessage
    if kind == b"Q":
        msg = Query(c.cstr())
    elif kind == b"P":
        name, sql = c.cstr(), c.cstr()
        oids = [c.int32() & 0xFFFFFFFF for _ in range(c.count("parameter type"))]
        msg = Parse(name, sql, oids)
    elif kind == b"B":
        portal, stmt = c.cstr(), c.cstr()
        formats = [c.int16() for _ in range(c.count("parameter format"))]
        params: list[bytes | None] = []
        for _ in range(c.count("parameter")):
            n = c.int32()
            params.append(None if n == -1 else c.take(n))
        results = [c.int16() for _ in range(c.count("result format"))]
        for f in formats + results:
            if f not in (0, 1):
                raise ProtocolError(f"unsupported format code: {f}")
        msg = Bind(portal, stmt, formats, params, results)
    elif kind == b"D":
        k = c.byte()
        if k not in ("S", "P"):
            raise ProtocolError(f"invalid DESCRIBE message subtype {ord(k)}")
        msg = Describe(k, c.cstr())
    elif kind == b"E":
        msg = Execute(c.cstr(), c.int32())
    elif kind == b"C":
        k = c.byte()
        if k not in ("S", "P"):
            raise ProtocolError(f"invalid CLOSE message subtype {ord(k)}")
        msg = Close(k, c.cstr())
    elif kind == b"S":
        msg = Sync()
    elif kind == b"H":
        msg = Flush()
    elif kind == b"X":
        msg = Terminate()
    elif kind == b"d":
        return CopyData(body)
    elif kind == b"c":
        msg = CopyDone()
    elif kind == b"f":
        msg = CopyFail(c.cstr())
    elif kind == b"p":
        return AuthResponse(body)
    elif kind == b"F":
        return FunctionCall(body)
    else:
        raise ProtocolError(f"invalid frontend message type {kind[0]}")
    c.end()
    return msg


class FrameReader:
    """Cuts a byte stream into messages. ``startup`` is True until the first typed message."""

    def __init__(self, max_message: int = MAX_MESSAGE) -> None:
        #: bytes while it holds one small read whole (slicing bytes copies once, a bytearray
        #: twice); a bytearray once reads are appended
        self._buf: bytes | bytearray = b""
        self._pos = 0
        self.startup = True
        self.max_message = max_message

    def feed(self, data: bytes | bytearray) -> None:
        """Buffer ``data``. A bytearray may be kept as the buffer itself (no copy), so a
        caller must not change one after handing it over."""
        if self._pos == len(self._buf):
            # Nothing waiting: a small read (a request) is kept as bytes, a large one (COPY
            # data) as the bytearray it came in.
            self._buf = bytes(data) if len(data) <= _SMALL_READ or \
                not isinstance(data, bytearray) else data
            self._pos = 0
        elif isinstance(self._buf, bytearray):
            self._buf += data
        else:  # appending to bytes would copy it all each time: a bytearray from here
            buf = bytearray(self._buf[self._pos:])
            buf += data
            self._buf = buf
            self._pos = 0

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._pos

    def next_startup(self) -> bytes | None:
        """The body of the next untyped packet (without its length word), or None."""
        buf, pos = self._buf, self._pos
        if len(buf) - pos < 4:
            return None
        (n,) = _I32.unpack_from(buf, pos)
        if n < 8 or n > MAX_STARTUP:
            raise ProtocolError("invalid length of startup packet")
        if len(buf) - pos < n:
            return None
        body = bytes(buf[pos + 4:pos + n])
        self._advance(n)
        return body

    def next_message(self) -> tuple[bytes, bytes] | None:
        """(type byte, body) of the next typed message, or None when incomplete."""
        buf, pos = self._buf, self._pos
        if len(buf) - pos < 5:
            return None
        kind = _KIND[buf[pos]]
        (n,) = _I32.unpack_from(buf, pos + 1)
        if n < 4:
            raise ProtocolError(f"invalid message length {n}")
        if n > self.max_message:
            raise ProtocolError(f"message of {n} bytes is larger than the limit")
        if len(buf) - pos < n + 1:
            return None
        if isinstance(buf, bytes):
            body = buf[pos + 5:pos + 1 + n]
        else:
            with memoryview(buf) as view:
                body = bytes(view[pos + 5:pos + 1 + n])  # one copy (a slice makes two)
        self._advance(n + 1)
        return kind, body

    def _advance(self, n: int) -> None:
        self._pos += n
        buf = self._buf
        if self._pos == len(buf):
            self._buf = b""
            self._pos = 0
        elif self._pos > 65536 and self._pos * 2 > len(buf):
            # Compact now and then, not on every message: deleting from the front is O(n).
            self._buf = buf[self._pos:] if isinstance(buf, bytes) else buf
            if isinstance(buf, bytearray):
                del buf[:self._pos]
            self._pos = 0


# ---------------------------------------------------------------------------------------------
# backend messages


def _msg(kind: bytes, body: bytes) -> bytes:
    return kind + _I32.pack(len(body) + 4) + body


def _cstr(s: str) -> bytes:
    return s.encode("utf-8") + b"\0"


def b_auth_ok() -> bytes:
    return _msg(b"R", _I32.pack(0))


def b_auth_cleartext() -> bytes:
    return _msg(b"R", _I32.pack(3))


def b_auth_sasl(mechanisms: list[str]) -> bytes:
    return _msg(b"R", _I32.pack(10) + b"".join(_cstr(m) for m in mechanisms) + b"\0")


def b_auth_sasl_continue(data: bytes) -> bytes:
    return _msg(b"R", _I32.pack(11) + data)


def b_auth_sasl_final(data: bytes) -> bytes:
    return _msg(b"R", _I32.pack(12) + data)


def b_parameter_status(name: str, value: str) -> bytes:
    return _msg(b"S", _cstr(name) + _cstr(value))


def b_backend_key_data(pid: int, secret: int) -> bytes:
    return _msg(b"K", _II.pack(pid, secret))


def b_ready_for_query(status: str) -> bytes:
    found = _READY.get(status)
    return found if found is not None else _msg(b"Z", status.encode("ascii"))


#: ReadyForQuery per transaction status (every statement ends with one).
_READY = {k: _msg(b"Z", k.encode("ascii")) for k in ("I", "T", "E")}


def b_negotiate_protocol_version(newest_minor: int, unrecognized: list[str]) -> bytes:
    body = _II.pack(newest_minor, len(unrecognized)) + b"".join(_cstr(o) for o in unrecognized)
    return _msg(b"v", body)


@dataclass(frozen=True)
class FieldDesc:
    """One RowDescription field."""

    name: str
    type_oid: int
    type_size: int = -1
    type_mod: int = -1
    table_oid: int = 0
    column_attnum: int = 0
    format: int = 0


_FIELD = struct.Struct("!ihihih")


def b_row_description(fields: list[FieldDesc]) -> bytes:
    parts = [_I16.pack(len(fields))]
    for f in fields:
        parts.append(_cstr(f.name))
        parts.append(_FIELD.pack(f.table_oid, f.column_attnum, f.type_oid, f.type_size,
                                 f.type_mod, f.format))
    return _msg(b"T", b"".join(parts))


def b_data_row(values: list[bytes | None]) -> bytes:
    parts = [_I16.pack(len(values))]
    for v in values:
        if v is None:
            parts.append(b"\xff\xff\xff\xff")
        else:
            parts.append(_I32.pack(len(v)))
            parts.append(v)
    body = b"".join(parts)
    return b"D" + _I32.pack(len(body) + 4) + body


def b_command_complete(tag: str) -> bytes:
    found = _TAGS.get(tag)
    if found is None:
        found = _msg(b"C", _cstr(tag))
        if len(_TAGS) < 4096:  # (tags repeat: SELECT 1, INSERT 0 1 ...; counts vary)
            _TAGS[tag] = found
    return found


#: CommandComplete bytes per tag, the commonest kept (:func:`b_command_complete`).
_TAGS: dict[str, bytes] = {}


def b_empty_query() -> bytes:
    return _msg(b"I", b"")


def b_parse_complete() -> bytes:
    return b"1\x00\x00\x00\x04"


def b_bind_complete() -> bytes:
    return b"2\x00\x00\x00\x04"


def b_close_complete() -> bytes:
    return b"3\x00\x00\x00\x04"


def b_no_data() -> bytes:
    return b"n\x00\x00\x00\x04"


def b_portal_suspended() -> bytes:
    return b"s\x00\x00\x00\x04"


def b_parameter_description(oids: list[int]) -> bytes:
    return _msg(b"t", _I16.pack(len(oids)) + b"".join(struct.pack("!I", o) for o in oids))


def _fields(severity: str, sqlstate: str, message: str, *, detail: str | None = None,
            hint: str | None = None, position: int | None = None, table: str | None = None,
            column: str | None = None) -> bytes:
    parts = [b"S" + _cstr(severity), b"V" + _cstr(severity), b"C" + _cstr(sqlstate),
             b"M" + _cstr(message)]
    if detail:
        parts.append(b"D" + _cstr(detail))
    if hint:
        parts.append(b"H" + _cstr(hint))
    if position:
        parts.append(b"P" + _cstr(str(position)))
    if table:
        parts.append(b"t" + _cstr(table))
    if column:
        parts.append(b"c" + _cstr(column))
    return b"".join(parts) + b"\0"


def b_error(sqlstate: str, message: str, *, severity: str = "ERROR", detail: str | None = None,
            hint: str | None = None, position: int | None = None, table: str | None = None,
            column: str | None = None) -> bytes:
    return _msg(b"E", _fields(severity, sqlstate, message, detail=detail, hint=hint,
                              position=position, table=table, column=column))


def b_notice(message: str, *, severity: str = "NOTICE", sqlstate: str = "00000",
             detail: str | None = None, hint: str | None = None) -> bytes:
    return _msg(b"N", _fields(severity, sqlstate, message, detail=detail, hint=hint))


def b_copy_in_response(binary: bool, ncols: int) -> bytes:
    fmt = 1 if binary else 0
    return _msg(b"G", bytes([fmt]) + _I16.pack(ncols) + _I16.pack(fmt) * ncols)


def b_copy_out_response(binary: bool, ncols: int) -> bytes:
    fmt = 1 if binary else 0
    return _msg(b"H", bytes([fmt]) + _I16.pack(ncols) + _I16.pack(fmt) * ncols)


def b_copy_data(data: bytes) -> bytes:
    return b"d" + _I32.pack(len(data) + 4) + data


def b_copy_done() -> bytes:
    return b"c\x00\x00\x00\x04"


# ---------------------------------------------------------------------------------------------
# frontend message builders (used by tests and by the fuzzer to speak to the server)


def f_startup(params: dict[str, str], version: int = PROTOCOL_V3) -> bytes:
    body = _I32.pack(version) + b"".join(_cstr(k) + _cstr(v) for k, v in params.items()) + b"\0"
    return _I32.pack(len(body) + 4) + body


def f_ssl_request() -> bytes:
    return _II.pack(8, SSL_REQUEST)


def f_cancel(pid: int, secret: int) -> bytes:
    return _I32.pack(16) + _I32.pack(CANCEL_REQUEST) + _II.pack(pid, secret)


def f_query(sql: str) -> bytes:
    return _msg(b"Q", _cstr(sql))


def f_parse(name: str, sql: str, oids: list[int] | None = None) -> bytes:
    oids = oids or []
    return _msg(b"P", _cstr(name) + _cstr(sql) + _I16.pack(len(oids))
                + b"".join(struct.pack("!I", o) for o in oids))


def f_bind(portal: str, stmt: str, params: list[bytes | None],
           param_formats: list[int] | None = None,
           result_formats: list[int] | None = None) -> bytes:
    pf = param_formats or []
    rf = result_formats or []
    parts = [_cstr(portal), _cstr(stmt), _I16.pack(len(pf))]
    parts += [_I16.pack(f) for f in pf]
    parts.append(_I16.pack(len(params)))
    for p in params:
        parts.append(b"\xff\xff\xff\xff" if p is None else _I32.pack(len(p)) + p)
    parts.append(_I16.pack(len(rf)))
    parts += [_I16.pack(f) for f in rf]
    return _msg(b"B", b"".join(parts))


def f_describe(kind: str, name: str) -> bytes:
    return _msg(b"D", kind.encode() + _cstr(name))


def f_execute(portal: str, max_rows: int = 0) -> bytes:
    return _msg(b"E", _cstr(portal) + _I32.pack(max_rows))


def f_close(kind: str, name: str) -> bytes:
    return _msg(b"C", kind.encode() + _cstr(name))


def f_sync() -> bytes:
    return b"S\x00\x00\x00\x04"


def f_flush() -> bytes:
    return b"H\x00\x00\x00\x04"


def f_terminate() -> bytes:
    return b"X\x00\x00\x00\x04"


def f_copy_data(data: bytes) -> bytes:
    return _msg(b"d", data)


def f_copy_done() -> bytes:
    return b"c\x00\x00\x00\x04"


def f_copy_fail(message: str) -> bytes:
    return _msg(b"f", _cstr(message))


def f_password(data: bytes) -> bytes:
    return _msg(b"p", data)


def f_sasl_initial(mechanism: str, data: bytes) -> bytes:
    return _msg(b"p", _cstr(mechanism) + _I32.pack(len(data)) + data)


def split_backend(data: bytes) -> list[tuple[bytes, bytes]]:
    """Split a stream of backend messages into (type, body) pairs (for tests)."""
    out = []
    pos = 0
    while pos < len(data):
        kind = data[pos:pos + 1]
        (n,) = _I32.unpack_from(data, pos + 1)
        out.append((kind, data[pos + 5:pos + 1 + n]))
        pos += 1 + n
    return out


def parse_error_fields(body: bytes) -> dict[str, str]:
    """Fields of an ErrorResponse/NoticeResponse body, by their one-letter code."""
    out: dict[str, str] = {}
    c = _Cursor(body)
    while True:
        code = c.byte()
        if code == "\0":
            break
        out[code] = c.cstr()
    return out
