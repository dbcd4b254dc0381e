"""A long answer (a big result, COPY TO) goes out through the connection's sink while it is
being made (the socket server sets ``sendall`` there), byte for byte what it would be
without one; a sink that fails (the client hung up) cancels the statement."""

from __future__ import annotations

import pytest

import tarndb
from tarndb.pgwire import messages as m
from tarndb.pgwire import protocol

from .test_protocol import connect, kinds, pdb  # noqa: F401 - pdb is a fixture

ROWS = 3000


@pytest.fixture(scope="module")
def big(pdb: tarndb.Database) -> str:  # noqa: F811
    s = pdb.session()
    s.execute("CREATE TABLE stream_rows (id INT8, t TEXT)")
    s.execute(f"INSERT INTO stream_rows SELECT i, repeat('x', 200) || i "
              f"FROM range({ROWS}) t(i)")
    s.close()
    return "stream_rows"


@pytest.mark.parametrize("sql", [
    "SELECT id, t FROM stream_rows ORDER BY id",
    "COPY (SELECT id, t FROM stream_rows ORDER BY id) TO STDOUT",
    "COPY stream_rows TO STDOUT (FORMAT BINARY)",
])
def test_a_long_answer_streams_through_the_sink(pdb: tarndb.Database, big: str,  # noqa: F811
                                                monkeypatch: pytest.MonkeyPatch,
                                                sql: str) -> None:
    plain, _ = connect(pdb)
    whole = plain.receive_data(m.f_query(sql))
    monkeypatch.setattr(protocol, "SPILL_BYTES", 64 << 10)
    monkeypatch.setattr(protocol, "_SPILL_CHECK", 16 << 10)
    conn, _ = connect(pdb)
    sent: list[bytes] = []
    conn.sink = sent.append
    rest = conn.receive_data(m.f_query(sql))
    assert len(sent) >= 5  # ~650 kB in pieces of ~64 kB, before the call returned
    assert all(len(piece) >= 64 << 10 for piece in sent)
    assert b"".join(sent) + rest == whole
    assert kinds(m.split_backend(rest))[-2:] == b"CZ"


def test_a_sink_that_fails_cancels_the_statement(pdb: tarndb.Database, big: str,  # noqa: F811
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protocol, "SPILL_BYTES", 64 << 10)
    monkeypatch.setattr(protocol, "_SPILL_CHECK", 16 << 10)
    conn, _ = connect(pdb)

    def gone(_: bytes) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    conn.sink = gone
    out = m.split_backend(conn.receive_data(m.f_query("SELECT id, t FROM stream_rows")))
    assert kinds(out)[-2:] == b"EZ"
    assert m.parse_error_fields(dict(out)[b"E"])["C"] == "57014"
    assert conn.sink is None  # nothing more is tried on a dead connection
