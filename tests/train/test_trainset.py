"""Training sets on an embedded lake: build, save, change everything, load the same set."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _train_support import Lake, fill_items  # noqa: E402

from tarndb import errors as E  # noqa: E402
from tarndb.train import (  # noqa: E402
    ChecksumMismatch,
    NotReproducible,
    TrainingSet,
    TrainingSetError,
)


def _blob(lake: Lake, file_id: str, ws: str = "ws") -> Path:
    return lake.path / ws / "_files" / file_id[:2] / file_id


def test_reproducible_after_rows_and_files_change(lake: Lake, sample_images: list[Path],
                                                 tmp_path: Path) -> None:
    fill_items(lake, sample_images, 12)
    ts = TrainingSet.from_objective("clips like the last ones", table="ws.items", db=lake.db,
                                    k=5, embedding=[1.0, 1.0], filters={"metadata.camera": "cam1"},
                                    where="start_s >= $1", params=[20.0])
    assert len(ts) == 5
    assert all(r["metadata"]["camera"] == "cam1" and r["start_s"] >= 20 for r in ts.rows)
    assert [r["score"] for r in ts.rows] == sorted((r["score"] for r in ts.rows), reverse=True)
    assert "embedding" not in ts.columns and ts.columns[-1] == "score"
    spec_path = ts.save(tmp_path / "run" / "trainset.json")
    rows = ts.rows
    data = [ts.read_file(i) for i in range(len(ts))]
    assert data == [lake.uploaded[f.id] for f in ts.files if f is not None]
    spec = json.loads(spec_path.read_text())
    assert spec["tables"][0]["version"] > 0 and spec["tables"][0]["tag"].startswith("trainset-")
    assert spec["embedding"] == [1.0, 1.0] and spec["k"] == 5
    assert spec["row_ids"] == [r["id"] for r in rows]
    assert spec["filters"] == {"metadata.camera": "cam1"} and spec["params"] == [20.0, "cam1"]

    # Everything changes: rows updated (one now outranks the set), deleted, inserted; the
    # set's files deleted from the store and new ones uploaded.
    db = lake.db
    db.execute("UPDATE ws.items SET caption = 'changed', embedding = ARRAY[1, 1]::float4[] "
               "WHERE id = 1")
    db.execute("UPDATE ws.items SET caption = 'edited' WHERE id = $1", [rows[1]["id"]])
    db.execute("DELETE FROM ws.items WHERE id = $1", [rows[0]["id"]])
    db.execute("INSERT INTO ws.items (caption, metadata, start_s, embedding) VALUES "
               "('new', '{\"camera\": \"cam1\"}', 500, ARRAY[1, 1]::float4[])")
    for f in ts.files[:3]:
        assert f is not None
        lake.store.delete("ws", f.id)
    lake.store.put("ws", b"new bytes", "new.bin")
    db.execute("SELECT tarndb_cleanup('ws.items', '0 seconds')")  # untagged versions go
    fresh = TrainingSet.from_objective("clips like the last ones", table="ws.items", db=db, k=5,
                                       embedding=[1.0, 1.0], filters={"metadata.camera": "cam1"},
                                       where="start_s >= $1", params=[20.0], pin=False,
                                       file_column=None)
    assert [r["id"] for r in fresh.rows] != [r["id"] for r in rows]  # the table did change

    again = TrainingSet.load(spec_path, db)
    assert again.rows == rows
    assert again.arrow().equals(ts.arrow())
    assert [again.read_file(i) for i in range(len(again))] == data
    out = again.download(tmp_path / "files")
    assert [p.read_bytes() for p in out if p is not None] == data
    assert len((tmp_path / "files" / "manifest.jsonl").read_text().splitlines()) == 5
    # The deleted files are gone for everyone else.
    with pytest.raises(E.NotFound):
        lake.store.get("ws", ts.files[0].id)  # type: ignore[union-attr]


def test_release_lets_cleanup_and_deletes_reclaim(lake: Lake, sample_images: list[Path],
                                                  tmp_path: Path) -> None:
    fill_items(lake, sample_images, 4)
    ts = TrainingSet.from_query("SELECT id, file_id FROM ws.items WHERE id <= 2 ORDER BY id",
                                db=lake.db)
    ts.save(tmp_path / "s.json")
    version = ts.spec.tables[0].version
    gone = ts.files[0]
    assert gone is not None
    lake.store.delete("ws", gone.id)
    assert _blob(lake, gone.id).exists()  # pinned: bytes kept
    lake.db.execute("INSERT INTO ws.items (caption) VALUES ('later')")
    ts.release()
    assert not _blob(lake, gone.id).exists()  # the last pin went: bytes reclaimed
    assert lake.store.pins("ws") == []
    lake.db.execute("SELECT tarndb_cleanup('ws.items', '0 seconds')")
    listed = [v for (v,) in lake.db.execute("SELECT version FROM tarndb_versions('ws.items')").rows]
    assert version not in listed
    with pytest.raises(NotReproducible, match="cleaned up"):
        TrainingSet.load(tmp_path / "s.json", lake.db)


def test_query_with_join_pins_every_table(lake: Lake, sample_images: list[Path]) -> None:
    fill_items(lake, sample_images, 6)
    db = lake.db
    db.execute("CREATE TABLE ws.labels (item_id BIGINT, label TEXT)")
    db.execute("INSERT INTO ws.labels VALUES (1, 'cat'), (2, 'dog'), (3, 'cat')")
    sql = ("WITH l AS (SELECT * FROM ws.labels WHERE label = $1) "
           "SELECT i.id, i.file_id, l.label FROM ws.items i JOIN l ON l.item_id = i.id "
           "ORDER BY i.id")
    ts = TrainingSet.from_query(sql, ["cat"], db=db)
    assert [r["id"] for r in ts.rows] == [1, 3]
    assert sorted(t.name for t in ts.spec.tables) == ["ws.items", "ws.labels"]
    assert '"items@' in ts.spec.pinned_query and '"labels@' in ts.spec.pinned_query
    db.execute("INSERT INTO ws.labels VALUES (4, 'cat')")
    db.execute("DELETE FROM ws.labels WHERE item_id = 1")
    assert [r["id"] for r in TrainingSet.load(ts.spec, db).rows] == [1, 3]


def test_ties_in_order_by_load_in_the_recorded_order(lake: Lake) -> None:
    db = lake.db
    db.execute("CREATE TABLE ws.t (id INT, grp INT)")
    db.execute("INSERT INTO ws.t SELECT i, i % 2 FROM range(40) r(i)")
    ts = TrainingSet.from_query("SELECT id, grp FROM ws.t ORDER BY grp", db=db)
    shuffled = list(reversed(ts.spec.row_hashes))
    ts.spec.row_hashes = shuffled  # as if DuckDB had broken the ties the other way
    loaded = TrainingSet.load(ts.spec, db)
    assert [r["id"] for r in loaded.rows] == [r["id"] for r in reversed(ts.rows)]


def test_ranking_on_a_pinned_version_is_exact(lake: Lake) -> None:
    db = lake.db
    s = db.session(workspace="ws")
    s.execute("CREATE TABLE e (id INT PRIMARY KEY, emb FLOAT4[])")
    rng = np.random.default_rng(0)
    s.execute("INSERT INTO e VALUES " + ",".join(
        f"({i}, ARRAY[{','.join(str(x) for x in rng.random(4))}]::float4[])" for i in range(50)))
    s.execute("CREATE INDEX e_emb ON e USING deeplake_index (emb)")
    v = s.execute("SELECT max(version) FROM tarndb_versions('e')").scalar()
    q = "EXPLAIN SELECT id, emb <#> ARRAY[1,0,0,0]::float4[] AS s FROM {} ORDER BY s DESC LIMIT 3"
    assert "index e_emb" in s.execute(q.format("e")).rows[0][0]
    assert s.execute(q.format(f'"e@{v}"')).rows[0][0].endswith(": exact scan")
    s.close()


def test_corrupted_bytes_are_caught(lake: Lake, sample_images: list[Path],
                                    tmp_path: Path) -> None:
    fill_items(lake, sample_images, 3)
    ts = TrainingSet.from_query("SELECT id, file_id FROM ws.items ORDER BY id", db=lake.db)
    ref = ts.files[1]
    assert ref is not None
    blob = _blob(lake, ref.id)
    original = blob.read_bytes()
    blob.write_bytes(original[:-4] + b"XXXX")  # same size, other bytes
    with pytest.raises(ChecksumMismatch, match="sha256"):
        ts.read_file(1)
    with pytest.raises(ChecksumMismatch):
        ts.download(tmp_path / "dl")
    blob.write_bytes(original)
    assert ts.read_file(1) == original


def test_download_resumes_and_repairs(lake: Lake, sample_images: list[Path],
                                      tmp_path: Path) -> None:
    fill_items(lake, sample_images, 4)
    ts = TrainingSet.from_query("SELECT id, file_id FROM ws.items ORDER BY id", db=lake.db)
    target = tmp_path / "dl"
    first = ts.download(target, workers=2)
    assert all(p is not None for p in first)
    p0, p1, p2 = (p for p in first[:3] if p is not None)
    full = p0.read_bytes()
    # A killed run leaves a partial file; another left a damaged one; one is missing.
    p0.unlink()
    (target / (p0.name + ".part")).write_bytes(full[: len(full) // 3])
    p1.write_bytes(b"damaged")
    p2.unlink()
    again = ts.download(target, workers=2)
    assert again == first
    assert [p.read_bytes() for p in again if p] == [lake.uploaded[f.id] for f in ts.files if f]
    assert not list(target.glob("*.part"))


def test_batches_arrow_and_numpy(lake: Lake, sample_images: list[Path]) -> None:
    fill_items(lake, sample_images, 7)
    ts = TrainingSet.from_query("SELECT id, caption, file_id FROM ws.items ORDER BY id",
                                db=lake.db)
    batches = list(ts.batches(3, decode="bytes"))
    assert [b.num_rows for b in batches] == [3, 3, 1]
    assert isinstance(batches[0], pa.RecordBatch)
    assert batches[0].column("data").to_pylist()[0] == lake.uploaded[ts.files[0].id]  # type: ignore[union-attr]
    ids = [i for b in ts.batches(2, shuffle=True, seed=3) for i in b.column("id").to_pylist()]
    assert sorted(ids) == list(range(1, 8)) and ids != sorted(ids)
    dropped = list(ts.batches(3, drop_last=True, format="numpy"))
    assert [len(b["id"]) for b in dropped] == [3, 3] and b"" not in dropped[0]
    with pytest.raises(TrainingSetError, match="format='numpy'"):
        next(ts.batches(2, decode="image"))


def test_bad_input_gives_clear_errors(lake: Lake, sample_images: list[Path],
                                      tmp_path: Path) -> None:
    fill_items(lake, sample_images, 2)
    db = lake.db
    with pytest.raises(E.UndefinedTable, match="nope"):
        TrainingSet.from_objective("x", table="ws.nope", db=db, embedding=[1, 0])
    with pytest.raises(TrainingSetError, match='no column "emb"'):
        TrainingSet.from_objective("x", table="ws.items", column="emb", db=db,
                                   embedding=[1, 0])
    with pytest.raises(TrainingSetError, match="not an embedding"):
        TrainingSet.from_objective("x", table="ws.items", column="caption", db=db,
                                   embedding=[1, 0])
    with pytest.raises(TrainingSetError, match="k must be"):
        TrainingSet.from_objective("x", table="ws.items", db=db, k=0, embedding=[1, 0])
    with pytest.raises(TrainingSetError, match="no version 999"):
        TrainingSet.from_objective("x", table="ws.items", db=db, as_of=999, embedding=[1, 0])
    with pytest.raises(TrainingSetError, match="one SELECT"):
        TrainingSet.from_query("DELETE FROM ws.items", db=db)
    with pytest.raises(TrainingSetError, match="does not parse"):
        TrainingSet.from_query("SELEC 1", db=db)
    with pytest.raises(TrainingSetError, match="not a file id"):
        TrainingSet.from_query("SELECT id, caption AS file_id FROM ws.items", db=db)
    with pytest.raises(TrainingSetError, match="file_column"):
        TrainingSet.from_query("SELECT id FROM ws.items", db=db, file_column="image")
    with pytest.raises(TrainingSetError, match="a tarndb.Database"):
        TrainingSet.from_query("SELECT 1", db=42)
    # A failed build leaves no tags or pins behind.
    assert lake.store.pins("ws") == []
    tags = db.execute("SELECT tags FROM tarndb_versions('ws.items')").rows
    assert all(t == [] for (t,) in tags)

    bad = tmp_path / "bad.json"
    with pytest.raises(TrainingSetError, match="does not exist"):
        TrainingSet.load(bad, db)
    bad.write_text("{not json")
    with pytest.raises(TrainingSetError, match="invalid JSON"):
        TrainingSet.load(bad, db)
    bad.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(TrainingSetError, match="not a training set spec"):
        TrainingSet.load(bad, db)
    good = TrainingSet.from_query("SELECT id, file_id FROM ws.items", db=db).spec.to_json()
    del good["row_hashes"]
    bad.write_text(json.dumps(good))
    with pytest.raises(TrainingSetError, match="row_hashes"):
        TrainingSet.load(bad, db)


def test_public_api() -> None:
    import tarndb
    import tarndb.train

    assert tarndb.TrainingSet is TrainingSet and "TrainingSet" in tarndb.__all__
    for name in tarndb.train.__all__:
        assert getattr(tarndb.train, name) is not None


def test_objective_embedding_from_a_registered_model_and_multivectors(lake: Lake) -> None:
    from tarndb.embeddings import Embedder, register

    class Toy(Embedder):
        """Two dimensions: how many 'robot' and how many 'car' words (no weights to load)."""

        name = "toy-robot-car"

        def _encode_texts(self, texts: list[str]) -> list[np.ndarray]:
            return [np.array([t.count("robot"), t.count("car")], np.float32) for t in texts]

    register("toy-robot-car", Toy())
    db = lake.db
    db.execute("CREATE TABLE ws.clips (id BIGSERIAL PRIMARY KEY, caption TEXT, "
               "embedding FLOAT4[], bag FLOAT4[][])")
    db.execute("INSERT INTO ws.clips (caption, embedding, bag) VALUES "
               "('robot', ARRAY[1, 0]::float4[], ARRAY[[1, 0], [0, 1]]::float4[][]), "
               "('car', ARRAY[0, 1]::float4[], ARRAY[[0, 1]]::float4[][]), "
               "('both', ARRAY[1, 1]::float4[], ARRAY[[1, 1]]::float4[][])")
    ts = TrainingSet.from_objective("a robot arm", table="ws.clips", model="toy-robot-car",
                                    k=2, db=db, file_column=None)
    assert ts.spec.model == "toy-robot-car" and ts.spec.embedding == [1.0, 0.0]
    assert [r["caption"] for r in ts.rows] == ["robot", "both"]
    assert "bag" not in ts.columns  # vector columns are left out unless asked for
    multi = TrainingSet.from_objective("x", table="ws.clips", column="bag", k=1, db=db,
                                       embedding=[[1, 0], [0, 1]])
    assert multi.rows[0]["caption"] == "robot" and multi.rows[0]["score"] == 2.0
    assert "::float4[][]" in multi.spec.pinned_query
    assert TrainingSet.load(multi.spec, db).rows == multi.rows


def test_a_diff_of_two_versions_pins_both(lake: Lake) -> None:
    db = lake.db
    db.execute("CREATE TABLE ws.t (id INT, v TEXT)")
    db.execute("INSERT INTO ws.t VALUES (1, 'a'), (2, 'b')")
    old = db.execute("SELECT max(version) FROM tarndb_versions('ws.t')").scalar()
    db.execute("UPDATE ws.t SET v = 'B' WHERE id = 2")
    ts = TrainingSet.from_query(f'SELECT n.id, n.v FROM ws.t n JOIN ws."t@{old}" o '
                                "ON o.id = n.id WHERE o.v <> n.v", db=db)
    assert ts.rows == [{"id": 2, "v": "B"}]
    assert len({(t.version, t.tag) for t in ts.spec.tables}) == 2
    db.execute("UPDATE ws.t SET v = 'A' WHERE id = 1")
    db.execute("SELECT tarndb_cleanup('ws.t', '0 seconds')")
    assert TrainingSet.load(ts.spec, db).rows == ts.rows
    ts.release()
    assert all(t == [] for (t,) in db.execute("SELECT tags FROM tarndb_versions('ws.t')").rows)
