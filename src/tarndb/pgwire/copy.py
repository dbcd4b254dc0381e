"""COPY FROM STDIN / COPY TO STDOUT in text, CSV and binary formats.

The protocol core (:mod:`.protocol`) calls :func:`parse_copy` on a COPY statement, then feeds
CopyData payloads to a :class:`CopyReader` that decodes rows into Arrow tables typed like the
target columns, a batch of about :data:`BATCH_BYTES` at a time, which :class:`CopyTarget`
hands to the engine as they come, all in one transaction (COPY is atomic: nothing is written
when any row is bad). The transaction keeps big batches on disk (engine/spill.py), so a COPY
of any size holds a batch or two in memory, as PostgreSQL's does. COPY TO runs the equivalent
SELECT and formats rows with :class:`CopyWriter`.
"""

from __future__ import annotations

import csv
import io
import json
import re
import struct
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from ..engine.result import Column
from ..engine.types import ColumnType
from ..engine.values import matrices_array
from ..errors import (
    DataError,
    FeatureNotSupported,
    InvalidParameterValue,
    InvalidTextRepresentation,
    SyntaxError_,
    UndefinedColumn,
    UndefinedTable,
    WrongObjectType,
)
from . import codecs

BINARY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_NOT_PLAIN = re.compile(r"[^0-9eE+\-.,{}\s]")
_ARRAY_HEAD = struct.Struct("!iiii")
_I16 = struct.Struct("!h")
_I32 = struct.Struct("!i")
# Fixed-width binary fields that decode as one numpy array per column.
_FIXED = {"int2": ">i2", "int4": ">i4", "int8": ">i8", "float4": ">f4", "float8": ">f8",
          "bool": "u1"}
_F4_ELEM = np.dtype([("len", ">i4"), ("v", ">f4")])


@dataclass
class CopyOptions:
    format: str = "text"  # text | csv | binary
    delimiter: str = "\t"
    null: str = "\\N"
    header: bool = False
    quote: str = '"'
    escape: str = '"'


@dataclass
class CopySpec:
    is_from: bool
    schema: str | None = None
    table: str | None = None
    columns: list[str] = field(default_factory=list)
    #: The inner SELECT of ``COPY (query) TO STDOUT``.
    query: str | None = None
    options: CopyOptions = field(default_factory=CopyOptions)


def _opt_value(d: Any) -> Any:
    if not d.HasField("arg"):
        return True
    which = d.arg.WhichOneof("node")
    if which == "string":
        return d.arg.string.sval
    if which == "boolean":
        return d.arg.boolean.boolval
    if which == "integer":
        return d.arg.integer.ival
    if which == "list":
        return [x.string.sval for x in d.arg.list.items]
    return True


def _inner_query(sql: str) -> str:
    """The text between the parentheses of ``COPY ( ... ) TO``, respecting quotes."""
    start = sql.index("(")
    depth = 0
    i = start
    quote: str | None = None
    while i < len(sql):
        ch = sql[i]
        if quote:
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return sql[start + 1:i]
        i += 1
    raise SyntaxError_("unterminated parenthesis in COPY")


def parse_copy(sql: str) -> CopySpec:
    import postgast

    try:
        parsed = postgast.parse(sql)
    except Exception as e:  # noqa: BLE001 - postgast raises its own error type
        raise SyntaxError_(str(e)) from None
    if len(parsed.stmts) != 1 or parsed.stmts[0].stmt.WhichOneof("node") != "copy_stmt":
        raise SyntaxError_("expected one COPY statement")
    c = parsed.stmts[0].stmt.copy_stmt
    if c.filename or c.is_program:
        raise FeatureNotSupported("COPY to or from a file is not supported; use STDIN/STDOUT "
                                  "(psql's \\copy)")
    spec = CopySpec(is_from=c.is_from)
    if c.HasField("relation"):
        spec.schema = c.relation.schemaname or None
        spec.table = c.relation.relname
        spec.columns = [a.string.sval for a in c.attlist]
    else:
        spec.query = _inner_query(sql)
    o = spec.options
    for node in c.options:
        d = node.def_elem
        name = d.defname.lower()
        v = _opt_value(d)
        if name == "format":
            o.format = str(v).lower()
        elif name == "delimiter":
            o.delimiter = str(v)
        elif name == "null":
            o.null = str(v)
        elif name == "header":
            o.header = v is True or str(v).lower() in ("true", "on", "1")
        elif name == "quote":
            o.quote = str(v)
        elif name == "escape":
            o.escape = str(v)
        elif name in ("encoding", "freeze"):
            pass
        else:
            raise FeatureNotSupported(f'COPY option "{name}" is not supported')
    if o.format not in ("text", "csv", "binary"):
        raise InvalidParameterValue(f'COPY format "{o.format}" not recognized')
    if o.format == "csv":
        if not any(n.def_elem.defname.lower() == "delimiter" for n in c.options):
            o.delimiter = ","
        if not any(n.def_elem.defname.lower() == "null" for n in c.options):
            o.null = ""
        if not any(n.def_elem.defname.lower() == "escape" for n in c.options):
            o.escape = o.quote
    if len(o.delimiter) != 1:
        raise InvalidParameterValue("COPY delimiter must be a single one-byte character")
    return spec


def _qi(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def refuse_view(session: Any, spec: CopySpec) -> None:
    """PostgreSQL's 42809 for ``COPY view TO`` / ``COPY view FROM`` (``COPY (SELECT ...
    FROM view) TO`` is the way to copy a view's rows out)."""
    if spec.query is not None or not spec.table:
        return
    from ..engine import views

    d = views.resolve(session, spec.schema, spec.table)
    if d is None:
        return
    if spec.is_from:
        raise WrongObjectType(f'cannot copy to view "{d.name}"',
                              detail="tarndb views are read-only.",
                              hint="Write to the tables the view reads.")
    raise WrongObjectType(f'cannot copy from view "{d.name}"',
                          hint="Try the COPY (SELECT ...) TO variant.")


def select_for(spec: CopySpec) -> str:
    """The SELECT whose rows ``COPY ... TO STDOUT`` sends."""
    if spec.query is not None:
        return spec.query
    cols = ", ".join(_qi(c) for c in spec.columns) if spec.columns else "*"
    name = (_qi(spec.schema) + "." if spec.schema else "") + _qi(spec.table or "")
    return f"SELECT {cols} FROM {name}"


# ---------------------------------------------------------------------------------------------
# reading


def _unescape_text(s: str) -> str:
    """Backslash escapes of COPY's text format."""
    out = []
    i = 0
    n = len(s)
    while i < n:
        ch = s[i]
        if ch != "\\" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = s[i + 1]
        simple = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
        if nxt in simple:
            out.append(simple[nxt])
            i += 2
        elif nxt in "01234567":
            j = i + 1
            while j < n and j < i + 4 and s[j] in "01234567":
                j += 1
            out.append(chr(int(s[i + 1:j], 8)))
            i = j
        elif nxt == "x" and i + 2 < n and s[i + 2] in "0123456789abcdefABCDEF":
            j = i + 2
            while j < n and j < i + 4 and s[j] in "0123456789abcdefABCDEF":
                j += 1
            out.append(chr(int(s[i + 2:j], 16)))
            i = j
        else:
            out.append(nxt)
            i += 2
    return "".join(out)


def _arrow_value(ctype: ColumnType) -> Any:
    """A converter from a decoded value to what pyarrow takes for the column's Arrow type."""
    if ctype.ndim == 0 and ctype.base in ("json", "jsonb"):
        return lambda v: json.dumps(v, ensure_ascii=False)
    if ctype.ndim == 0 and ctype.base == "uuid":
        return str
    return None


def _parse_float4_lists(texts: list[str | None]) -> pa.Array | None:
    """``['1,2.5', None, ...]`` as a list<float32> array, parsed by Arrow; None when some text
    is not a plain comma-separated list of numbers."""
    import pyarrow.compute as pc

    lists = pc.split_pattern(pa.array(texts, pa.string()), ",")
    items = lists.flatten()
    try:
        values = items.cast(pa.float32())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        try:  # '{1, 2}': blanks around the numbers are allowed, as in Postgres
            values = pc.utf8_trim_whitespace(items).cast(pa.float32())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
    if values.null_count:
        return None
    mask = lists.is_null() if lists.null_count else None
    return pa.ListArray.from_arrays(lists.offsets, values, mask=mask)


class _Column:
    """Values of one target column, gathered for the Arrow table."""

    def __init__(self, ctype: ColumnType) -> None:
        self.ctype = ctype
        self.values: list[Any] = []
        self.text = codecs.text_decoder(ctype)
        self.binary = codecs.binary_decoder(ctype)
        self.conv = _arrow_value(ctype)
        self.vector = ctype.base == "float4" and ctype.ndim == 1
        #: Decoded runs of the column, in order; ``values`` holds the run being built value by
        #: value (binary COPY decodes each block of rows column-wise into one array).
        self.parts: list[pa.Array] = []
        #: Text COPY: the insides of a run of '{...}' embeddings, parsed together.
        self._vec_text: list[str | None] = []

    def add_text(self, s: str | None) -> None:
        if self.vector:
            # Embeddings: keep the text of '{0.1,0.2,...}' and parse a whole run of them at
            # once in Arrow (split, then one string-to-float4 cast) when the run ends.
            if s is None:
                if self._vec_text:
                    self._vec_text.append(None)
                    return
            else:
                body = s.strip()
                if body.startswith("{") and body.endswith("}") and "{" not in body[1:] \
                        and len(body) > 2 and not body[1:-1].isspace():
                    if self.values:
                        self._flush()
                    self._vec_text.append(body[1:-1])
                    return
            self._flush_vec_text()
        if s is None:
            self.values.append(None)
            return
        v = self.text(s)
        self.values.append(self.conv(v) if self.conv else v)

    def flush_vectors(self) -> None:
        if len(self._vec_text) >= 64:
            self._flush_vec_text()

    def _flush_vec_text(self) -> None:
        texts, self._vec_text = self._vec_text, []
        if not texts:
            return
        arr = _parse_float4_lists(texts)
        if arr is not None:
            self.parts.append(arr.cast(self.ctype.arrow))
            return
        # Something in the run is not a plain list of numbers: value by value, so the error
        # (or the NULL elements, quoted numbers ...) comes out as the text decoder has it.
        for t in texts:
            v = None if t is None else self.text("{" + t + "}")
            self.values.append(self.conv(v) if self.conv and v is not None else v)

    def add_binary(self, b: bytes | None) -> None:
        if b is None:
            self.values.append(None)
            return
        if self.vector and len(b) >= 20:
            # One embedding: read the float4 elements straight into numpy (no Python floats).
            ndim, flags, _elem, dim = _ARRAY_HEAD.unpack_from(b)
            if ndim == 1 and flags == 0 and len(b) == 20 + 8 * dim:
                rec = np.frombuffer(b, dtype=_F4_ELEM, count=dim, offset=20)
                if dim == 0 or bool((rec["len"] == 4).all()):
                    self.values.append(rec["v"].astype(np.float32))
                    return
        v = self.binary(b)
        self.values.append(self.conv(v) if self.conv else v)

    def add_column_binary(self, data: bytes, offs: list[int], lens: list[int]) -> bool:
        """Decode a whole column of binary COPY fields at once (fixed-width numbers, text,
        embeddings) into an Arrow array; False when the column needs field-by-field decoding."""
        if not lens:
            return False
        arr = self._decode_column(data, offs, lens)
        if arr is None:
            return False
        self._flush()
        self.parts.append(arr)
        return True

    def _decode_column(self, data: bytes, offs: list[int], lens: list[int]) -> pa.Array | None:
        t = self.ctype
        lens_a = np.array(lens, dtype=np.int64)
        null = lens_a == -1
        view = memoryview(data)
        if t.ndim == 0 and t.base in _FIXED:
            dtype = np.dtype(_FIXED[t.base])
            if not (null | (lens_a == dtype.itemsize)).all():
                return None
            # A gather of itemsize bytes per row (NULLs read byte 0, masked below).
            starts = np.where(null, 0, np.array(offs, dtype=np.int64))
            idx = starts[:, None] + np.arange(dtype.itemsize)
            gathered = np.frombuffer(data, dtype=np.uint8)[idx]
            arr = gathered.view(dtype).reshape(-1).astype(dtype.newbyteorder("="))
            if t.base == "bool":
                arr = arr != 0
            return pa.array(arr, type=t.arrow, mask=null if null.any() else None)
        if t.ndim == 0 and t.base in ("text", "varchar", "bpchar", "name"):
            raw = b"".join([view[o:o + ln] for o, ln in zip(offs, lens, strict=True)
                            if ln != -1])
            sizes = np.maximum(lens_a, 0)
            offsets = np.zeros(len(lens) + 1, dtype=np.int32)
            np.cumsum(sizes, out=offsets[1:])
            validity = pa.array(~null).buffers()[1] if null.any() else None
            arr = pa.StringArray.from_buffers(len(lens), pa.py_buffer(offsets.tobytes()),
                                              pa.py_buffer(raw), validity)
            try:
                arr.validate(full=True)
            except pa.ArrowInvalid:
                raise InvalidTextRepresentation(
                    'invalid byte sequence for encoding "UTF8"') from None
            return arr if t.arrow == pa.string() else arr.cast(t.arrow)
        if not self.vector:
            return None
        present = lens_a[~null]
        if not present.size or (present != present[0]).any():
            return None
        width = int(present[0])
        if width < 20 or (width - 20) % 8:
            return None
        dim = (width - 20) // 8
        # The fields are contiguous byte runs: one join, then one structured numpy view.
        block = np.frombuffer(b"".join([view[o:o + width] for o, ln in zip(offs, lens,
                                                                           strict=True)
                                        if ln != -1]),
                              dtype=np.dtype([("head", ">i4", (5,)),
                                              ("v", _F4_ELEM, (dim,))]))
        head = block["head"]
        if not ((head[:, 0] == 1).all() and (head[:, 1] == 0).all()
                and (head[:, 3] == dim).all()):
            return None
        if not bool((block["v"]["len"] == 4).all()):
            return None
        flat = block["v"]["v"].astype(np.float32).reshape(-1)
        sizes = np.where(null, 0, dim).astype(np.int32)
        offsets = np.zeros(len(lens) + 1, dtype=np.int32)
        np.cumsum(sizes, out=offsets[1:])
        return pa.ListArray.from_arrays(
            pa.array(offsets), pa.array(flat, pa.float32()),
            mask=pa.array(null) if null.any() else None).cast(t.arrow)

    def _flush(self) -> None:
        self._flush_vec_text()
        if self.values:
            self.parts.append(self._values_to_arrow())
            self.values = []

    def take(self) -> pa.Array | pa.ChunkedArray:
        """The values gathered so far (one array, or the decoded runs without copying them
        together); the column starts over empty."""
        self._flush_vec_text()
        if self.values or not self.parts:
            self.parts.append(self._values_to_arrow())
            self.values = []
        parts, self.parts = self.parts, []
        if len(parts) == 1:
            return parts[0]
        return pa.chunked_array(parts, type=self.ctype.arrow)

    def _values_to_arrow(self) -> pa.Array:
        t = self.ctype.arrow
        if self.ctype.is_sparse:  # decoded SparseVecs: one struct array from their buffers
            from ..engine.sparsevec import to_arrow

            return to_arrow(self.values)
        if self.vector and self.values and all(
                v is None or isinstance(v, np.ndarray) for v in self.values):
            lengths = np.array([0 if v is None else len(v) for v in self.values], dtype=np.int32)
            offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
            np.cumsum(lengths, out=offsets[1:])
            present = [v for v in self.values if v is not None]
            flat = np.concatenate(present) if present else np.empty(0, np.float32)
            mask = pa.array([v is None for v in self.values])
            return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, pa.float32()),
                                            mask=mask).cast(t)
        nested = _float_matrices(self.values, self.ctype)
        if nested is not None:
            return nested
        vals = [v.tolist() if isinstance(v, np.ndarray) else v for v in self.values]
        try:
            return pa.array(vals, type=t)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as e:
            raise DataError(f"value does not fit column type {self.ctype.pg_name}: {e}") from None


def _float_matrices(values: list[Any], ctype: ColumnType) -> pa.Array | None:
    """A float[][] column (multi-vector bags) whose values are numpy matrices, as a nested
    list array built from their concatenation: through Python lists each float became an
    object of 32 bytes, and a COPY of bags peaked at 7x its size in server memory."""
    if ctype.ndim != 2 or ctype.base not in ("float4", "float8") or not values or not all(
            v is None or (isinstance(v, np.ndarray) and v.ndim == 2) for v in values):
        return None
    arr = matrices_array(values, np.float32 if ctype.base == "float4" else np.float64)
    return None if arr is None else arr.cast(ctype.arrow)


#: Binary COPY is decoded in blocks of at least this many bytes: each block costs a few
#: numpy calls per column, so CopyData messages of a few kB (psycopg's) are gathered first.
_BINARY_BLOCK = 1 << 20

#: A COPY hands its rows to the engine in batches of about this much data as sent.
BATCH_BYTES = 32 << 20
#: CSV data (parsed at the end, as one stream) stays in memory up to this size, then goes to
#: a temporary file.
_CSV_IN_MEMORY = 8 << 20


class CopyReader:
    """Decodes COPY FROM STDIN data into columns."""

    def __init__(self, options: CopyOptions, types: list[ColumnType]) -> None:
        self.options = options
        self.columns = [_Column(t) for t in types]
        self._buf = bytearray()
        #: CSV data, joined once at the end (appending to one buffer copies more); binary
        #: data not decoded yet (the tail of a row cut by a CopyData boundary).
        self._chunks: list[bytes] = []
        self._pending = 0
        #: Binary: bytes to wait for before scanning again (a row bigger than what came).
        self._need = 0
        self._binary_header = False
        self._header_pending = options.header
        self._ended = False
        self.rows = 0
        #: bytes of data decoded into the columns since the last batch was taken
        self._decoded = 0
        #: CSV data as sent (parsed at the end: a quoted field may hold newlines)
        self._csv: tempfile.SpooledTemporaryFile[bytes] | None = None

    def feed(self, data: bytes) -> None:
        if self._ended:
            return
        if self.options.format == "text":
            self._buf += data
            self._decoded += len(data)
            self._consume_text_lines(final=False)
        elif self.options.format == "binary":
            # Binary rows decode as they arrive, a block per CopyData message: no copy of the
            # whole stream is ever made, and decoding overlaps the client's sending.
            self._chunks.append(data)
            self._pending += len(data)
            self._decoded += len(data)
            if self._pending >= max(self._need, _BINARY_BLOCK):
                self._decode_binary(final=False)
        else:
            if self._csv is None:
                self._csv = tempfile.SpooledTemporaryFile(max_size=_CSV_IN_MEMORY)
            self._csv.write(data)

    def take(self) -> pa.Table | None:
        """The rows decoded so far, once they are about :data:`BATCH_BYTES` (None before)."""
        if self._decoded < BATCH_BYTES:
            return None
        return self._batch()

    def _batch(self) -> pa.Table:
        self._decoded = 0
        arrays = [c.take() for c in self.columns]
        names = [f"c{i}" for i in range(len(arrays))]
        return pa.Table.from_arrays(arrays, names=names) if arrays else pa.table({})

    def finish(self) -> Iterator[pa.Table]:
        """The rows not taken yet, in batches (the last one may be empty)."""
        fmt = self.options.format
        if fmt == "text":
            self._consume_text_lines(final=True)
        elif fmt == "binary":
            self._decode_binary(final=True)
        else:
            yield from self._parse_csv()
        self._buf.clear()
        yield self._batch()

    def _row_error(self, msg: str) -> DataError:
        return InvalidTextRepresentation(f"{msg} (COPY line {self.rows + 1})")

    def _consume_text_lines(self, final: bool) -> None:
        buf = self._buf
        end = buf.rfind(b"\n")
        if end < 0 and not final:
            return
        if final:
            chunk = bytes(buf)
            buf.clear()
        else:
            chunk = bytes(buf[:end + 1])
            del buf[:end + 1]
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidTextRepresentation('invalid byte sequence for encoding "UTF8"') from None
        delim = self.options.delimiter
        null = self.options.null
        ncols = len(self.columns)
        for line in text.split("\n"):
            if line.endswith("\r"):
                line = line[:-1]
            if line == "":
                continue
            if self._ended:
                break
            if line == "\\.":
                self._ended = True
                break
            if self._header_pending:
                self._header_pending = False
                continue
            fields = line.split(delim)
            if len(fields) != ncols:
                raise self._row_error(
                    "extra data after last expected column" if len(fields) > ncols
                    else "missing data for column")
            for col, f in zip(self.columns, fields, strict=False):
                if f == null:
                    col.add_text(None)
                else:
                    col.add_text(_unescape_text(f) if "\\" in f else f)
            self.rows += 1
        for col in self.columns:
            # Embeddings parse a message's worth at a time: small buffers, and the work
            # overlaps the client's sending.
            col.flush_vectors()

    def _parse_csv(self) -> Iterator[pa.Table]:
        """Parse the CSV data sent, handing out a batch every :data:`BATCH_BYTES` of it."""
        o = self.options
        if self._csv is None:
            return
        spool, self._csv = self._csv, None
        spool.seek(0)
        stream = io.TextIOWrapper(spool, encoding="utf-8", newline="")  # type: ignore[arg-type]
        reader = csv.reader(stream, delimiter=o.delimiter,
                            quotechar=o.quote, doublequote=(o.escape == o.quote),
                            escapechar=None if o.escape == o.quote else o.escape, strict=True)
        ncols = len(self.columns)
        try:
            for fields in reader:
                if not fields:
                    continue
                if fields == ["\\."]:
                    break
                if self._header_pending:
                    self._header_pending = False
                    continue
                if len(fields) != ncols:
                    raise self._row_error("wrong number of columns")
                for col, f in zip(self.columns, fields, strict=False):
                    # csv cannot tell "" from an empty field; both are NULL with the default NULL.
                    col.add_text(None if f == o.null else f)
                    self._decoded += len(f)
                self.rows += 1
                if self._decoded >= BATCH_BYTES:
                    yield self._batch()
        except csv.Error as e:
            raise self._row_error(f"invalid CSV: {e}") from None
        except UnicodeDecodeError:
            raise InvalidTextRepresentation('invalid byte sequence for encoding "UTF8"') from None
        finally:
            spool.close()

    def _decode_binary(self, final: bool) -> None:
        data = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks = []
        pos = 0
        if not self._binary_header:
            if len(data) < 19 and not final:
                self._keep(data, 0)
                return
            if not data.startswith(BINARY_SIGNATURE) or len(data) < 19:
                raise InvalidTextRepresentation("COPY file signature not recognized")
            _flags, ext = struct.unpack_from("!ii", data, len(BINARY_SIGNATURE))
            if ext < 0:
                raise InvalidTextRepresentation("invalid COPY file header (wrong length)")
            if len(data) < 19 + ext:
                if final:
                    raise InvalidTextRepresentation("invalid COPY file header (wrong length)")
                self._keep(data, 0)
                return
            self._binary_header = True
            pos = 19 + ext
        end = self._parse_binary(data, pos)
        if self._ended:
            return
        if final:
            if end < len(data):
                raise self._row_error("unexpected EOF in COPY data")
            return
        self._keep(data, end)
        # A row that did not fit: wait for twice as much before scanning again, so a huge
        # row costs O(n) copying, not O(n^2).
        self._need = 0 if end > pos else 2 * (len(data) - end)

    def _keep(self, data: bytes, pos: int) -> None:
        rest = data[pos:] if pos else data
        self._chunks = [rest] if rest else []
        self._pending = len(rest)
        self._need = max(self._need, 19) if not self._binary_header else self._need

    def _parse_binary(self, data: bytes, pos: int) -> int:
        """Decode the complete rows of ``data`` from ``pos``; returns where the first
        incomplete row starts (``len(data)`` when none is cut)."""
        ncols = len(self.columns)
        n = len(data)
        # First pass: where every field is (offset, length; -1 for NULL). Decoding then works
        # column by column, and embedding columns decode in one numpy gather.
        offs: list[int] = []
        lens: list[int] = []
        add_off, add_len = offs.append, lens.append
        unpack_h, unpack_i = _I16.unpack_from, _I32.unpack_from
        cols = range(ncols)
        rows = 0
        while pos < n:
            row_start = pos
            try:
                (count,) = unpack_h(data, pos)
                pos += 2
                if count == -1:
                    self._ended = True
                    break
                if count != ncols:
                    raise self._row_error(f"row field count is {count}, expected {ncols}")
                for _ in cols:
                    (flen,) = unpack_i(data, pos)
                    pos += 4
                    add_off(pos)
                    add_len(flen)
                    if flen > 0:
                        pos += flen
                    elif flen < -1:
                        raise self._row_error("invalid field length in COPY data")
            except struct.error:
                pos = n + 1
            if pos > n:
                # Cut by the end of what arrived: decode up to here, keep the rest.
                del offs[rows * ncols:], lens[rows * ncols:]
                pos = row_start
                break
            rows += 1
            self.rows += 1
        if rows:
            for c, col in enumerate(self.columns):
                col_offs, col_lens = offs[c::ncols], lens[c::ncols]
                if col.add_column_binary(data, col_offs, col_lens):
                    continue
                for o, ln in zip(col_offs, col_lens, strict=True):
                    col.add_binary(None if ln == -1 else data[o:o + ln])
        return pos


# ---------------------------------------------------------------------------------------------
# the target table


@dataclass
class CopyTarget:
    workspace: str
    table: str
    columns: list[Column]

    @classmethod
    def resolve(cls, db: Any, session: Any, spec: CopySpec, workspace: str) -> CopyTarget:
        ws = spec.schema or workspace
        # As this session sees it: a table created earlier in its open transaction too
        # (pg_restore --single-transaction creates each table, then COPYs into it).
        find = getattr(session, "find_table", None)
        info = find(ws, spec.table) if find is not None else db.catalog.find_table(ws, spec.table)
        if info is None:
            raise UndefinedTable(f'relation "{spec.table}" does not exist', table=spec.table)
        by_name = {c.name: c for c in info.columns}
        # Without a column list COPY fills every column, as in Postgres.
        names = spec.columns or [c.name for c in info.columns]
        cols = []
        for n in names:
            c = by_name.get(n)
            if c is None:
                raise UndefinedColumn(f'column "{n}" of relation "{spec.table}" does not exist',
                                      column=n)
            cols.append(Column(n, c.type))
        return cls(ws, info.name, cols)

    def insert(self, session: Any, data: pa.Table) -> int:
        data = data.rename_columns([c.name for c in self.columns])
        if data.num_rows == 0:
            return 0
        insert_arrow = getattr(session, "insert_arrow", None)
        if insert_arrow is not None:
            # The engine's bulk path: one statement, one Lance append for the whole COPY.
            result = insert_arrow(f"{_qi(self.workspace)}.{_qi(self.table)}", data)
            return int(result.rowcount)
        return self._insert_statements(session, data)

    def _insert_statements(self, session: Any, data: pa.Table) -> int:
        """Parameterised multi-row INSERTs (used when the engine has no bulk entry point)."""
        ncols = len(self.columns)
        casts = [_cast_suffix(c.type) for c in self.columns]
        target = f"{_qi(self.workspace)}.{_qi(self.table)} (" + \
            ", ".join(_qi(c.name) for c in self.columns) + ")"
        per_stmt = max(1, min(1000, 30000 // max(ncols, 1)))
        rows = data.to_pylist()
        total = 0
        for start in range(0, len(rows), per_stmt):
            batch = rows[start:start + per_stmt]
            params: list[Any] = []
            groups = []
            for r in batch:
                ph = []
                for c, cast in zip(self.columns, casts, strict=False):
                    params.append(r[c.name])
                    ph.append(f"${len(params)}{cast}")
                groups.append("(" + ", ".join(ph) + ")")
            sql = f"INSERT INTO {target} VALUES " + ", ".join(groups)
            session.execute(sql, params)
            total += len(batch)
        return total


def _cast_suffix(t: ColumnType) -> str:
    return "::" + t.base + "[]" * t.ndim if t.base in ("jsonb", "json", "uuid") or t.ndim else ""


# ---------------------------------------------------------------------------------------------
# writing


def _escape_text(s: str, delim: str) -> str:
    if "\\" in s:
        s = s.replace("\\", "\\\\")
    if "\n" in s or "\r" in s or "\t" in s or delim in s:
        s = s.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
        if delim not in ("\t", "\n", "\r"):
            s = s.replace(delim, "\\" + delim)
    return s


class CopyWriter:
    def __init__(self, options: CopyOptions, types: list[ColumnType]) -> None:
        self.options = options
        self.types = types
        if options.format == "binary":
            self.encoders = [codecs.binary_encoder(t) for t in types]
        else:
            self.text = [codecs.text_encoder(t) for t in types]

    def header(self, names: list[str]) -> bytes:
        o = self.options
        if o.format == "binary":
            return BINARY_SIGNATURE + struct.pack("!ii", 0, 0)
        if not o.header:
            return b""
        if o.format == "csv":
            return self._csv_line(names)
        return (o.delimiter.join(_escape_text(n, o.delimiter) for n in names) + "\n").encode()

    def row(self, row: tuple[Any, ...]) -> bytes:
        o = self.options
        if o.format == "binary":
            parts = [struct.pack("!h", len(row))]
            for v, enc in zip(row, self.encoders, strict=False):
                if v is None:
                    parts.append(b"\xff\xff\xff\xff")
                else:
                    b = enc(v)
                    parts.append(struct.pack("!i", len(b)))
                    parts.append(b)
            return b"".join(parts)
        if o.format == "csv":
            return self._csv_line([None if v is None else te(v)
                                   for v, te in zip(row, self.text, strict=False)])
        out = []
        for v, te in zip(row, self.text, strict=False):
            out.append(o.null if v is None else _escape_text(te(v), o.delimiter))
        return (o.delimiter.join(out) + "\n").encode("utf-8")

    def _csv_line(self, values: Sequence[str | None]) -> bytes:
        o = self.options
        q = o.quote
        out = []
        for s in values:
            if s is None:
                out.append(o.null)
            elif s == "" or s == o.null or any(ch in s for ch in (o.delimiter, q, "\n", "\r")) \
                    or s.startswith(" ") or s.endswith(" "):
                esc = o.escape if o.escape != q else q
                out.append(q + s.replace(q, esc + q) + q)
            else:
                out.append(s)
        return (o.delimiter.join(out) + "\n").encode("utf-8")

    def trailer(self) -> bytes:
        return b"\xff\xff" if self.options.format == "binary" else b""


__all__ = ["CopyOptions", "CopySpec", "CopyReader", "CopyWriter", "CopyTarget", "parse_copy",
           "select_for"]
