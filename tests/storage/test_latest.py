"""The latest Lance version found by probing the next manifest (storage/latest.py) equals
Lance's own listing, across writers, and falls back to listing where it cannot probe."""

from __future__ import annotations

import os
from pathlib import Path

import lance
import pyarrow as pa

from tarndb.storage.latest import LatestVersion, trusted_filesystem


def _append(uri: str) -> int:
    return int(lance.write_dataset(pa.table({"x": [1]}), uri, mode="append").version)


def test_probe_follows_every_writer(tmp_path: Path) -> None:
    uri = str(tmp_path / "t.lance")
    lance.write_dataset(pa.table({"x": [1]}), uri, enable_stable_row_ids=True)
    assert trusted_filesystem(str(tmp_path))
    probe = LatestVersion(os.path.join(uri, "_versions"))
    lists: list[int] = []

    def listing() -> int:
        lists.append(1)
        return int(lance.dataset(uri).latest_version)

    assert probe.latest(listing) == 1
    for step in range(30):
        for _ in range(step % 3):  # 0, 1 or 2 commits by another writer in between
            _append(uri)
        assert probe.latest(listing) == int(lance.dataset(uri).latest_version)
    assert int(lance.dataset(uri).latest_version) == 31
    assert len(lists) == 1  # listed once, then probed
    # Retention dropping old manifests does not matter: the next one is what is probed.
    lance.dataset(uri).cleanup_old_versions(older_than=__import__("datetime").timedelta(0))
    assert probe.latest(listing) == int(lance.dataset(uri).latest_version)


def test_lists_where_it_cannot_probe(tmp_path: Path) -> None:
    calls: list[int] = []
    untrusted = LatestVersion(None)
    assert untrusted.latest(lambda: calls.append(1) or 7) == 7
    assert untrusted.latest(lambda: calls.append(1) or 8) == 8
    assert len(calls) == 2
    # A directory without manifests named as Lance names them: keep listing.
    odd = tmp_path / "odd" / "_versions"
    odd.mkdir(parents=True)
    weird = LatestVersion(str(odd))
    assert weird.latest(lambda: 3) == 3
    assert weird.latest(lambda: 4) == 4
