from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import tarndb

SHARED = Path(__file__).resolve().parents[2] / "shared"
# pytest runs with --import-mode=importlib, which puts no test folder on sys.path: helpers
# every test package shares (_ports) live here.
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[tarndb.Database]:
    database = tarndb.open(str(tmp_path / "lake"))
    yield database
    database.close()


@pytest.fixture
def session(db: tarndb.Database) -> Iterator[tarndb.Session]:
    s = db.session(workspace="ws")
    yield s
    s.close()
