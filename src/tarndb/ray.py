"""Ray Data over tarndb tables: read a pinned version, write in parallel with one commit.

``pip install 'tarndb[ray]'``; Ray is imported only when these functions are called.

>>> import tarndb.ray
>>> ds = tarndb.ray.read_table("s3://lake/prod", "ws.docs", columns=["id", "emb"])
>>> ds = ds.map_batches(train_step)                                   # any Ray Data pipeline
>>> tarndb.ray.write_table(ds, "ws.docs_scored", "s3://lake/prod", mode="create")

- :func:`read_table` reads the table's Lance fragments at one version (the newest when the
  call is made, or the one named), with the table's Postgres column names and their stored
  Arrow types; tarndb's internal columns (``__rid``) are never shown.
- :func:`read_training_set` gives a :class:`~tarndb.train.TrainingSet`'s rows (pinned and
  hash-checked when the set was loaded) as a Ray Dataset, for Ray Train.
- :func:`write_table` converts and checks rows on the Ray workers as INSERT would (stored
  types, defaults, serial values, NOT NULL, CHECK), writes them as fragments of the table's
  dataset in parallel, and the calling process publishes every fragment in one commit
  through the write path (unique keys checked at that moment, under the table's lake-wide
  lock): readers see all of the rows or none of them (engine/bulk.py).

Reading and writing through the lake needs the lake's credentials, not a tarndb token: it is
an operator's tool, with the same reach as ``tarndb.open``.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from . import errors as E

if TYPE_CHECKING:
    import ray.data

    from .engine.catalog import TableInfo
    from .engine.database import Database

__all__ = ["WriteResult", "read_table", "read_training_set", "write_table"]


def _ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise E.FeatureNotSupported("tarndb.ray needs Ray Data",
                                    hint="pip install 'tarndb[ray]'") from None
    return ray


# -- opening the lake -----------------------------------------------------------------------

_open: dict[tuple[str, tuple[tuple[str, str], ...]], Database] = {}


def _database(lake: Any, storage_options: dict[str, str] | None = None) -> Database:
    """``lake`` as a Database: one already open, or a lake URI (opened once per process)."""
    from .engine.database import Database

    if isinstance(lake, Database):
        return lake
    if lake is None:
        lake = os.environ.get("TARNDB_DATA")
        if not lake:
            raise E.InvalidParameterValue("no lake given (pass its URI or set TARNDB_DATA)")
    if not isinstance(lake, (str, os.PathLike)):
        raise E.InvalidParameterValue(
            "a lake is a tarndb.Database or a lake URI (a directory or s3://...)")
    uri = os.fspath(lake)
    key = (uri, tuple(sorted((storage_options or {}).items())))
    db = _open.get(key)
    if db is None:
        import tarndb

        db = _open[key] = tarndb.open(uri, storage_options=storage_options)
    return db


def _split(table: str) -> tuple[str, str]:
    """``ws.table``, ``"ws"."table"`` or ``table`` (in ``public``) -> (workspace, table)."""
    parts: list[str] = []
    cur, quoted, i = "", False, 0
    while i < len(table):
        ch = table[i]
        if ch == '"':
            if quoted and table[i + 1:i + 2] == '"':
                cur += '"'
                i += 1
            else:
                quoted = not quoted
        elif ch == "." and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    parts.append(cur)
    if len(parts) > 2 or not all(parts):
        raise E.InvalidParameterValue(f'not a table name: "{table}" (use "workspace.table")')
    return ("public", parts[0]) if len(parts) == 1 else (parts[0], parts[1])


def _quoted(workspace: str, name: str) -> str:
    return ".".join('"' + p.replace('"', '""') + '"' for p in (workspace, name))


def _table(db: Database, table: str) -> TableInfo:
    ws, name = _split(table)
    info = db.catalog.find_table(ws, name)
    if info is None:
        raise E.UndefinedTable(f'relation "{ws}.{name}" does not exist', table=name)
    return info


# -- reading --------------------------------------------------------------------------------

def read_table(lake: Any, table: str, *, version: int | str | None = None,
               columns: list[str] | None = None, filter: str | None = None,  # noqa: A002
               storage_options: dict[str, str] | None = None, **read_args: Any
               ) -> ray.data.Dataset:
    """A Ray Dataset of ``table`` (``"ws.table"``) at one version.

    ``version`` is a table version number or tag (``trainset-<id>``); by default the newest
    version when this is called, so every block comes from the same commit. ``columns``
    defaults to every column of the table, in its order; ``filter`` is a Lance (SQL) predicate
    over the table's columns, pushed down to the fragment scans. Other keyword arguments go
    to ``ray.data.read_lance`` (``concurrency``, ``override_num_blocks``...)."""
    _ray()
    import ray.data as rd

    db = _database(lake, storage_options)
    info = _table(db, table)
    names = info.column_names
    wanted = list(columns) if columns is not None else names
    for c in wanted:
        if c not in names:
            raise E.UndefinedColumn(f'column "{c}" does not exist', column=c)
    store = db.store(info)
    if version is None:
        version = store.dataset().version
    else:
        try:
            store.dataset().checkout_version(version)
        except Exception as e:  # noqa: BLE001 - Lance words a missing version its own way
            raise E.InvalidParameterValue(
                f'table "{info.name}" has no version {version!r}') from e
    scanner = dict(read_args.pop("scanner_options", None) or {})
    if filter is not None:
        scanner["filter"] = filter  # pushed down to each fragment's scan
    ds = rd.read_lance(store.uri, version=version, columns=wanted,
                       storage_options=db.lake.storage_options or None,
                       scanner_options=scanner or None, **read_args)
    if filter is None:
        # Only the table's columns (Ray's schema() of a bare read lists the dataset's).
        return ds.select_columns(wanted)
    # A real step after a filtered read: Ray counts a bare read from fragment metadata,
    # which knows nothing of the filter. Its types are the table's stored ones.
    schema = pa.schema([pa.field(c, _column_type(info, c)) for c in wanted])
    conform: Any = functools.partial(_conform_batch, schema=schema)
    return ds.map_batches(conform, batch_format="pyarrow", zero_copy_batch=True)


def _column_type(info: TableInfo, name: str) -> pa.DataType:
    col = info.column(name)
    assert col is not None
    return col.type.arrow


def _conform_batch(batch: pa.Table, *, schema: pa.Schema) -> pa.Table:
    return pa.Table.from_arrays([batch.column(f.name).cast(f.type) for f in schema],
                                schema=schema)


def read_training_set(training_set: Any, db: Any = None) -> ray.data.Dataset:
    """A training set's rows as a Ray Dataset (for Ray Train's ``datasets=``).

    ``training_set`` is a :class:`~tarndb.train.TrainingSet`, or the path of a saved spec
    (``trainset.json``) loaded from ``db`` (checked against its recorded row hashes)."""
    ray = _ray()
    from .train import TrainingSet

    ts = training_set
    if not isinstance(ts, TrainingSet):
        if db is None:
            raise E.InvalidParameterValue("loading a saved training set needs db=")
        source = _database(db) if isinstance(db, (str, os.PathLike)) else db
        ts = TrainingSet.load(ts, source)
    return ray.data.from_arrow(ts.arrow())


# -- writing --------------------------------------------------------------------------------

@dataclass
class WriteResult:
    table: str
    version: int
    rows: int
    fragments: int


def _plain(batch: pa.Table) -> pa.Table:
    """Ray's tensor columns (extension types) as plain Arrow lists."""
    cols = []
    for name in batch.column_names:
        col = batch.column(name)
        if isinstance(col.type, pa.ExtensionType):
            chunks = [c.to_numpy() if hasattr(c, "to_numpy") else c for c in col.chunks]
            arrays = []
            for c in chunks:
                if isinstance(c, pa.Array):
                    arrays.append(c.storage if isinstance(c, pa.ExtensionArray) else c)
                else:
                    arrays.append(pa.array(list(c)))
            col = pa.chunked_array(arrays) if arrays else pa.chunked_array(
                [], col.type.storage_type)
        cols.append(col)
    return pa.Table.from_arrays(cols, names=batch.column_names)


def _write_batch(batch: pa.Table, *, uri: str, storage_options: dict[str, str],
                 workspace: str, name: str) -> pa.Table:
    """Runs on a Ray worker: one batch as stored rows in uncommitted fragments."""
    import pickle

    from .engine import bulk

    try:
        db = _database(uri, storage_options)
        info = _table(db, _quoted(workspace, name))
        rows = bulk.prepare_rows(db, info, _plain(batch))
        part = bulk.write_fragments(db, info, rows)
    except E.TarnError as e:
        # Returned, not raised: Ray keeps only the text of a task's exception, and the
        # caller should get the SQLSTATE (23505, 23502...) as if it had inserted the rows.
        return pa.table({"fragments": pa.array([[]], pa.list_(pa.string())),
                         "rows": pa.array([0], pa.int64()), "keys": pa.array([b""]),
                         "schema": pa.array([b""]), "error": pa.array([pickle.dumps(e)])})
    keys = b""
    if part.keys is not None:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, part.keys.schema) as w:
            w.write_table(part.keys)
        keys = sink.getvalue().to_pybytes()
    return pa.table({
        "fragments": pa.array([part.fragments], pa.list_(pa.string())),
        "rows": pa.array([part.rows], pa.int64()),
        "keys": pa.array([keys], pa.binary()),
        "schema": pa.array([part.schema.serialize().to_pybytes()], pa.binary()),
        "error": pa.array([b""], pa.binary()),
    })


def _tarn_cause(e: BaseException) -> E.TarnError | None:
    """The tarndb error behind a Ray task failure (Ray wraps a worker's exception)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [e]
    while todo:
        x = todo.pop()
        if x is None or id(x) in seen:
            continue
        seen.add(id(x))
        if isinstance(x, E.TarnError):
            return x
        todo += [x.__cause__, x.__context__, getattr(x, "cause", None)]
    return None


def _create_sql(workspace: str, name: str, schema: pa.Schema,
                primary_key: list[str] | None) -> str:
    from .engine.scan import quote_ident
    from .engine.types import ColumnType, from_arrow

    cols = []
    for f in schema:
        t = f.type.storage_type if isinstance(f.type, pa.ExtensionType) else f.type
        ctype = from_arrow(t)
        if ctype.is_vector:
            ctype = ColumnType("float4", 1)
        shape = getattr(f.type, "shape", None)  # Ray's tensor columns
        if shape is not None and isinstance(f.type, pa.ExtensionType):
            base = from_arrow(getattr(f.type, "scalar_type", pa.float32())).base
            ctype = ColumnType(base, len(shape))
        cols.append(f"{quote_ident(f.name)} {ctype.pg_name}")
    if primary_key:
        cols.append("PRIMARY KEY (" + ", ".join(quote_ident(c) for c in primary_key) + ")")
    return f"CREATE TABLE {quote_ident(workspace)}.{quote_ident(name)} ({', '.join(cols)})"


def write_table(dataset: ray.data.Dataset, table: str, lake: Any = None, *,
                mode: str = "append", primary_key: list[str] | None = None,
                storage_options: dict[str, str] | None = None,
                batch_size: int | None = None, concurrency: int | None = None) -> WriteResult:
    """Write ``dataset`` into ``table`` (``"ws.table"``) on ``lake`` in one atomic commit.

    ``mode="append"`` adds the rows to an existing table (its column names; columns left out
    get their defaults and serial values); ``mode="create"`` first creates the table from the
    dataset's schema (42P07 if it exists; ``primary_key`` names its key), and drops it again
    if the write fails. Ray workers convert, check and write the rows as fragments in
    parallel (``batch_size`` rows per task, default one Ray block; ``concurrency`` tasks at a
    time); this process then checks unique keys and publishes every fragment at once. On any
    error nothing is published: readers never see part of the rows."""
    _ray()
    import pickle

    from .engine import bulk
    from .engine.scan import quote_ident

    if mode not in ("append", "create"):
        raise E.InvalidParameterValue(f'mode must be "append" or "create", not "{mode}"')
    db = _database(lake, storage_options)
    ws, name = _split(table)
    created = False
    if mode == "create":
        if db.catalog.find_table(ws, name) is not None:
            raise E.DuplicateTable(f'relation "{name}" already exists', table=name)
        schema = dataset.schema()
        if schema is None:
            raise E.InvalidParameterValue("the dataset has no schema (is it empty?)")
        arrow_schema = getattr(schema, "base_schema", schema)
        if not isinstance(arrow_schema, pa.Schema):
            arrow_schema = pa.schema(list(zip(schema.names, schema.types, strict=True)))
        db.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(ws)}")
        db.execute(_create_sql(ws, name, arrow_schema, primary_key))
        created = True
    try:
        info = _table(db, _quoted(ws, name))
        if info.read_only:
            raise E.InsufficientPrivilege(f'table "{info.name}" is read-only')
        kwargs: dict[str, Any] = {"uri": db.lake.uri,
                                  "storage_options": dict(db.lake.storage_options),
                                  "workspace": ws, "name": name}
        write: Any = functools.partial(_write_batch, **kwargs)
        mapped = dataset.map_batches(write, batch_format="pyarrow", batch_size=batch_size,
                                     concurrency=concurrency, zero_copy_batch=True)
        parts = []
        for row in mapped.iter_rows():
            if row["error"]:
                raise pickle.loads(row["error"])  # noqa: S301 - from our own workers
            keys = None
            if row["keys"]:
                keys = pa.ipc.open_stream(pa.py_buffer(row["keys"])).read_all()
            schema_b = pa.ipc.read_schema(pa.py_buffer(row["schema"]))
            parts.append(bulk.Fragments(list(row["fragments"]), int(row["rows"]), keys,
                                        schema_b))
        version = bulk.commit_fragments(db, info, parts)
    except BaseException as e:
        cause = _tarn_cause(e)
        if created:
            try:
                db.execute(f"DROP TABLE IF EXISTS {quote_ident(ws)}.{quote_ident(name)}")
            except E.TarnError:
                pass
        if cause is not None and cause is not e:
            raise cause from e  # a worker's 23502, 23505... as if raised here
        raise
    return WriteResult(f"{ws}.{name}", version, sum(p.rows for p in parts),
                       sum(len(p.fragments) for p in parts))
