"""What running a statement gives back, whichever front end asked."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from .types import ColumnType


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType

    @property
    def type_oid(self) -> int:
        return self.type.oid

    @property
    def type_name(self) -> str:
        return self.type.pg_name


@dataclass
class Result:
    """The outcome of one statement.

    Values in :attr:`rows` are plain Python: ``int``, ``float``, ``str``, ``bool``, ``bytes``
    (bytea), ``decimal.Decimal`` (numeric), ``uuid.UUID``, ``datetime``/``date`` (timestamptz is
    timezone-aware, UTC), parsed JSON (``dict``/``list``/scalars) for json/jsonb, and nested
    ``list`` for arrays (``float4[][]`` is a list of lists of float). ``None`` is NULL.
    """

    columns: list[Column] = field(default_factory=list)
    #: Postgres command tag: ``SELECT 3``, ``INSERT 0 1``, ``CREATE TABLE``.
    command: str = ""
    #: Rows affected (writes) or returned (reads).
    rowcount: int = 0
    notices: list[str] = field(default_factory=list)
    _rows: list[tuple[Any, ...]] | None = None
    _arrow: pa.Table | None = None
    #: the answer still streaming from DuckDB (Session.streamed_selects), read once
    _reader: pa.RecordBatchReader | None = None

    def _drain(self) -> None:
        if self._reader is not None:
            reader, self._reader = self._reader, None
            self._arrow = reader.read_all()
            self.rowcount = self._arrow.num_rows

    @property
    def rows(self) -> list[tuple[Any, ...]]:
        self._drain()
        if self._rows is None:
            from .values import arrow_to_rows

            self._rows = arrow_to_rows(self._arrow, self.columns) if self._arrow is not None else []
        return self._rows

    def row_batches(self, size: int = 8192) -> Iterator[list[tuple[Any, ...]]]:
        """The rows in lists of at most ``size``, converted from Arrow one list at a time
        (a COPY TO of a big table never holds every row as Python objects at once; a
        streamed answer is read from DuckDB a batch at a time)."""
        if self._reader is not None:
            from .values import arrow_to_rows

            reader, self._reader = self._reader, None
            for batch in reader:
                self.rowcount += batch.num_rows
                for off in range(0, batch.num_rows, size):
                    yield arrow_to_rows(pa.Table.from_batches([batch.slice(off, size)]),
                                        self.columns)
            return
        if self._rows is not None or self._arrow is None:
            if self.rows:
                yield self.rows
            return
        from .values import arrow_to_rows

        for off in range(0, self._arrow.num_rows, size):
            yield arrow_to_rows(self._arrow.slice(off, size), self.columns)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def returns_rows(self) -> bool:
        """True for statements that produce a row set (SELECT, ... RETURNING, SHOW)."""
        return bool(self.columns)

    def arrow(self) -> pa.Table:
        self._drain()
        if self._arrow is None:
            names = self.column_names
            self._arrow = pa.table({n: [r[i] for r in self.rows] for i, n in enumerate(names)})
        return self._arrow

    def __iter__(self) -> Any:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def scalar(self) -> Any:
        """The first column of the first row (None when there is no row)."""
        return self.rows[0][0] if self.rows else None

    def __repr__(self) -> str:
        return f"<Result {self.command!r} columns={self.column_names} rowcount={self.rowcount}>"
