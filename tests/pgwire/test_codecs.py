"""Codecs against the bytes PostgreSQL 15 itself sends (captured from a real server with
``DateStyle=ISO``, ``TimeZone=UTC``): text and binary, both directions."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from decimal import Decimal
from typing import Any

import pytest

from tarndb.engine.types import ColumnType
from tarndb.pgwire import codecs

UTC = dt.timezone.utc

# (type, python value, oid, text bytes from Postgres, binary bytes from Postgres)
CASES: list[tuple[ColumnType, Any, int, bytes, bytes]] = [
    (ColumnType("bool"), True, 16, b"t", b"\x01"),
    (ColumnType("int2"), 12, 21, b"12", b"\x00\x0c"),
    (ColumnType("int4"), -5, 23, b"-5", b"\xff\xff\xff\xfb"),
    (ColumnType("int8"), 9000000000, 20, b"9000000000", b"\x00\x00\x00\x02\x18q\x1a\x00"),
    (ColumnType("float4"), 1.5, 700, b"1.5", b"?\xc0\x00\x00"),
    (ColumnType("float4"), 0.10000000149011612, 700, b"0.1", b"=\xcc\xcc\xcd"),
    (ColumnType("float4"), 1.0000000116860974e-07, 700, b"1e-07", b"3\xd6\xbf\x95"),
    (ColumnType("float8"), 0.1, 701, b"0.1", b"?\xb9\x99\x99\x99\x99\x99\x9a"),
    (ColumnType("float8"), 3.0, 701, b"3", b"@\x08\x00\x00\x00\x00\x00\x00"),
    (ColumnType("float8"), 1e16, 701, b"1e+16", b"CA\xc3y7\xe0\x80\x00"),
    (ColumnType("float4"), -math.inf, 700, b"-Infinity", b"\xff\x80\x00\x00"),
    (ColumnType("numeric"), Decimal("123.4500"), 1700, b"123.4500",
     b"\x00\x02\x00\x00\x00\x00\x00\x04\x00{\x11\x94"),
    (ColumnType("numeric"), Decimal("0"), 1700, b"0", b"\x00\x00\x00\x00\x00\x00\x00\x00"),
    (ColumnType("numeric"), Decimal("-0.0001"), 1700, b"-0.0001",
     b"\x00\x01\xff\xff@\x00\x00\x04\x00\x01"),
    (ColumnType("numeric"), Decimal("100000"), 1700, b"100000",
     b"\x00\x01\x00\x01\x00\x00\x00\x00\x00\n"),
    (ColumnType("numeric"), Decimal("12345678.90123"), 1700, b"12345678.90123",
     b"\x00\x04\x00\x01\x00\x00\x00\x05\x04\xd2\x16.#4\x0b\xb8"),
    (ColumnType("text"), "ab c", 25, b"ab c", b"ab c"),
    (ColumnType("bytea"), b"\x00\xff", 17, b"\\x00ff", b"\x00\xff"),
    (ColumnType("jsonb"), {"a": [1, 2], "b": None}, 3802, b'{"a": [1, 2], "b": null}',
     b'\x01{"a": [1, 2], "b": null}'),
    (ColumnType("uuid"), uuid.UUID("12345678-1234-5678-1234-567812345678"), 2950,
     b"12345678-1234-5678-1234-567812345678", b"\x124Vx\x124Vx\x124Vx\x124Vx"),
    (ColumnType("date"), dt.date(2024, 1, 2), 1082, b"2024-01-02", b'\x00\x00"?'),
    (ColumnType("timestamptz"), dt.datetime(2024, 1, 2, 3, 4, 5, 500000, tzinfo=UTC), 1184,
     b"2024-01-02 03:04:05.5+00", b"\x00\x02\xb0\xec\x85\x1d\x94`"),
    (ColumnType("timestamp"), dt.datetime(2024, 1, 2, 3, 4, 5), 1114, b"2024-01-02 03:04:05",
     b"\x00\x02\xb0\xec\x85\x15\xf3@"),
    (ColumnType("time"), dt.time(12, 34, 56, 789000), 1083, b"12:34:56.789",
     b"\x00\x00\x00\n\x8b\xe6&\x08"),
    (ColumnType("interval"), dt.timedelta(days=1, hours=2, minutes=3, seconds=4), 1186,
     b"1 day 02:03:04",
     b"\x00\x00\x00\x01\xb8\x1e\xe6\x00\x00\x00\x00\x01\x00\x00\x00\x00"),
    (ColumnType("float4", 1), [1.5, 2.0, -3.0], 1021, b"{1.5,2,-3}",
     b"\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x02\xbc\x00\x00\x00\x03\x00\x00\x00\x01"
     b"\x00\x00\x00\x04?\xc0\x00\x00\x00\x00\x00\x04@\x00\x00\x00\x00\x00\x00\x04\xc0@\x00\x00"),
    (ColumnType("float4", 2), [[1.0, 2.0], [3.0, 4.0]], 1021, b"{{1,2},{3,4}}",
     b"\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x02\xbc\x00\x00\x00\x02\x00\x00\x00\x01"
     b"\x00\x00\x00\x02\x00\x00\x00\x01\x00\x00\x00\x04?\x80\x00\x00\x00\x00\x00\x04@\x00"
     b"\x00\x00\x00\x00\x00\x04@@\x00\x00\x00\x00\x00\x04@\x80\x00\x00"),
    (ColumnType("text", 1), ["a b", "", None, 'x"y'], 1009, b'{"a b","",NULL,"x\\"y"}',
     b"\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x19\x00\x00\x00\x04\x00\x00\x00\x01"
     b"\x00\x00\x00\x03a b\x00\x00\x00\x00\xff\xff\xff\xff\x00\x00\x00\x03x\"y"),
    (ColumnType("int8", 1), [1, None, 3], 1016, b"{1,NULL,3}",
     b"\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x14\x00\x00\x00\x03\x00\x00\x00\x01"
     b"\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x01\xff\xff\xff\xff\x00\x00\x00\x08"
     b"\x00\x00\x00\x00\x00\x00\x00\x03"),
    (ColumnType("float4", 1), [], 1021, b"{}", b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\xbc"),
    (ColumnType("bool", 1), [True, False], 1000, b"{t,f}",
     b"\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x10\x00\x00\x00\x02\x00\x00\x00\x01"
     b"\x00\x00\x00\x01\x01\x00\x00\x00\x01\x00"),
]


@pytest.mark.parametrize("ctype,value,oid,text,binary", CASES,
                         ids=[f"{c[0].pg_name}:{c[3][:20]!r}" for c in CASES])
def test_encode_matches_postgres(ctype: ColumnType, value: Any, oid: int, text: bytes,
                                 binary: bytes) -> None:
    assert ctype.oid == oid
    assert codecs.encoder(ctype, 0)(value) == text
    assert codecs.encoder(ctype, 1)(value) == binary


@pytest.mark.parametrize("ctype,value,oid,text,binary", CASES,
                         ids=[f"{c[0].pg_name}:{c[3][:20]!r}" for c in CASES])
def test_decode_postgres_bytes(ctype: ColumnType, value: Any, oid: int, text: bytes,
                               binary: bytes) -> None:
    from_binary = codecs.decode_param(binary, oid, 1)
    from_text = codecs.decode_param(text, oid, 0)
    if ctype.base == "float4" and not ctype.ndim:
        assert from_binary == pytest.approx(value)
        assert from_text == pytest.approx(value, rel=1e-6)
        return
    if ctype.base in ("float4", "float8") and ctype.ndim and value:
        # Binary float arrays decode to numpy arrays of their element width (no Python
        # floats on the way to Arrow).
        import numpy as np

        assert isinstance(from_binary, np.ndarray)
        assert from_binary.dtype == (np.float32 if ctype.base == "float4" else np.float64)
        from_binary = from_binary.tolist()
    assert from_binary == value
    assert from_text == value


def test_nan_round_trip() -> None:
    assert codecs.encoder(ColumnType("float8"), 0)(math.nan) == b"NaN"
    assert codecs.encoder(ColumnType("numeric"), 1)(Decimal("NaN")) == \
        b"\x00\x00\x00\x00\xc0\x00\x00\x00"
    assert math.isnan(codecs.decode_param(b"NaN", 701, 0))


def test_unknown_type_text_param_stays_string() -> None:
    # psycopg sends strings as unknown (0): the engine coerces them by context ($1::jsonb).
    assert codecs.decode_param(b'{"a": 1}', 0, 0) == '{"a": 1}'


def test_big_embedding_binary_round_trip() -> None:
    import numpy as np

    vec = np.random.default_rng(0).standard_normal((32, 128)).astype(np.float32)
    t = ColumnType("float4", 2)
    b = codecs.encoder(t, 1)(vec.tolist())
    back = codecs.decode_param(b, 1021, 1)
    assert np.array_equal(np.asarray(back, dtype=np.float32), vec)
    txt = codecs.encoder(t, 0)(vec.tolist())
    assert np.array_equal(np.asarray(codecs.decode_param(txt, 1021, 0), dtype=np.float32), vec)


def test_array_text_parser_edge_cases() -> None:
    parse = codecs.parse_array_text
    assert parse('{"a,b","c\\\\d",NULL,"NULL"}', str) == ["a,b", "c\\d", None, "NULL"]
    assert parse("{{1,2},{3,4}}", int) == [[1, 2], [3, 4]]
    assert parse("[1:2]={5,6}", int) == [5, 6]
    for bad in ("{1,2", "1,2}", "{1,,2}", '{"a}'):
        with pytest.raises(Exception) as ei:
            parse(bad, int)
        assert getattr(ei.value, "sqlstate", "") == "22P02"


@pytest.mark.parametrize("text", [
    "{1.5,-2e-3,+4}", "{{1,2},{3,4}}", "{ 1 , 2 }", "{}", "{.5,1.}", "{NaN,Infinity}",
    "{null,NULL,1}", '{"1.5"}', "{1.5,\u00a02}", "{\f1,\v2}",
])
def test_float_array_text_fast_path_reads_what_the_parser_reads(text: str) -> None:
    # Plain number lists go to orjson; anything else (words, quotes, Unicode spaces) must
    # reach the general parser, and both read the same numbers.
    got = codecs.decode_param(text.encode(), 1021, 0)  # float4[] as text
    want = codecs.parse_array_text(text, codecs._parse_float)
    assert got == want or (str(got) == str(want) and "nan" in str(want))


def test_bad_binary_input_is_22023() -> None:
    with pytest.raises(Exception) as ei:
        codecs.decode_param(b"\x00\x01", 23, 1)
    assert getattr(ei.value, "sqlstate", "") == "22023"
    with pytest.raises(Exception) as ei:
        codecs.decode_param(b"\x02{}", 3802, 1)
    assert getattr(ei.value, "sqlstate", "") == "22023"
