"""The catalog: workspaces, tables with their Postgres column types, indexes, sequences and
small system objects (roles, tokens, jobs), kept on the lake so that every process that opens
the lake sees the same database.

It is one Lance dataset, ``<lake>/_catalog.lance``, with one row per object
(``kind``, ``key``, ``spec`` as JSON). Lance commits are atomic, so a crash never leaves half an
object behind; readers notice a new catalog version and reload.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import lance
import pyarrow as pa

from ..errors import (
    DependentObjectsStillExist,
    DuplicateSchema,
    DuplicateTable,
    InvalidSchemaName,
    ObjectNotInPrerequisiteState,
    SerializationFailure,
    UndefinedTable,
)
from ..storage.lake import Lake
from ..storage.lakelock import lake_lock
from ..storage.latest import LatestVersion
from .types import ColumnType

_SCHEMA = pa.schema([("k", pa.string()), ("kind", pa.string()), ("key", pa.string()),
                     ("spec", pa.string())])
_REFRESH_EVERY_S = 0.25


@dataclass
class ColumnInfo:
    name: str
    type: ColumnType
    not_null: bool = False
    #: SQL text of the DEFAULT expression (Postgres syntax), None for no default.
    default_sql: str | None = None
    serial: bool = False
    #: SQL of ``GENERATED ALWAYS AS (expr) STORED``: computed from the row on every write.
    generated_sql: str | None = None
    #: ``GENERATED ALWAYS AS IDENTITY`` ("a": values only from its sequence unless an INSERT
    #: says OVERRIDING SYSTEM VALUE), ``BY DEFAULT`` ("d"), or not an identity column ("").
    identity: str = ""

    def to_json(self) -> dict[str, Any]:
        out = {"name": self.name, "type": self.type.to_json(), "not_null": self.not_null,
               "default_sql": self.default_sql, "serial": self.serial,
               "generated_sql": self.generated_sql}
        if self.identity:
            out["identity"] = self.identity
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ColumnInfo:
        return cls(d["name"], ColumnType.from_json(d["type"]), d.get("not_null", False),
                   d.get("default_sql"), d.get("serial", False), d.get("generated_sql"),
                   d.get("identity", ""))


#: ``CREATE INDEX ... [USING btree | hash | gin | brin | gist | spgist]``: a scalar index
#: (``index_type`` is the method) that equality lookups use; never a search index.
PLAIN_INDEX_METHODS = ("btree", "hash", "gin", "brin", "gist", "spgist")
#: Index kinds with no search state on the lake (answered by key indexes and scans).
SCALAR_INDEX_TYPES = ("unique", "exact_text", "inverted_index") + PLAIN_INDEX_METHODS


@dataclass
class IndexInfo:
    name: str
    column: str
    index_type: str
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "column": self.column, "index_type": self.index_type,
                "options": self.options}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> IndexInfo:
        return cls(d["name"], d["column"], d["index_type"], d.get("options", {}))


@dataclass
class TableInfo:
    workspace: str
    name: str
    columns: list[ColumnInfo]
    #: Directory of the Lance dataset, relative to the lake root. Fixed at creation so that a
    #: rename never moves data.
    path: str
    primary_key: list[str] = field(default_factory=list)
    indexes: list[IndexInfo] = field(default_factory=list)
    #: A stable id, distinct for a dropped and re-created table of the same name.
    oid: int = 0
    read_only: bool = False
    #: Named constraints besides the primary key: ``{"name", "type": "unique" | "check",
    #: "columns": [...], "expr": SQL of a CHECK}``.
    constraints: list[dict[str, Any]] = field(default_factory=list)
    #: Set when the statement names a version (``"t@12"``); never stored in the catalog.
    as_of: int | None = None
    #: How many times the definition was changed: a transaction that altered the table
    #: commits only if it is still the one it read (Catalog.update_table), so of two
    #: concurrent ALTER / CREATE INDEX ... on one table neither is lost.
    rev: int = 0

    def column(self, name: str) -> ColumnInfo | None:
        for c in self.columns:
            if c.name == name:
                return c
        return None

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def index_on(self, column: str) -> IndexInfo | None:
        """The deeplake (search or unique) index of ``column``; plain indexes aside."""
        for ix in self.indexes:
            if ix.column == column and ix.index_type not in PLAIN_INDEX_METHODS:
                return ix
        return None

    def to_json(self) -> dict[str, Any]:
        return {"workspace": self.workspace, "name": self.name, "path": self.path,
                "columns": [c.to_json() for c in self.columns],
                "primary_key": self.primary_key, "oid": self.oid,
                "indexes": [i.to_json() for i in self.indexes], "read_only": self.read_only,
                "constraints": self.constraints, "rev": self.rev}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TableInfo:
        return cls(d["workspace"], d["name"], [ColumnInfo.from_json(c) for c in d["columns"]],
                   d["path"], d.get("primary_key", []),
                   [IndexInfo.from_json(i) for i in d.get("indexes", [])], d.get("oid", 0),
                   d.get("read_only", False), list(d.get("constraints", [])),
                   rev=int(d.get("rev", 0)))


def _k(kind: str, key: str) -> str:
    return f"{kind}\x1f{key}"


class Catalog:
    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self.uri = lake.uri_for("_catalog.lance")
        local = self.uri[len("file://"):] if self.uri.startswith("file://") else self.uri
        #: the latest catalog version without listing every version (storage/latest.py)
        self._latest = LatestVersion(os.path.join(local, "_versions") if lake.is_local
                                     else None)
        self._lock = threading.RLock()
        self._objects: dict[tuple[str, str], dict[str, Any]] = {}
        self._version = -1
        self._checked_at = 0.0
        self._ds: lance.LanceDataset | None = None
        self._open()

    # -- storage -------------------------------------------------------------------------

    def _open(self) -> None:
        try:
            self._ds = lance.dataset(self.uri, storage_options=self.lake.storage_options)
        except (ValueError, OSError, FileNotFoundError):
            empty = pa.table({f.name: pa.array([], f.type) for f in _SCHEMA}, schema=_SCHEMA)
            try:
                self._ds = lance.write_dataset(empty, self.uri, mode="create",
                                               storage_options=self.lake.storage_options)
            except (ValueError, OSError):  # another process created it first
                self._ds = lance.dataset(self.uri, storage_options=self.lake.storage_options)
        self._load()
        if not self.workspace_exists("public"):
            self.put_object("schema", "public", {"name": "public"})

    def _load(self) -> None:
        assert self._ds is not None
        t = self._ds.to_table(columns=["kind", "key", "spec"])
        objs: dict[tuple[str, str], dict[str, Any]] = {}
        for kind, key, spec in zip(t.column("kind").to_pylist(), t.column("key").to_pylist(),
                                   t.column("spec").to_pylist(), strict=True):
            objs[(kind, key)] = json.loads(spec)
        self._objects = objs
        self._version = self._ds.version
        self._checked_at = time.monotonic()

    @property
    def version(self) -> int:
        """The catalog version this process holds: what is derived from the catalog alone
        (the answers of system catalog queries) may be kept under it."""
        return self._version

    def refresh(self, force: bool = False) -> None:
        """Pick up changes another process committed (cheap; rate-limited unless forced)."""
        now = time.monotonic()
        if not force and now - self._checked_at < _REFRESH_EVERY_S:
            return
        with self._lock:
            assert self._ds is not None
            self._checked_at = now
            ds = self._ds
            latest = self._latest.latest(lambda: int(ds.latest_version))
            if latest != self._version:
                self._ds = self._ds.checkout_version(latest)
                self._load()

    def _write(self, rows: list[tuple[str, str, dict[str, Any] | None]]) -> None:
        """Upsert (spec is a dict) or delete (spec is None) objects in one commit each.
        Under the lake-wide ``catalog`` lock: servers sharing the lake never interleave
        catalog commits."""
        with self._lock, lake_lock(self.lake, "catalog"):
            assert self._ds is not None
            upserts = [(kind, key, spec) for kind, key, spec in rows if spec is not None]
            deletes = [(kind, key) for kind, key, spec in rows if spec is None]
            cur = self._ds
            ds = cur.checkout_version(self._latest.latest(lambda: int(cur.latest_version)))
            if upserts:
                t = pa.table({
                    "k": [_k(a, b) for a, b, _ in upserts],
                    "kind": [a for a, _, _ in upserts],
                    "key": [b for _, b, _ in upserts],
                    "spec": [json.dumps(s, sort_keys=True) for _, _, s in upserts],
                }, schema=_SCHEMA)
                (ds.merge_insert("k").when_matched_update_all().when_not_matched_insert_all()
                   .execute(t))
            for kind, key in deletes:
                ds.delete("k = '" + _k(kind, key).replace("'", "''") + "'")
            self._ds = ds.checkout_version(self._latest.latest(lambda: int(ds.latest_version)))
            if self._ds.version != self._version:
                self._load()

    # -- generic objects -------------------------------------------------------------------

    def get_object(self, kind: str, key: str) -> dict[str, Any] | None:
        self.refresh()
        return self._objects.get((kind, key))

    def put_object(self, kind: str, key: str, spec: dict[str, Any]) -> None:
        self._write([(kind, key, spec)])

    def delete_object(self, kind: str, key: str) -> None:
        self._write([(kind, key, None)])

    def list_objects(self, kind: str) -> dict[str, dict[str, Any]]:
        self.refresh()
        return {key: spec for (k, key), spec in self._objects.items() if k == kind}

    # -- workspaces (schemas) -------------------------------------------------------------

    def workspaces(self) -> list[str]:
        return sorted(self.list_objects("schema"))

    def workspace_exists(self, name: str) -> bool:
        return (("schema", name) in self._objects)

    def create_workspace(self, name: str, if_not_exists: bool = False) -> None:
        with self._lock, lake_lock(self.lake, "catalog"):
            self.refresh(force=True)
            if self.workspace_exists(name):
                if if_not_exists:
                    return
                raise DuplicateSchema(f'schema "{name}" already exists')
            from .reserved import check_new_workspace

            check_new_workspace(name)  # not tls, _catalog.lance, pg_*: the server's own names
            self.put_object("schema", name, {"name": name})

    def ensure_workspace(self, name: str) -> None:
        if not self.workspace_exists(name):
            self.create_workspace(name, if_not_exists=True)

    def drop_workspace(self, name: str, cascade: bool = False, missing_ok: bool = False) -> None:
        with self._lock:
            self.refresh(force=True)
            if not self.workspace_exists(name):
                if missing_ok:
                    return
                raise InvalidSchemaName(f'schema "{name}" does not exist')
            tables = self.tables(name)
            if tables and not cascade:
                raise DependentObjectsStillExist(
                    f'cannot drop schema "{name}" because other objects depend on it',
                    hint="Use DROP ... CASCADE to drop the dependent objects too.")
            rows: list[tuple[str, str, dict[str, Any] | None]] = [
            ("table", f"{name}.{t.name}", None) for t in tables]
        self._write(rows + [("schema", name, None)])

    # -- tables -----------------------------------------------------------------------------

    def tables(self, workspace: str) -> list[TableInfo]:
        self.refresh()
        out = [TableInfo.from_json(spec) for (k, key), spec in self._objects.items()
               if k == "table" and spec["workspace"] == workspace]
        return sorted(out, key=lambda t: t.name)

    def all_tables(self) -> list[TableInfo]:
        self.refresh()
        return [TableInfo.from_json(spec) for (k, _), spec in self._objects.items()
                if k == "table"]

    def find_table(self, workspace: str, name: str, fresh: bool = True) -> TableInfo | None:
        """The table, or None. ``fresh=False`` answers a miss from what this process knows
        (callers that try several names first, then ask again with ``fresh``).

        A definition another server changed (a new constraint or index, a dropped column) is
        seen within ``_REFRESH_EVERY_S``: the newest catalog is looked for at most that often.
        """
        self.refresh()
        spec = self._objects.get(("table", f"{workspace}.{name}"))
        if spec is None and fresh:
            # A name this process does not know may have just been created by another
            # server on the lake: look at the newest catalog before saying it is missing.
            self.refresh(force=True)
            spec = self._objects.get(("table", f"{workspace}.{name}"))
        return TableInfo.from_json(spec) if spec is not None else None

    def table(self, workspace: str, name: str) -> TableInfo:
        t = self.find_table(workspace, name)
        if t is None:
            raise UndefinedTable(f'relation "{name}" does not exist', table=name)
        return t

    def new_table_path(self, workspace: str, name: str) -> str:
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)
        return f"{workspace}/{safe}-{uuid.uuid4().hex[:8]}.lance"

    def create_table(self, info: TableInfo) -> None:
        # Under the lake-wide lock: two servers creating one name, or taking one oid, must
        # not both succeed.
        with self._lock, lake_lock(self.lake, "catalog"):
            self.refresh(force=True)
            if not self.workspace_exists(info.workspace):
                raise InvalidSchemaName(f'schema "{info.workspace}" does not exist')
            if self.find_table(info.workspace, info.name) is not None:
                raise DuplicateTable(f'relation "{info.name}" already exists', table=info.name)
            if not self._dataset_exists(info.path):
                # Its creator stayed unheard of past the orphan grace period and the
                # dataset was swept away (engine/vacuum.py): never list a table without one.
                raise ObjectNotInPrerequisiteState(
                    f'the dataset of new table "{info.name}" was removed before its '
                    "CREATE TABLE committed",
                    hint="The transaction stayed open longer than the lake's orphan grace "
                         "period (--orphan-grace); run CREATE TABLE again.")
            info.oid = self._next_oid()
            self.put_object("table", f"{info.workspace}.{info.name}", info.to_json())

    def _dataset_exists(self, path: str) -> bool:
        """Whether the table dataset at ``path`` (relative to the lake) has its manifests."""
        import pyarrow.fs as pafs

        fs, base = self.lake.fs
        try:
            got = fs.get_file_info(f"{base.rstrip('/')}/{path.strip('/')}/_versions")
        except (OSError, ValueError):
            return True  # cannot tell: let Lance's own errors speak later
        return bool(got.type == pafs.FileType.Directory)

    def check_revs(self, changed: list[tuple[TableInfo, str | None]]) -> None:
        """40001 when a table of ``changed`` (definitions a transaction altered, each with its
        name before a rename) is no longer at the revision the transaction read: another
        transaction, of this server or another, altered it and committed first."""
        with self._lock, lake_lock(self.lake, "catalog"):
            self.refresh(force=True)
            for info, old_name in changed:
                self._check_rev(info, old_name)

    def _check_rev(self, info: TableInfo, old_name: str | None) -> None:
        name = old_name if old_name is not None else info.name
        stored = self._objects.get(("table", f"{info.workspace}.{name}"))
        if stored is None or stored.get("path") != info.path or \
                int(stored.get("rev", 0)) != info.rev:
            raise SerializationFailure(
                "could not serialize access due to concurrent update",
                detail=f'Another transaction altered or dropped table "{name}" after this '
                       "one read its definition.",
                hint="Run the statement again.")

    def update_table(self, info: TableInfo, old_name: str | None = None) -> None:
        """Publish an altered definition: only over the revision it was made from (else
        40001, see :meth:`check_revs`); ``info.rev`` moves on."""
        with self._lock, lake_lock(self.lake, "catalog"):
            self.refresh(force=True)
            self._check_rev(info, old_name)
            info.rev += 1
            rows: list[tuple[str, str, dict[str, Any] | None]] = []
            if old_name is not None and old_name != info.name:
                rows.append(("table", f"{info.workspace}.{old_name}", None))
            rows.append(("table", f"{info.workspace}.{info.name}", info.to_json()))
            self._write(rows)

    def drop_table(self, info: TableInfo) -> None:
        self._write([("table", f"{info.workspace}.{info.name}", None)])

    def _next_oid(self) -> int:
        counter = self._objects.get(("counter", "oid"), {"next": 16384})
        value = int(counter["next"])
        self.put_object("counter", "oid", {"next": value + 1})
        return value

    # -- sequences --------------------------------------------------------------------------

    def set_next(self, key: str, value: int) -> None:
        """The next value a sequence hands out, lower than what it has handed out too
        (``setval``, ``TRUNCATE ... RESTART IDENTITY``)."""
        with self._lock, lake_lock(self.lake, "catalog"):
            self.put_object("sequence", key, {"next": value})

    def reserve(self, key: str, count: int, floor: int) -> int:
        """Reserve ``count`` sequence values at or above ``floor``; returns the first one.

        The read-modify-write runs under the lake-wide ``catalog`` lock and is committed
        before any value is handed out, so servers sharing the lake never get the same
        value and a crash never reuses one."""
        with self._lock, lake_lock(self.lake, "catalog"):
            self.refresh(force=True)
            spec = self._objects.get(("sequence", key), {"next": 1})
            start = max(int(spec["next"]), floor)
            self.put_object("sequence", key, {"next": start + count})
            return start
