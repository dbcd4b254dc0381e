"""The saved form of a training set: what was asked, what was read, and what came back.

A spec is plain JSON meant to sit next to a model checkpoint. It holds the question (the
objective or SQL, its parameters, the embedding model and the query embedding itself, k, the
filters), the exact table versions it read (and the SQL rewritten to read them), and the
answer's identity (row ids, one hash per row, each row's file id with its sha256 and size).
Loading re-runs the pinned SQL and checks the row hashes, so "loads back into the same rows"
is verified, not assumed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataError, InvalidRequest

FORMAT = "tarndb.trainingset/1"


class TrainingSetError(InvalidRequest):
    """A training set that cannot be built or loaded as asked (bad spec, bad arguments)."""

    code = "invalid_training_set"


class NotReproducible(DataError):
    """The pinned query no longer returns the rows the spec recorded."""

    code = "training_set_changed"


class ChecksumMismatch(DataError):
    """A file's bytes do not match the sha256 (or size) its training set recorded."""

    code = "checksum_mismatch"


@dataclass(frozen=True)
class FileRef:
    """A file one row of a training set refers to, as it was when the set was made."""

    id: str
    sha256: str
    size: int
    filename: str = "file"
    content_type: str = "application/octet-stream"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: Any) -> FileRef:
        if not isinstance(d, dict):
            raise TrainingSetError(f"a file entry must be an object, not {d!r}")
        try:
            return cls(str(d["id"]), str(d["sha256"]), int(d["size"]),
                       str(d.get("filename") or "file"),
                       str(d.get("content_type") or "application/octet-stream"))
        except (KeyError, TypeError, ValueError) as e:
            raise TrainingSetError(f"a file entry lacks id, sha256 or size: {d!r}") from e


@dataclass(frozen=True)
class TableRef:
    """One table the query read, at the version it read."""

    name: str  # as the query named it ("ws"."t" or t), without the version
    version: int
    tag: str | None = None  # the tag that keeps this version from cleanup

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: Any) -> TableRef:
        if not isinstance(d, dict):
            raise TrainingSetError(f"a table entry must be an object, not {d!r}")
        try:
            return cls(str(d["name"]), int(d["version"]), d.get("tag"))
        except (KeyError, TypeError, ValueError) as e:
            raise TrainingSetError(f"a table entry lacks name or version: {d!r}") from e


@dataclass
class TrainingSpec:
    id: str
    created_at: str
    workspace: str
    #: what was asked
    kind: str  # "objective" or "query"
    query: str  # the SQL as asked (tables unpinned)
    params: list[Any] = field(default_factory=list)
    objective: str | None = None
    table: str | None = None
    column: str | None = None
    k: int | None = None
    where: str | None = None
    filters: dict[str, Any] | None = None
    as_of: str | None = None
    model: str | None = None
    embedding: Any = None
    #: what was read
    pinned_query: str = ""
    pinned_params: list[Any] = field(default_factory=list)
    tables: list[TableRef] = field(default_factory=list)
    #: what came back
    columns: list[str] = field(default_factory=list)
    column_types: list[str] = field(default_factory=list)
    key_column: str | None = None
    row_ids: list[Any] | None = None
    row_hashes: list[str] = field(default_factory=list)
    rows_sha256: str = ""
    file_column: str | None = None
    files: list[FileRef | None] = field(default_factory=list)
    #: how the versions and files are kept (None: not pinned; they last as retention allows)
    file_pin: str | None = None
    source: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": FORMAT}
        for k, v in asdict(self).items():
            out[k] = v
        out["tables"] = [t.to_json() for t in self.tables]
        out["files"] = [None if f is None else f.to_json() for f in self.files]
        return out

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the spec as JSON (atomically: a crash never leaves half a spec)."""
        target = Path(path)
        if target.parent and not target.parent.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1, default=_json_default) + "\n",
                       encoding="utf-8")
        os.replace(tmp, target)
        return target

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> TrainingSpec:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise TrainingSetError(f"training set spec {str(p)!r} does not exist") from None
        except (OSError, UnicodeDecodeError) as e:
            raise TrainingSetError(f"cannot read training set spec {str(p)!r}: {e}") from None
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise TrainingSetError(f"{str(p)!r} is not a training set spec: invalid JSON "
                                   f"({e})") from None
        return cls.from_json(doc, where=str(p))

    @classmethod
    def from_json(cls, doc: Any, where: str = "spec") -> TrainingSpec:
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
            raise TrainingSetError(f"{where!r} is not a training set spec (format "
                                   f"{found!r}; expected {FORMAT!r})")
        for key, typ in (("id", str), ("workspace", str), ("pinned_query", str),
                         ("columns", list), ("row_hashes", list), ("files", list),
                         ("tables", list), ("rows_sha256", str)):
            if not isinstance(doc.get(key), typ):
                raise TrainingSetError(f"training set spec {where!r}: field {key!r} is missing "
                                       f"or not a {typ.__name__}")
        if len(doc["files"]) != len(doc["row_hashes"]):
            raise TrainingSetError(f"training set spec {where!r}: {len(doc['files'])} file "
                                   f"entries for {len(doc['row_hashes'])} rows")
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in doc.items() if k in known}
        kwargs["tables"] = [TableRef.from_json(t) for t in doc["tables"]]
        kwargs["files"] = [None if f is None else FileRef.from_json(f) for f in doc["files"]]
        kwargs.setdefault("kind", "query")
        kwargs.setdefault("created_at", "")
        kwargs.setdefault("query", doc["pinned_query"])
        try:
            return cls(**kwargs)
        except TypeError as e:
            raise TrainingSetError(f"training set spec {where!r}: {e}") from None


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _json_default(value: Any) -> Any:
    from ..api._encode import _default

    return _default(value)


def canonical(value: Any) -> Any:
    """A value as the HTTP API would send it (uuid and timestamps as text, bytes as base64,
    JSON parsed), so that rows read embedded and rows read over HTTP hash alike."""
    from ..api._encode import dumps

    return json.loads(dumps(value))


def row_hash(row: Any) -> str:
    text = json.dumps(canonical(list(row)), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def rows_digest(columns: list[str], hashes: list[str]) -> str:
    h = hashlib.sha256(json.dumps(columns).encode("utf-8"))
    for x in hashes:
        h.update(x.encode("ascii"))
    return h.hexdigest()
