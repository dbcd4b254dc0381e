"""The container image: built and started where a container runtime and the base image are
available (podman or docker); skipped with the reason elsewhere (CI machines reach no
container registry)."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _runtime() -> str:
    for name in ("podman", "docker"):
        if shutil.which(name):
            return name
    pytest.skip("no container runtime (podman or docker) on this machine")


def test_image_builds_and_serves() -> None:
    rt = _runtime()
    base = subprocess.run([rt, "image", "exists", "python:3.11-slim"], capture_output=True)
    if base.returncode != 0:
        try:
            pull = subprocess.run([rt, "pull", "python:3.11-slim"], capture_output=True,
                                  timeout=120)
        except subprocess.TimeoutExpired:
            pytest.skip("pulling the base image python:3.11-slim timed out here")
        if pull.returncode != 0:
            pytest.skip("the base image python:3.11-slim cannot be pulled here")
    tag = f"tarndb-test:{uuid.uuid4().hex[:8]}"
    built = subprocess.run([rt, "build", "-t", tag, str(ROOT)], capture_output=True,
                           text=True, timeout=1800)
    assert built.returncode == 0, built.stderr[-4000:]
    name = f"tarndb-{uuid.uuid4().hex[:8]}"
    subprocess.run([rt, "run", "-d", "--name", name, "-p", "127.0.0.1::8080",
                    "-e", "TARNDB_TOKEN=tdb_container_test_token_0123", tag], check=True,
                   capture_output=True, timeout=120)
    try:
        port = subprocess.run([rt, "port", name, "8080"], capture_output=True, text=True,
                              check=True).stdout.strip().rsplit(":", 1)[-1]
        import requests

        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/ready", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "the container never became ready"
            time.sleep(1)
    finally:
        subprocess.run([rt, "rm", "-f", name], capture_output=True)
        subprocess.run([rt, "rmi", "-f", tag], capture_output=True)
