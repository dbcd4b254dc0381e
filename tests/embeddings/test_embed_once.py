"""Each distinct ``embed(...)`` call in a statement runs the model once (issue 21): the top-k
planner and the projected score share it; the next statement runs the model again."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np
import pytest

import tarndb
from tarndb.embeddings import register
from tarndb.embeddings._base import Embedder
from tarndb.engine import udf

DIM = 8


class Counting(Embedder):
    """A deterministic toy model (a hash of the text) that counts the texts it embeds."""

    def __init__(self, name: str, multi: bool = False) -> None:
        super().__init__()
        self.name = name
        self.multi = multi
        self.texts: list[str] = []
        self._guard = threading.Lock()

    @property
    def dim(self) -> int:
        return DIM

    def _vec(self, text: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
        v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
        return v / np.linalg.norm(v)

    def _encode_texts(self, texts: list[str]) -> list[np.ndarray]:
        with self._guard:
            self.texts.extend(texts)
        if self.multi:
            return [np.stack([self._vec(t), self._vec(t + "#2")]) for t in texts]
        return [self._vec(t) for t in texts]


@pytest.fixture
def db(tmp_path: Path) -> tarndb.Database:
    database = tarndb.open(str(tmp_path / "lake"))
    yield database
    database.close()


def _table(db: tarndb.Database, model: Counting) -> None:
    db.execute('CREATE TABLE "ws"."docs" (id INT, body TEXT, emb FLOAT4[], mv FLOAT4[][])')
    rows = [(i, f"document {i}") for i in range(50)]
    db.execute('INSERT INTO "ws"."docs" (id, body, emb, mv) VALUES ' + ", ".join(
        f"({i}, '{b}', ${2 * i + 1}, ${2 * i + 2})" for i, b in rows),
        [x for i, b in rows for x in (model._vec(b).tolist(),
                                      [model._vec(b).tolist(), model._vec(b + "!").tolist()])])


def test_order_by_embed_runs_the_model_once_per_statement(db: tarndb.Database) -> None:
    model = Counting("counting-once")
    register("counting-once", model)
    _table(db, model)
    s = db.session(workspace="ws")
    try:
        sql = ("SELECT id, emb <#> embed('counting-once', 'document 7') AS score FROM docs "
               "ORDER BY score DESC LIMIT 3")
        res = s.execute(sql)
        assert res.rows[0][0] == 7 and res.rows[0][1] == pytest.approx(1.0, abs=1e-6)
        assert model.texts == ["document 7"]
        # ORDER BY the expression itself, projected again: still one run
        res = s.execute("SELECT id, emb <#> embed('counting-once', 'document 9') FROM docs "
                        "ORDER BY emb <#> embed('counting-once', 'document 9') LIMIT 2")
        assert res.rows[0][0] == 9
        assert model.texts == ["document 7", "document 9"]
        # the memo ends with the statement: the same query runs the model again
        s.execute(sql)
        assert model.texts == ["document 7", "document 9", "document 7"]
        # two distinct calls in one statement: each once
        res = s.execute("SELECT embed('counting-once', 'a') AS x, embed('counting-once', 'b') "
                        "AS y, embed('counting-once', 'a') AS z")
        assert res.rows[0][0] == res.rows[0][2] and res.rows[0][0] != res.rows[0][1]
        assert sorted(model.texts[3:]) == ["a", "b"]
        assert udf._memos == {}  # nothing kept between statements
    finally:
        s.close()


def test_multi_vector_and_workspace_default_model(db: tarndb.Database) -> None:
    model = Counting("counting-multi", multi=True)
    register("counting-multi", model)
    _table(db, Counting("unused"))
    s = db.session(workspace="ws")
    try:
        res = s.execute("SELECT id, mv <#> embed_multi('counting-multi', 'q') AS s FROM docs "
                        "ORDER BY s DESC LIMIT 5")
        assert len(res.rows) == 5
        assert model.texts == ["q"]
    finally:
        s.close()


def test_a_failed_statement_drops_its_memo(db: tarndb.Database) -> None:
    model = Counting("counting-fail")
    register("counting-fail", model)
    _table(db, model)
    s = db.session(workspace="ws")
    try:
        with pytest.raises(tarndb.TarnError):
            s.execute("SELECT embed('counting-fail', 'x'), nope FROM docs")
        assert udf._memos == {}
        s.execute("SELECT embed('counting-fail', 'x')")
        s.execute("SELECT embed('counting-fail', 'x')")
        assert model.texts.count("x") == 2  # once per statement, never across statements
    finally:
        s.close()
