"""Pins: files a training set holds stay readable after a delete, until the last pin goes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tarndb.errors import DuplicateObject, InvalidRequest, NotFound
from tarndb.files import FileStore


@pytest.fixture()
def store(tmp_path: Path) -> FileStore:
    return FileStore(str(tmp_path / "lake"))


def _blob(store: FileStore, ws: str, file_id: object) -> Path:
    s = str(file_id)
    return Path(store.root_uri) / ws / "_files" / s[:2] / s


def test_deleted_pinned_file_stays_readable_until_unpinned(store: FileStore) -> None:
    a = store.put("ws", b"alpha" * 100, "a.bin")
    b = store.put("ws", b"beta", "b.bin")
    metas = store.pin("ws", "set-1", [str(b.id), str(a.id), str(a.id)])
    assert [m.id for m in metas] == [b.id, a.id]
    assert store.pin("ws", "set-2", [str(a.id)])[0].sha256 == a.sha256
    assert store.pins("ws") == ["set-1", "set-2"]

    store.delete("ws", a.id)
    with pytest.raises(NotFound):
        store.get("ws", a.id)  # gone for everyone ...
    assert [f.id for f in store.list("ws")[0]] == [b.id]
    held = store.get_pinned("ws", a.id, "set-1")  # ... but the pins still reach it
    assert held == a
    assert b"".join(store.iter_range(held)) == b"alpha" * 100
    with pytest.raises(NotFound):
        store.get_pinned("ws", a.id, "set-3")
    assert store.get_pinned("ws", b.id, "set-3") == b  # live files need no pin

    assert store.unpin("ws", "set-1") is True
    assert _blob(store, "ws", a.id).exists()  # set-2 still holds it
    with pytest.raises(NotFound):
        store.get_pinned("ws", a.id, "set-1")
    assert store.unpin("ws", "set-2") is True
    assert not _blob(store, "ws", a.id).exists()
    assert _blob(store, "ws", b.id).exists()  # never deleted: unpinning keeps it
    assert store.unpin("ws", "set-2") is False


def test_unpinned_delete_removes_bytes_and_pin_errors(store: FileStore) -> None:
    a = store.put("ws", b"x", "a.bin")
    b = store.put("ws", b"y", "b.bin")
    store.pin("ws", "keep-b", [str(b.id)])
    store.delete("ws", a.id)
    assert not _blob(store, "ws", a.id).exists()
    with pytest.raises(NotFound, match="1 file"):
        store.pin("ws", "p", [str(b.id), str(a.id)])
    with pytest.raises(DuplicateObject):
        store.pin("ws", "keep-b", [str(b.id)])
    with pytest.raises(InvalidRequest):
        store.pin("ws", "../escape", [str(b.id)])
    assert store.pins("ws") == ["keep-b"]


def test_a_delete_racing_the_pin_fails_the_pin(store: FileStore,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    a = store.put("ws", b"x", "a.bin")
    real = store.get_many
    calls = []

    def racing(ws: str, ids: object) -> object:
        calls.append(1)
        found = real(ws, ids)  # type: ignore[arg-type]
        if len(calls) == 2:  # the re-check after writing the pin: deleted meanwhile
            return {}
        return found

    monkeypatch.setattr(store, "get_many", racing)
    with pytest.raises(NotFound, match="deleted while being pinned"):
        store.pin("ws", "p", [str(a.id)])
    assert store.pins("ws") == []
