"""Fixtures for the security tests: one seeded ``tarndb serve`` shared by the tests that
leave it as they found it (see _security_support)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# --import-mode=importlib does not put test folders on sys.path; the modules here share
# helpers through _security_support.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _security_support import Stack, seed, start_stack, stop_stack  # noqa: E402


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One seeded server for the tests that leave it as they found it."""
    base = tmp_path_factory.mktemp("security")
    s = start_stack(base / "lake")
    try:
        seed(s)
        yield s
    finally:
        alive = s.proc.poll() is None
        stop_stack(s)
        assert alive, "tarndb serve died during the security tests"
