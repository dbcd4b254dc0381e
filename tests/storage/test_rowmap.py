"""Rows by __rid through the row-address map (what ranking queries fetch their k rows with),
across appends, deletes, updates and versions, against a filter scan."""

from __future__ import annotations

from pathlib import Path

import lance
import numpy as np
import pyarrow as pa

from tarndb.storage.rowmap import row_addresses, rows_by_rid


def _rows(ds: lance.LanceDataset, rids: np.ndarray) -> list[tuple[int, str]]:
    t = rows_by_rid(ds, rids, ["__rid", "v"])
    return sorted(zip(t["__rid"].to_pylist(), t["v"].to_pylist(), strict=True))


def _scan(ds: lance.LanceDataset, rids: np.ndarray) -> list[tuple[int, str]]:
    t = ds.to_table(columns=["__rid", "v"],
                    filter=f"__rid IN ({','.join(str(int(r)) for r in rids)})")
    return sorted(zip(t["__rid"].to_pylist(), t["v"].to_pylist(), strict=True))


def test_rows_by_rid_follows_writes_and_versions(tmp_path: Path) -> None:
    uri = str(tmp_path / "t.lance")
    rng = np.random.default_rng(3)

    def table(rids: np.ndarray, tag: str) -> pa.Table:
        return pa.table({"__rid": pa.array(rids, pa.int64()),
                         "v": [f"{tag}{r}" for r in rids.tolist()]})

    ds = lance.write_dataset(table(np.arange(0, 500), "a"), uri, max_rows_per_file=128)
    versions = [ds.version]
    ds = lance.write_dataset(table(np.arange(500, 700), "b"), uri, mode="append")
    ds.delete("__rid % 9 = 0")
    # An UPDATE: the old row is deleted, the new one lands in a new fragment, same __rid.
    ds.delete("__rid IN (10, 20, 650)")
    ds = lance.write_dataset(table(np.array([650, 20, 10]), "u"), uri, mode="append")
    versions.append(ds.version)
    for v in versions:
        dv = lance.dataset(uri, version=v)
        for _ in range(5):
            want = rng.choice(800, int(rng.integers(1, 60)), replace=False)
            assert _rows(dv, want) == _scan(dv, want)
    latest = lance.dataset(uri)
    assert _rows(latest, np.array([10, 20, 650, 9, 799])) == [(10, "u10"), (20, "u20"),
                                                              (650, "u650")]
    assert row_addresses(latest, np.array([], np.int64)).size == 0
    assert rows_by_rid(latest, np.array([9, 18]), ["v"]).num_rows == 0
