"""Rows a transaction added, moved out of the server's memory into a memory-mapped file.

A transaction's inserted rows wait in its :class:`~tarndb.engine.commit.TableChange` until
COMMIT, and a COPY FROM of 20 GB held 20 GB of decoded rows in the server's heap until then
(PostgreSQL writes COPY data to its heap pages as it comes). Past
:data:`SPILL_BYTES` of rows in memory, a change writes them to an Arrow IPC file and keeps a
memory-mapped table of it instead: the same ``pa.Table`` to every reader (DuckDB, Lance's
writer, the key checks), zero-copy, whose pages the kernel reads back on demand and may drop
again under memory pressure, as it does with any file's cache. The file is unlinked as soon
as it is mapped, so a crash or a forgotten transaction leaves nothing on disk.

Kept in-house: Arrow's IPC writer and ``memory_map`` are the whole mechanism; DuckDB's own
spilling covers query state only, not the Arrow tables a transaction holds.
"""

from __future__ import annotations

import os
import uuid

import pyarrow as pa

#: Rows a transaction keeps in memory per table before it spills them (bytes of Arrow data).
SPILL_BYTES = 64 << 20


def spill(rows: pa.Table, directory: str) -> pa.Table:
    """``rows`` as a table mapped from a file of ``directory`` (which is made if missing and
    keeps no file: the mapping outlives the unlinked name)."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"rows-{uuid.uuid4().hex}.arrow")
    try:
        with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, rows.schema) as writer:
            # Batches of the table as they are (no copy into one); each becomes one
            # record batch of the file, mapped back as a chunk.
            writer.write_table(rows)
        source = pa.memory_map(path, "r")
        mapped = pa.ipc.open_file(source).read_all()
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    return mapped

