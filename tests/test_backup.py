"""tarndb backup / restore: a lake (or one workspace) copied as it was at one moment, while
another thread keeps writing to the source; the copy serves queries, searches and files."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import tarndb
import tarndb.errors as E
from tarndb.backup import backup
from tarndb.files import FileStore


def _lake(path: Path) -> tarndb.Database:
    db = tarndb.open(str(path))
    rng = np.random.default_rng(0)
    db.execute('CREATE TABLE "ws"."docs" (id BIGSERIAL PRIMARY KEY, body TEXT, emb FLOAT4[])')
    s = db.session(workspace="ws")
    for i in range(40):
        s.execute("INSERT INTO docs (body, emb) VALUES ($1, $2)",
                  [f"document number {i}", rng.standard_normal(8).tolist()])
    s.execute("CREATE INDEX docs_emb ON docs USING deeplake_index (emb)")
    s.execute("CREATE INDEX docs_body ON docs USING deeplake_index (body) "
              "WITH (index_type = 'bm25')")
    db.execute('CREATE TABLE "other"."t" (k INT PRIMARY KEY)')
    db.execute('INSERT INTO "other"."t" VALUES (1), (2)')
    return db


def test_backup_while_writing_then_serve_the_copy(tmp_path: Path) -> None:
    db = _lake(tmp_path / "src")
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        s = db.session(workspace="ws")
        while not stop.is_set():
            r = s.execute("INSERT INTO docs (body) VALUES ('late') RETURNING id")
            written.append(r.rows[0][0])

    t = threading.Thread(target=writer)
    t.start()
    try:
        files = FileStore.from_db(db)
        meta = files.put("ws", b"the bytes of a file", "a.txt")
        report = backup(db, str(tmp_path / "copy"))
    finally:
        stop.set()
        t.join(30)
    assert written  # the source was written during the copy
    assert report.tables["ws.docs"] >= 1 and set(report.indexes_rebuilt) == {
        "ws.docs_emb", "ws.docs_body"}
    copy = tarndb.open(str(tmp_path / "copy"))
    try:
        n = copy.execute('SELECT count(*) FROM "ws"."docs"').scalar()
        ids = [r[0] for r in copy.execute('SELECT id FROM "ws"."docs"').rows]
        assert 40 <= n <= 40 + len(written) and len(set(ids)) == n
        # a consistent prefix: the copy holds the first n rows the source had
        src_ids = [r[0] for r in db.execute(
            f'SELECT id FROM "ws"."docs" ORDER BY id LIMIT {n}').rows]
        assert sorted(ids) == src_ids
        assert copy.execute('SELECT k FROM "other"."t" ORDER BY k').rows == [(1,), (2,)]
        top = copy.execute('SELECT id FROM "ws"."docs" ORDER BY body <#> \'number 7\' LIMIT 1')
        assert top.rows == [(8,)]  # BIGSERIAL starts at 1: "number 7" is id 8
        assert FileStore.from_db(copy).read_bytes("ws", meta.id) == b"the bytes of a file"
        # the sequence goes on past the copied ids; keys still hold
        new = copy.execute('INSERT INTO "ws"."docs" (body) VALUES (\'x\') RETURNING id').scalar()
        assert new not in ids
        with pytest.raises(E.UniqueViolation):
            copy.execute('INSERT INTO "other"."t" VALUES (1)')
    finally:
        copy.close()
    db.close()
    with pytest.raises(E.InvalidParameterValue):  # never over an existing lake
        backup(tarndb.open(str(tmp_path / "src")), str(tmp_path / "copy"))


def test_workspace_backup_and_restore_through_the_cli(tmp_path: Path) -> None:
    db = _lake(tmp_path / "src")
    db.close()
    run = [sys.executable, "-m", "tarndb"]
    out = subprocess.run([*run, "backup", "--data", str(tmp_path / "src"), "--workspace",
                          "ws", str(tmp_path / "bk")], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "backed up 1 tables" in out.stdout
    out = subprocess.run([*run, "restore", "--data", str(tmp_path / "restored"),
                          str(tmp_path / "bk")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    restored = tarndb.open(str(tmp_path / "restored"))
    try:
        assert restored.execute('SELECT count(*) FROM "ws"."docs"').scalar() == 40
        with pytest.raises(E.UndefinedTable):
            restored.execute('SELECT * FROM "other"."t"')
        assert "other" not in restored.catalog.workspaces()
    finally:
        restored.close()
