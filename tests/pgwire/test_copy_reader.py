"""Binary COPY FROM decoding: rows are decoded as CopyData messages arrive, whatever the cuts."""

from __future__ import annotations

import struct

import numpy as np
import pyarrow as pa
import pytest

from tarndb.engine.types import ColumnType
from tarndb.errors import InvalidTextRepresentation
from tarndb.pgwire import codecs
from tarndb.pgwire.copy import BINARY_SIGNATURE, CopyOptions, CopyReader

TYPES = [ColumnType("int8"), ColumnType("text"), ColumnType("float4", 1), ColumnType("bool"),
         ColumnType("jsonb")]
ROWS: list[tuple[object, ...]] = [
    (1, "a", [1.0, 2.0, 3.0], True, {"k": 1}),
    (None, None, None, None, None),
    (3, "ünïcode, longer text", [-0.5, 0.25, 1e-3], False, [1, 2]),
    (-(2**62), "", [0.0, 0.0, 0.0], None, "s"),
    (5, "odd dims", [1.0], True, None),  # another length: the block falls back per field
]


def payload(rows: list[tuple[object, ...]], header_ext: bytes = b"") -> bytes:
    encs = [codecs.binary_encoder(t) for t in TYPES]
    out = [BINARY_SIGNATURE, struct.pack("!ii", 0, len(header_ext)), header_ext]
    for row in rows:
        out.append(struct.pack("!h", len(row)))
        for v, enc in zip(row, encs, strict=True):
            if v is None:
                out.append(struct.pack("!i", -1))
            else:
                b = enc(v)
                out.append(struct.pack("!i", len(b)) + b)
    out.append(b"\xff\xff")
    return b"".join(out)


def finished(r: CopyReader) -> pa.Table:
    """What the reader still holds, as one table (COPY hands it out in batches)."""
    return pa.concat_tables(list(r.finish()))


def read(chunks: list[bytes]) -> pa.Table:
    r = CopyReader(CopyOptions(format="binary"), TYPES)
    for c in chunks:
        r.feed(c)
    return finished(r)


def expected() -> list[dict[str, object]]:
    return read([payload(ROWS)]).to_pylist()


def test_one_message_decodes_every_type() -> None:
    got = read([payload(ROWS)])
    assert got.column(0).to_pylist() == [r[0] for r in ROWS]
    assert got.column(1).to_pylist() == [r[1] for r in ROWS]
    vecs = got.column(2).to_pylist()
    assert vecs[1] is None
    for v, r in zip(vecs, ROWS, strict=True):
        if r[2] is not None:
            assert np.allclose(v, r[2])  # type: ignore[arg-type]
    assert got.column(3).to_pylist() == [r[3] for r in ROWS]
    assert got.num_rows == len(ROWS)


@pytest.mark.parametrize("ext", [b"", b"xyz"])
def test_any_cut_gives_the_same_rows(ext: bytes) -> None:
    data = payload(ROWS, ext)
    want = expected()
    for cut in range(1, len(data)):
        assert read([data[:cut], data[cut:]]).to_pylist() == want, cut
    # One byte per message: the worst case for a row split across many messages.
    assert read([data[i:i + 1] for i in range(len(data))]).to_pylist() == want


def test_many_blocks_of_embeddings_are_one_column() -> None:
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((2000, 16)).astype(np.float32)
    rows = [(i, f"row {i}", vecs[i].tolist(), i % 2 == 0, None) for i in range(2000)]
    data = payload(rows)
    got = read([data[o:o + 4096] for o in range(0, len(data), 4096)])
    assert got.column(0).to_pylist() == list(range(2000))
    flat = np.asarray(got.column(2).combine_chunks().flatten())
    assert np.array_equal(flat, vecs.reshape(-1))
    assert got.column(1).to_pylist()[1999] == "row 1999"


def test_truncated_or_bad_data_is_an_error() -> None:
    data = payload(ROWS)
    with pytest.raises(InvalidTextRepresentation, match="unexpected EOF"):
        read([data[:40]])  # no trailer, a row cut short
    with pytest.raises(InvalidTextRepresentation, match="signature"):
        read([b"PGCOPY\n\xff\r\n\x01" + data[11:]])
    with pytest.raises(InvalidTextRepresentation, match="signature"):
        read([])
    with pytest.raises(InvalidTextRepresentation, match="field count"):
        read([data[:19] + struct.pack("!h", 2) + data[21:]])


def read_text(data: bytes, types: list[ColumnType] | None = None) -> pa.Table:
    r = CopyReader(CopyOptions(format="text"), types or [ColumnType("int8"),
                                                         ColumnType("float4", 1)])
    for i in range(0, len(data), 7):  # cut lines anywhere
        r.feed(data[i:i + 7])
    return finished(r)


def test_text_embeddings_parse_in_runs() -> None:
    rng = np.random.default_rng(1)
    vecs = rng.standard_normal((300, 8)).astype(np.float32)
    lines = [f"{i}\t{{{','.join(repr(float(x)) for x in v)}}}\n" for i, v in enumerate(vecs)]
    lines[5] = "5\t\\N\n"
    lines[6] = "6\t{1, 2 ,3}\n"       # blanks around elements
    lines[7] = "7\t{}\n"              # empty array
    lines[8] = "8\t{1,NULL,3}\n"      # a NULL element: value-by-value decoding
    lines[9] = "9\t{NaN,Infinity,-Infinity}\n"
    got = read_text("".join(lines).encode()).to_pylist()
    assert [r["c0"] for r in got] == list(range(300))
    assert got[5]["c1"] is None
    assert got[6]["c1"] == [1.0, 2.0, 3.0]
    assert got[7]["c1"] == []
    assert got[8]["c1"] == [1.0, None, 3.0]
    assert np.isnan(got[9]["c1"][0]) and got[9]["c1"][1:] == [float("inf"), float("-inf")]
    for i in [0, 4, 10, 299]:
        assert np.array_equal(np.array(got[i]["c1"], np.float32), vecs[i])


def test_text_embedding_errors_name_the_value() -> None:
    with pytest.raises(InvalidTextRepresentation):
        read_text(b"1\t{1,2}\n2\t{1,abc}\n")


@pytest.mark.parametrize("base", ["float4", "float8"])
def test_multivector_bags_decode_exactly_without_python_floats(base: str) -> None:
    """float[][] values (ColBERT-style bags of different lengths, a NULL, an empty bag) come
    out exactly as sent, text or binary, and binary ones are built from numpy matrices
    (the nested list array), not Python lists."""
    types = [ColumnType("int8"), ColumnType(base, 2)]
    rng = np.random.default_rng(1)
    dtype = np.float32 if base == "float4" else np.float64
    bags: list[np.ndarray | None] = [rng.standard_normal((n, 8)).astype(dtype)
                                     for n in (3, 1, 5)]
    bags.insert(1, None)
    bags.append(rng.standard_normal((2, 3)).astype(dtype))  # another width
    enc = [codecs.binary_encoder(t) for t in types]
    out = [BINARY_SIGNATURE, struct.pack("!ii", 0, 0)]
    for i, bag in enumerate(bags):
        out.append(struct.pack("!h", 2))
        b = enc[0](i)
        out.append(struct.pack("!i", len(b)) + b)
        if bag is None:
            out.append(struct.pack("!i", -1))
        else:
            b = enc[1](bag.tolist())
            out.append(struct.pack("!i", len(b)) + b)
    out.append(b"\xff\xff")
    r = CopyReader(CopyOptions(format="binary"), types)
    r.feed(b"".join(out))
    col = finished(r).column(1)
    got = col.to_pylist()
    for bag, value in zip(bags, got, strict=True):
        if bag is None:
            assert value is None
        else:
            assert np.array_equal(np.array(value, dtype=dtype), bag)
    assert col.type == types[1].arrow


def test_a_copy_of_bags_holds_about_its_size_in_memory() -> None:
    """500 bags of 32 x 128 float4 (8 MB of floats): decoding keeps them as float32, not as
    Python floats (32 bytes each, which made a COPY of bags peak at 7x its size)."""
    import tracemalloc

    types = [ColumnType("int8"), ColumnType("float4", 2)]
    bag = np.random.default_rng(2).standard_normal((32, 128)).astype(np.float32)
    head = struct.pack("!iiiiiii", 2, 0, 700, 32, 1, 128, 1)
    elems = np.empty(bag.size, dtype=[("len", ">i4"), ("v", ">f4")])
    elems["len"], elems["v"] = 4, bag.reshape(-1)
    field = head + elems.tobytes()
    row = struct.pack("!h", 2) + struct.pack("!iq", 8, 7) + struct.pack("!i", len(field)) + field
    data = BINARY_SIGNATURE + struct.pack("!ii", 0, 0) + row * 500 + b"\xff\xff"
    floats = 500 * bag.nbytes
    r = CopyReader(CopyOptions(format="binary"), types)
    tracemalloc.start()
    try:
        r.feed(data)
        table = finished(r)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert table.num_rows == 500
    assert np.array_equal(np.array(table.column(1)[499].as_py(), np.float32), bag)
    assert peak < 4 * floats, (peak, floats)
