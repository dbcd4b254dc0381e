"""Byte-for-byte tests of message framing, parsing and building (no sockets, no engine)."""

from __future__ import annotations

import struct

import pytest

from tarndb.pgwire import messages as m


def test_ready_for_query_bytes() -> None:
    assert m.b_ready_for_query("I") == b"Z\x00\x00\x00\x05I"
    assert m.b_ready_for_query("T") == b"Z\x00\x00\x00\x05T"
    assert m.b_ready_for_query("E") == b"Z\x00\x00\x00\x05E"


def test_auth_messages_bytes() -> None:
    assert m.b_auth_ok() == b"R\x00\x00\x00\x08\x00\x00\x00\x00"
    assert m.b_auth_sasl(["SCRAM-SHA-256"]) == \
        b"R\x00\x00\x00\x17\x00\x00\x00\x0aSCRAM-SHA-256\x00\x00"
    assert m.b_auth_sasl_continue(b"r=x") == b"R\x00\x00\x00\x0b\x00\x00\x00\x0br=x"
    assert m.b_auth_sasl_final(b"v=y") == b"R\x00\x00\x00\x0b\x00\x00\x00\x0cv=y"


def test_row_description_bytes() -> None:
    got = m.b_row_description([m.FieldDesc("id", 20, 8), m.FieldDesc("v", 1021, -1, -1, 0, 0, 1)])
    body = (b"\x00\x02"
            + b"id\x00" + struct.pack("!ihihih", 0, 0, 20, 8, -1, 0)
            + b"v\x00" + struct.pack("!ihihih", 0, 0, 1021, -1, -1, 1))
    assert got == b"T" + struct.pack("!i", len(body) + 4) + body


def test_data_row_with_null() -> None:
    assert m.b_data_row([b"1", None, b""]) == (
        b"D\x00\x00\x00\x13\x00\x03" b"\x00\x00\x00\x011" b"\xff\xff\xff\xff" b"\x00\x00\x00\x00")


def test_command_complete_and_small_messages() -> None:
    assert m.b_command_complete("SELECT 1") == b"C\x00\x00\x00\x0dSELECT 1\x00"
    assert m.b_parse_complete() == b"1\x00\x00\x00\x04"
    assert m.b_bind_complete() == b"2\x00\x00\x00\x04"
    assert m.b_close_complete() == b"3\x00\x00\x00\x04"
    assert m.b_no_data() == b"n\x00\x00\x00\x04"
    assert m.b_portal_suspended() == b"s\x00\x00\x00\x04"
    assert m.b_empty_query() == b"I\x00\x00\x00\x04"
    assert m.b_parameter_description([23, 1021]) == \
        b"t\x00\x00\x00\x0e\x00\x02\x00\x00\x00\x17\x00\x00\x03\xfd"
    assert m.b_parameter_status("a", "b") == b"S\x00\x00\x00\x08a\x00b\x00"
    assert m.b_backend_key_data(1, 2) == b"K\x00\x00\x00\x0c\x00\x00\x00\x01\x00\x00\x00\x02"


def test_error_response_fields() -> None:
    b = m.b_error("42P01", 'relation "t" does not exist', position=15, hint="h")
    assert b[:1] == b"E"
    (n,) = struct.unpack("!i", b[1:5])
    assert n == len(b) - 1
    fields = m.parse_error_fields(b[5:])
    assert fields == {"S": "ERROR", "V": "ERROR", "C": "42P01",
                      "M": 'relation "t" does not exist', "H": "h", "P": "15"}
    assert b.endswith(b"\x00\x00")


def test_copy_responses() -> None:
    assert m.b_copy_in_response(False, 2) == b"G\x00\x00\x00\x0b\x00\x00\x02\x00\x00\x00\x00"
    assert m.b_copy_out_response(True, 1) == b"H\x00\x00\x00\x09\x01\x00\x01\x00\x01"
    assert m.b_copy_data(b"ab") == b"d\x00\x00\x00\x06ab"
    assert m.b_copy_done() == b"c\x00\x00\x00\x04"


def test_startup_packets() -> None:
    r = m.FrameReader()
    r.feed(m.f_ssl_request())
    assert m.parse_startup(r.next_startup() or b"") == m.SSLRequest()
    r.feed(m.f_startup({"user": "u", "database": "d"}))
    pkt = m.parse_startup(r.next_startup() or b"")
    assert pkt == m.StartupMessage(m.PROTOCOL_V3, {"user": "u", "database": "d"})
    r.feed(m.f_cancel(7, -3))
    assert m.parse_startup(r.next_startup() or b"") == m.CancelRequest(7, -3)
    assert m.parse_startup(struct.pack("!i", m.GSSENC_REQUEST)) == m.GSSENCRequest()


def test_startup_rejects_garbage() -> None:
    r = m.FrameReader()
    r.feed(b"\x00\x00\x00\x03")
    with pytest.raises(m.ProtocolError):
        r.next_startup()
    r = m.FrameReader()
    r.feed(struct.pack("!i", 1 << 20))
    with pytest.raises(m.ProtocolError):
        r.next_startup()
    with pytest.raises(m.ProtocolError):
        m.parse_startup(struct.pack("!i", 2 << 16) + b"user\x00x\x00\x00")
    with pytest.raises(m.ProtocolError):
        m.parse_startup(struct.pack("!i", m.PROTOCOL_V3) + b"user\x00x")  # unterminated


def test_framing_across_chunks() -> None:
    data = m.f_query("SELECT 1") + m.f_parse("s", "SELECT $1", [23]) + m.f_sync()
    r = m.FrameReader()
    r.startup = False
    got = []
    for i in range(len(data)):  # one byte at a time
        r.feed(data[i:i + 1])
        while (frame := r.next_message()) is not None:
            got.append(m.parse_frontend(*frame))
    assert got == [m.Query("SELECT 1"), m.Parse("s", "SELECT $1", [23]), m.Sync()]
    assert r.buffered == 0


def test_bind_parse() -> None:
    raw = m.f_bind("p", "s", [b"12", None, b"\x00\x01"], [0, 0, 1], [1])
    kind, body = raw[:1], raw[5:]
    msg = m.parse_frontend(kind, body)
    assert msg == m.Bind("p", "s", [0, 0, 1], [b"12", None, b"\x00\x01"], [1])


def test_describe_execute_close() -> None:
    assert m.parse_frontend(b"D", b"Sst\x00") == m.Describe("S", "st")
    assert m.parse_frontend(b"E", b"\x00\x00\x00\x00\x05") == m.Execute("", 5)
    assert m.parse_frontend(b"C", b"P\x00") == m.Close("P", "")
    with pytest.raises(m.ProtocolError):
        m.parse_frontend(b"D", b"Xst\x00")


def test_kept_describe_and_execute_are_the_messages_parsed() -> None:
    """Execute and Describe are kept by their bodies (a prepared execution sends the same
    two every time): a second parse gives an equal message, each body its own one, and a
    malformed body still raises every time (only parsed ones are kept)."""
    bodies = [(b"E", b"\x00\x00\x00\x00\x00", m.Execute("", 0)),
              (b"E", b"p1\x00\x00\x00\x00\x05", m.Execute("p1", 5)),
              (b"E", b"p1\x00\x00\x00\x00\x06", m.Execute("p1", 6)),
              (b"D", b"P\x00", m.Describe("P", "")),
              (b"D", b"S_pg3_1\x00", m.Describe("S", "_pg3_1")),
              (b"D", b"Sn\xc3\xa9\x00", m.Describe("S", "n\u00e9"))]
    for _ in range(3):
        for kind, body, want in bodies:
            assert m.parse_frontend(kind, bytes(body)) == want
        for kind, body in ((b"E", b"\x00\x00\x00"), (b"D", b"Pp\x00x"), (b"D", b"Xst\x00")):
            with pytest.raises(m.ProtocolError):
                m.parse_frontend(kind, body)
    # framed as a client sends them, through the reader
    r = m.FrameReader()
    r.startup = False
    r.feed(m.f_describe("P", "") + m.f_execute("", 0) + m.f_describe("P", "") +
           m.f_execute("", 0))
    got = []
    while (frame := r.next_message()) is not None:
        got.append(m.parse_frontend(*frame))
    assert got == [m.Describe("P", ""), m.Execute("", 0)] * 2


@pytest.mark.parametrize("kind,body", [
    (b"Q", b"no terminator"),
    (b"P", b"s\x00SELECT\x00\x00"),  # parameter count cut short
    (b"B", b"\x00\x00\x00\x01\x00\x07"),  # format code 7
    (b"B", b"\x00\x00\x00\x00\x00\x01\x00\x00\x00\x09ab"),  # value longer than message
    (b"E", b"\x00\x00\x00"),
    (b"E", b"\x00\x00\x00\x00\x05\x00"),  # trailing byte
    (b"E", b"portal"),  # unterminated
    (b"B", b"p\x00s"),  # statement name unterminated
    (b"B", b"\x00\x00\xff\xff"),  # negative format count
    (b"B", b"\x00\x00\x00\x00\xff\xfe"),  # negative parameter count
    (b"B", b"\x00\x00\x00\x00\x00\x01\xff\xff\xff\xfe"),  # length -2
    (b"B", b"\x00\x00\x00\x02\x00\x00"),  # two formats announced, one sent
    (b"B", b"\x00\x00\x00\x00\x00\x00\x00\x01\x00\x02"),  # result format 2
    (b"B", b"\x00\x00\x00\x00\x00\x00\x00\x00\x00"),  # trailing byte
    (b"B", b"\xff\x00\x00\x00\x00\x00\x00\x00\x00"),  # not UTF-8
    (b"D", b""),
    (b"D", b"Pp\x00x"),  # trailing bytes
    (b"S", b"extra"),
    (b"?", b""),
])
def test_malformed_messages_raise_protocol_error(kind: bytes, body: bytes) -> None:
    with pytest.raises(m.ProtocolError) as ei:
        m.parse_frontend(kind, body)
    assert ei.value.sqlstate == "08P01"


def test_oversized_message_refused() -> None:
    r = m.FrameReader(max_message=1000)
    r.startup = False
    r.feed(b"Q" + struct.pack("!i", 5000))
    with pytest.raises(m.ProtocolError):
        r.next_message()


def test_bind_of_many_formats_and_results() -> None:
    raw = m.f_bind("", "s", [b"1", b"2", b"3"], [1, 0, 1], [0, 1, 1, 0])
    msg = m.parse_frontend(raw[:1], raw[5:])
    assert msg == m.Bind("", "s", [1, 0, 1], [b"1", b"2", b"3"], [0, 1, 1, 0])


def test_framing_of_a_request_then_a_message_split_across_reads() -> None:
    """A whole request read at once, then a message cut in two by the socket: the reader
    keeps the tail of one read and appends the next (the buffer changes kind)."""
    first = m.f_bind("", "s", [b"7"], [0], [1]) + m.f_execute("", 0) + m.f_sync()
    query = m.f_query("SELECT 'x'")
    r = m.FrameReader()
    r.startup = False
    r.feed(bytearray(first + query[:3]))
    got = []
    while (frame := r.next_message()) is not None:
        got.append(m.parse_frontend(*frame))
    assert got == [m.Bind("", "s", [0], [b"7"], [1]), m.Execute("", 0), m.Sync()]
    assert r.buffered == 3
    r.feed(bytearray(query[3:8]))
    assert r.next_message() is None
    r.feed(bytearray(query[8:]))
    frame = r.next_message()
    assert frame is not None and m.parse_frontend(*frame) == m.Query("SELECT 'x'")
    assert r.buffered == 0 and r.next_message() is None


def test_framing_of_large_reads() -> None:
    """Reads larger than the reader keeps as bytes (COPY data) frame the same."""
    big = b"x" * 200_000
    data = m.f_copy_data(big) + m.f_copy_data(b"yz") + m.f_copy_done()
    r = m.FrameReader()
    r.startup = False
    got = []
    for i in range(0, len(data), 70_000):
        r.feed(bytearray(data[i:i + 70_000]))
        while (frame := r.next_message()) is not None:
            got.append(m.parse_frontend(*frame))
    assert got == [m.CopyData(big), m.CopyData(b"yz"), m.CopyDone()]
    assert r.buffered == 0
