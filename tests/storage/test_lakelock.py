"""The lake lock excludes other processes, also after the lake was removed and made again at
the same place (the lock's open file is kept between commits: a removed one must not be)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tarndb.storage.lake import Lake
from tarndb.storage.lakelock import lake_lock

_HOLDER = """
import sys, time
from pathlib import Path
from tarndb.storage.lake import Lake
from tarndb.storage.lakelock import lake_lock
with lake_lock(Lake(sys.argv[1]), "table:t"):
    Path(sys.argv[2]).touch()
    time.sleep(float(sys.argv[3]))
"""


def _wait_behind_another_process(lake_dir: Path, hold_s: float) -> float:
    flag = lake_dir.parent / "held"
    flag.unlink(missing_ok=True)
    p = subprocess.Popen([sys.executable, "-c", _HOLDER, str(lake_dir), str(flag), str(hold_s)])
    try:
        deadline = time.monotonic() + 30
        while not flag.exists():
            assert p.poll() is None and time.monotonic() < deadline, "holder did not start"
            time.sleep(0.01)
        t = time.monotonic()
        with lake_lock(Lake(str(lake_dir)), "table:t"):
            waited = time.monotonic() - t
    finally:
        p.wait(timeout=30)
    return waited


def test_the_lock_excludes_another_process(tmp_path: Path) -> None:
    lake_dir = tmp_path / "lake"
    lake_dir.mkdir()
    with lake_lock(Lake(str(lake_dir)), "table:t"):
        pass
    assert _wait_behind_another_process(lake_dir, 1.0) >= 0.8


def test_a_lake_made_again_at_the_same_place_is_still_locked(tmp_path: Path) -> None:
    lake_dir = tmp_path / "lake"
    lake_dir.mkdir()
    with lake_lock(Lake(str(lake_dir)), "table:t"):  # this process now keeps the file open
        pass
    shutil.rmtree(lake_dir)
    os.makedirs(lake_dir)
    assert _wait_behind_another_process(lake_dir, 1.0) >= 0.8


def test_kept_lock_files_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tarndb.storage import lakelock

    monkeypatch.setattr(lakelock, "_MAX_FDS", 8)
    lake = Lake(str(tmp_path / "lake"))
    held = lake_lock(lake, "name-0")
    held.__enter__()  # a held name's file is never closed under it
    try:
        for i in range(1, 40):
            with lake_lock(lake, f"name-{i}"):
                pass
        mine = [k for k in lakelock._fds if k[0] == lake.uri]
        assert len(mine) <= 8
        assert (lake.uri, "name-0") in lakelock._fds
    finally:
        held.__exit__(None, None, None)
    # Every name still locks (evicted ones open their file again).
    for i in range(40):
        with lake_lock(lake, f"name-{i}"):
            pass
