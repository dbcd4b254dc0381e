"""Fixtures for the web UI tests: a real server (the API app with the UI mounted, in its own
process) over a temporary lake seeded with a table, images, a video and text, and one headless
Debian chromium driven by Playwright."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _web_support import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, Console, Site, _seed, _start  # noqa: E402


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("web")
    s = _start(tmp / "lake")
    try:
        _seed(s, tmp)
        yield s
    finally:
        s.proc.terminate()
        try:
            s.proc.wait(10)
        except subprocess.TimeoutExpired:
            s.proc.kill()
            s.proc.wait()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    pw_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    with pw_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session")
def console() -> Console:
    return Console()


@pytest.fixture(scope="session")
def page(browser: Any, site: Site, console: Console) -> Iterator[Any]:
    """One page for the whole session, signed out at first: the tests walk through the UI in
    order as a person would, which keeps the run to one browser start."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(viewport={"width": 1366, "height": 860}, base_url=site.url)
    p = ctx.new_page()
    p.set_default_timeout(15000)
    p.on("console", lambda m: console.errors.append(m.text) if m.type == "error" else None)
    p.on("pageerror", lambda e: console.page_errors.append(str(e)))
    yield p
    ctx.close()
