"""Fixtures of the Deep Memory tests (the helpers live in _dm_support.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import tarndb
from tarndb.deepmemory import VectorStore
from tarndb.embeddings import register

# The test modules share helpers through this folder (pytest runs with --import-mode=importlib;
# the helpers' module name is unique, unlike "conftest", which several folders have).
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _dm_support import (  # noqa: E402
    MODEL,
    Synthetic,
    SyntheticEmbedder,
    make_synthetic,
    make_table,
    stop_jobs,
)


@pytest.fixture
def synthetic() -> Iterator[Synthetic]:
    syn = make_synthetic()
    register(MODEL, SyntheticEmbedder(syn))
    yield syn
    syn.gate.set()  # never leave a job thread blocked


@pytest.fixture
def lake(tmp_path: Path) -> str:
    return str(tmp_path / "lake")


@pytest.fixture
def db(lake: str, synthetic: Synthetic) -> Iterator[tarndb.Database]:
    database = tarndb.open(lake)
    make_table(database, synthetic.docs)
    yield database
    synthetic.gate.set()
    stop_jobs(database)
    database.close()


@pytest.fixture
def store(db: tarndb.Database, synthetic: Synthetic) -> VectorStore:
    return VectorStore(db, table="ws.docs", embedding_function=synthetic.embed)
