"""Resource limits from settings: DuckDB's memory and spill space, and the largest result."""

from __future__ import annotations

from pathlib import Path

import pytest

import tarndb
import tarndb.errors as E


def test_result_over_max_result_bytes_is_54000_and_changes_nothing(tmp_path: Path) -> None:
    db = tarndb.open(str(tmp_path / "lake"), max_result_bytes=100_000)
    try:
        db.execute("CREATE TABLE t (id INT, body TEXT)")
        db.execute("INSERT INTO t SELECT i, repeat('x', 100) FROM range(5000) r(i)")
        with pytest.raises(E.ProgramLimitExceeded) as err:
            db.execute("SELECT * FROM t")
        assert err.value.sqlstate == "54000" and "max_result_bytes" in err.value.message
        assert db.execute("SELECT count(*) FROM t").scalar() == 5000  # small results pass
        assert len(db.execute("SELECT * FROM t LIMIT 10").rows) == 10
    finally:
        db.close()


def test_memory_and_spill_limits_reach_duckdb(tmp_path: Path) -> None:
    db = tarndb.open(str(tmp_path / "lake"), memory_limit="256MB", temp_limit="1GiB")
    try:
        rows = dict(db.duckdb.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN "
            "('memory_limit', 'max_temp_directory_size', 'temp_directory')").fetchall())
        got = (rows["memory_limit"], rows["max_temp_directory_size"], rows["temp_directory"])
        assert got[0] in ("256.0 MB", "244.1 MiB")
        assert got[1] in ("1.0 GiB", "1024.0 MiB")
        assert "tarndb-duckdb-" in got[2] and Path(got[2]).is_dir()  # not ./.tmp
        spill = Path(got[2])
    finally:
        db.close()
    assert not spill.exists()  # removed at close


def test_a_bad_memory_limit_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(E.InvalidParameterValue):
        tarndb.open(str(tmp_path / "lake"), memory_limit="lots")
