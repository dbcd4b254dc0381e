"""``tarndb.ray.embed_table``: a text column embedded with the packaged model on a local Ray
cluster into a (key, embedding) table, one commit per chunk, resumable; the vectors equal
SQL's ``embed()``, read through a real ``tarndb serve``."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ray.data")
pytest.importorskip("onnxruntime")

import tarndb.ray as tray  # noqa: E402

from .conftest import Serve  # noqa: E402


def test_embed_a_column_on_ray_resumably(ray_cluster: str, served: Serve) -> None:
    with served.connect() as c:
        c.execute("CREATE SCHEMA ws")
        c.execute("CREATE TABLE ws.docs (id INT PRIMARY KEY, body TEXT)")
        c.execute("INSERT INTO ws.docs SELECT i, 'document number ' || i || ' about ' || "
                  "CASE WHEN i % 2 = 0 THEN 'boats' ELSE 'mountains' END "
                  "FROM generate_series(1, 120) t(i)")
        c.execute("INSERT INTO ws.docs VALUES (500, NULL)")  # nothing to embed: skipped
    res = tray.embed_table(served.lake, "ws.docs", "body", into="ws.docs_emb", chunk_rows=50)
    assert (res.rows, res.chunks, res.skipped) == (120, 3, 0)
    with served.connect() as c:
        assert c.execute("SELECT count(*), count(DISTINCT id), min(id), max(id) "
                         "FROM ws.docs_emb").fetchone() == (120, 120, 1, 120)
        got = c.execute("SELECT e.embedding, embed(d.body) FROM ws.docs_emb e "
                        "JOIN ws.docs d USING (id) WHERE id IN (1, 2, 77)").fetchall()
        assert len(got) == 3
        for ray_vec, sql_vec in got:
            a, b = np.asarray(ray_vec), np.asarray(sql_vec)
            assert a.shape == (384,) and float(a @ b / np.linalg.norm(a) /
                                               np.linalg.norm(b)) > 0.999
        # A run that stopped part-way goes on from the rows committed.
        c.execute("DELETE FROM ws.docs_emb WHERE id > 90")
        c.execute("INSERT INTO ws.docs SELECT i, 'late ' || i FROM generate_series(121, 130) "
                  "t(i)")
    again = tray.embed_table(served.lake, "ws.docs", "body", into="ws.docs_emb",
                             chunk_rows=50)
    assert (again.rows, again.skipped) == (40, 90)
    with served.connect() as c:
        assert c.execute("SELECT count(*), count(DISTINCT id) FROM ws.docs_emb").fetchone() \
            == (130, 130)
