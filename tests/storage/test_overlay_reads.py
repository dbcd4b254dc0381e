"""TableStore.overlay() hands a thread the same Lance dataset object while the table's
latest version stays the same (a key lookup no longer makes and drops a checkout each
time), and still finds every commit another server made before the call: the newest
manifest is probed on every call."""

from __future__ import annotations

import threading
from pathlib import Path

import lance
import pyarrow as pa

from tarndb.storage.lake import Lake
from tarndb.storage.tables import TableStore


def test_overlay_sees_every_commit_and_keeps_one_object_per_thread(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    store = TableStore(lake, "ws/t")
    store.create(pa.schema([("x", pa.int64())]))
    uri = store.uri
    got = store.overlay()
    assert got is not None
    first = got[0]
    assert store.overlay()[0] is first  # type: ignore[index]
    for step in range(1, 6):
        # another writer commits (one or two commits between reads)
        for _ in range(1 + step % 2):
            lance.write_dataset(pa.table({"x": [step]}), uri, mode="append")
        seen = store.overlay()[0]  # type: ignore[index]
        newest = lance.dataset(uri)
        assert seen.version == newest.version
        assert seen.count_rows() == newest.count_rows()
        assert seen is not first
        assert store.overlay()[0] is seen  # type: ignore[index]
        first = seen
    # another thread reads the same version through an object of its own
    theirs: list[object] = []
    t = threading.Thread(target=lambda: theirs.append(store.overlay()[0]))  # type: ignore[index]
    t.start()
    t.join()
    assert theirs[0] is not first
    assert theirs[0].version == first.version  # type: ignore[attr-defined]
    # dataset() still gives every call its own object
    assert store.dataset(fold=False) is not store.dataset(fold=False)
