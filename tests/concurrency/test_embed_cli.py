"""``tarndb embed`` without Ray: a text column embedded in-process, one commit per chunk,
into a (key, embedding) table that a real ``tarndb serve`` reads."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .conftest import Serve

pytest.importorskip("onnxruntime")


def test_tarndb_embed_cli_without_ray(served: Serve) -> None:
    with served.connect() as c:
        c.execute("CREATE TABLE notes (k TEXT PRIMARY KEY, body TEXT)")
        c.execute("INSERT INTO notes SELECT 'n' || i, 'note ' || i FROM generate_series(1, 30) "
                  "t(i)")
    out = subprocess.run([sys.executable, "-m", "tarndb", "embed", "public.notes", "--column",
                          "body", "--into", "public.notes_emb", "--chunk-rows", "20",
                          "--data", str(served.lake)],
                         capture_output=True, text=True, timeout=240,
                         env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert out.returncode == 0, out.stderr
    assert "embedded 30 rows" in out.stdout and "in 2 commits" in out.stdout, out.stdout
    with served.connect() as c:
        assert c.execute("SELECT count(*), min(k), max(k), min(array_length(embedding, 1)) "
                         "FROM notes_emb").fetchone() == (30, "n1", "n9", 384)
